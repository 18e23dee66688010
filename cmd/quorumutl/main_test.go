package main

// quorumutl against etcdutl (tools/bin/etcdutl, built by bash
// tools/build.sh): the same status output for the same file, the restore
// flags under etcdutl's names, help and defaults, and bad input refused
// with nothing written.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/quorum-kv/quorum/server/etcdbolt"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// quorumutl builds this command once per test binary.
func quorumutl(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "quorumutl-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "quorumutl")
		buildOut, buildErr = exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build quorumutl: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func etcdutlBin(t *testing.T) string {
	t.Helper()
	p, _ := filepath.Abs(filepath.Join("..", "..", "tools", "bin", "etcdutl"))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("needs tools/bin/etcdutl: run `bash tools/build.sh` first (%v)", err)
	}
	return p
}

// runCmd runs a command, returning stdout, stderr and the exit code.
func runCmd(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

const etcdFile = "../../server/etcdbolt/testdata/etcd-3.6.16.db"

// quorumdFile writes etcd's test snapshot again through quorumd's writer
// (etcdbolt.WriteFile), as quorumd's Maintenance.Snapshot writes its
// state: a file neither etcd nor etcdutl wrote.
func quorumdFile(t *testing.T) string {
	t.Helper()
	f, err := etcdbolt.Open(etcdFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := f.Backend()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "quorumd.db")
	if err := etcdbolt.WriteFile(out, b); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSnapshotStatusMatchesEtcdutl(t *testing.T) {
	eu, qu := etcdutlBin(t), quorumutl(t)
	for _, file := range []string{etcdFile, quorumdFile(t)} {
		for _, format := range []string{"simple", "json", "table", "fields", "protobuf"} {
			wantOut, wantErr, wantCode := runCmd(t, eu, "snapshot", "status", file, "-w", format)
			gotOut, gotErr, gotCode := runCmd(t, qu, "snapshot", "status", file, "-w", format)
			if gotOut != wantOut || gotCode != wantCode {
				t.Errorf("%s -w %s: quorumutl printed (exit %d)\n%s%s\netcdutl printed (exit %d)\n%s%s",
					file, format, gotCode, gotOut, gotErr, wantCode, wantOut, wantErr)
			}
		}
	}
	// A file that is not a snapshot fails in both, quorumutl's error naming it.
	bad := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(bad, bytes.Repeat([]byte("not bolt"), 1000), 0o600)
	_, _, wantCode := runCmd(t, eu, "snapshot", "status", bad)
	_, gotErr, gotCode := runCmd(t, qu, "snapshot", "status", bad)
	if gotCode != wantCode || !strings.Contains(gotErr, bad) {
		t.Errorf("status of a non-bolt file: exit %d (etcdutl's %d), stderr %q", gotCode, wantCode, gotErr)
	}
}

// Every restore flag quorumutl takes is etcdutl's: the same help line
// (name, type, help, default).
func TestSnapshotRestoreFlagsAreEtcdutls(t *testing.T) {
	eu, qu := etcdutlBin(t), quorumutl(t)
	want, _, _ := runCmd(t, eu, "snapshot", "restore", "--help")
	got, _, _ := runCmd(t, qu, "snapshot", "restore", "--help")
	etcdLines := map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		etcdLines[strings.TrimSpace(l)] = true
	}
	n := 0
	for _, l := range strings.Split(got, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "--") {
			continue
		}
		n++
		if !etcdLines[l] {
			t.Errorf("quorumutl's flag line %q is not etcdutl's", l)
		}
	}
	if n != 7 {
		t.Errorf("quorumutl restore has %d flags, want 7 (--data-dir, --wal-dir, --initial-*, --name, --skip-hash-check):\n%s", n, got)
	}
}

func TestSnapshotRestore(t *testing.T) {
	qu := quorumutl(t)
	dir := t.TempDir()
	data, err := os.ReadFile(etcdFile)
	if err != nil {
		t.Fatal(err)
	}
	args := func(file, dataDir string, extra ...string) []string {
		return append([]string{"snapshot", "restore", file, "--name", "m1", "--initial-cluster", "m1=http://127.0.0.1:2380",
			"--initial-cluster-token", "t", "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--data-dir", dataDir}, extra...)
	}
	truncated := filepath.Join(dir, "truncated.db")
	os.WriteFile(truncated, data[:len(data)-100], 0o600)
	bad := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"snapshot", "restore", "--data-dir", filepath.Join(dir, "x")}, "exactly one argument"},
		{"missing file", args(filepath.Join(dir, "absent.db"), filepath.Join(dir, "x")), "absent.db"},
		{"truncated", args(truncated, filepath.Join(dir, "x")), truncated},
		{"name not in cluster", append(args(etcdFile, filepath.Join(dir, "x")), "--name", "m9"), `--name "m9" is not in --initial-cluster`},
		{"peer URLs differ", append(args(etcdFile, filepath.Join(dir, "x")), "--initial-advertise-peer-urls", "http://127.0.0.1:9"), "must match"},
	}
	for _, c := range bad {
		_, stderr, code := runCmd(t, qu, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want failure saying %q", c.name, code, stderr, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "x")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: restore left %s", c.name, filepath.Join(dir, "x"))
		}
	}
	out := filepath.Join(dir, "restored")
	if _, stderr, code := runCmd(t, qu, args(etcdFile, out)...); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, stderr)
	}
	for _, p := range []string{"member/meta.json", "member/wal", "member/snap"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Fatal(err)
		}
	}
	// A second restore into the now non-empty dir is refused.
	if _, stderr, code := runCmd(t, qu, args(etcdFile, out)...); code == 0 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("restore into a non-empty data dir: exit %d, %s", code, stderr)
	}

	// --wal-dir: the WAL there, none in the data dir; a non-empty one is
	// refused and nothing is written.
	walOut, walDir := filepath.Join(dir, "restored-wal"), filepath.Join(dir, "wal-disk", "m1")
	if _, stderr, code := runCmd(t, qu, args(etcdFile, walOut, "--wal-dir", walDir)...); code != 0 {
		t.Fatalf("restore with --wal-dir: exit %d\n%s", code, stderr)
	}
	if segs, _ := filepath.Glob(filepath.Join(walDir, "*.wal")); len(segs) == 0 {
		t.Errorf("no WAL segment in --wal-dir %s", walDir)
	}
	if _, err := os.Stat(filepath.Join(walOut, "member", "wal")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("restore with --wal-dir made member/wal in the data dir too (%v)", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(walDir)); len(entries) != 1 {
		t.Errorf("beside the WAL dir: %v, want only it (no temporary dir left)", entries)
	}
	again := filepath.Join(dir, "restored-again")
	if _, stderr, code := runCmd(t, qu, args(etcdFile, again, "--wal-dir", walDir)...); code == 0 || !strings.Contains(stderr, "--wal-dir") || !strings.Contains(stderr, "not empty") {
		t.Fatalf("restore into a non-empty --wal-dir: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(again); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused restore left %s", again)
	}
}
