package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/server"
)

// walSegments lists the .wal files in dir.
func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitExit waits for m to exit on its own and returns its log.
func waitExit(t *testing.T, m *memberProc, within time.Duration) string {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(within):
		t.Fatalf("%s still running after %v; want it refused", m.name, within)
	}
	b, _ := os.ReadFile(m.logPath)
	return string(b)
}

// --wal-dir: the WAL's segments go to that directory and none to
// <data-dir>/member/wal; a restart with it finds every write, and so does a
// member restored from its backup with a --wal-dir (quorumutl's); started
// without it the member refuses (rather than bootstrapping a new member
// over its data), and a member created without it refuses it; neither
// refusal changes a file.
func TestDedicatedWALDir(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
	dir := t.TempDir()
	walDir := filepath.Join(dir, "wal-disk", "w1")
	m := newMemberURLs(t, dir, "w1")
	cluster := "w1=" + m.peer
	ctl := &memberScript{t: t, ctl: etcdctlBinary(t), names: map[string]string{}}
	m.start(t, quorumdBinary, cluster, "new", "--wal-dir", walDir)
	eventually(t, 20*time.Second, "w1 serves", func() error {
		if s := ctl.ctlRun([]string{m.client}, "put", "k", "v"); s != "OK\n" {
			return fmt.Errorf("put: %s", s)
		}
		return nil
	})
	backup := filepath.Join(dir, "backup.db")
	if s := ctl.ctlRun([]string{m.client}, "snapshot", "save", backup); !strings.Contains(s, "Snapshot saved") {
		t.Fatalf("snapshot save: %s", s)
	}
	stopMember(t, m)
	if segs := walSegments(t, walDir); len(segs) == 0 {
		t.Fatalf("no WAL segment in --wal-dir %s", walDir)
	}
	if segs := walSegments(t, filepath.Join(m.dataDir, "member", "wal")); len(segs) != 0 {
		t.Fatalf("WAL segments in the data dir too: %v", segs)
	}

	m.start(t, quorumdBinary, cluster, "new", "--wal-dir", walDir)
	eventually(t, 20*time.Second, "w1 restarted with --wal-dir", func() error {
		if s := ctl.ctlRun([]string{m.client}, "get", "k", "--print-value-only"); s != "v\n" {
			return fmt.Errorf("get: %q", s)
		}
		return nil
	})
	stopMember(t, m)

	before := walSegments(t, walDir)
	m.start(t, quorumdBinary, cluster, "new")
	if log := waitExit(t, m, 20*time.Second); m.err == nil || !strings.Contains(log, "start with the --wal-dir it was created with") {
		t.Fatalf("started without --wal-dir: exit %v, log:\n%s", m.err, log)
	}
	if _, err := os.Stat(filepath.Join(m.dataDir, "member", "wal")); !os.IsNotExist(err) {
		t.Errorf("the refused start made %s/member/wal (%v)", m.dataDir, err)
	}
	if after := walSegments(t, walDir); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the refused start changed the WAL: %v, then %v", before, after)
	}

	// A backup restored with a --wal-dir starts with it.
	r := newMemberURLs(t, dir, "r1")
	rWAL := filepath.Join(dir, "wal-disk", "r1")
	if err := server.RestoreDataDir(server.RestoreConfig{SnapshotPath: backup, Name: r.name, InitialCluster: "r1=" + r.peer,
		InitialAdvertisePeerURLs: r.peer, DataDir: r.dataDir, WALDir: rWAL}); err != nil {
		t.Fatal(err)
	}
	r.start(t, quorumdBinary, "r1="+r.peer, "new", "--wal-dir", rWAL)
	eventually(t, 20*time.Second, "r1 restored with --wal-dir serves", func() error {
		if s := ctl.ctlRun([]string{r.client}, "get", "k", "--print-value-only"); s != "v\n" {
			return fmt.Errorf("get: %q", s)
		}
		return nil
	})
	stopMember(t, r)

	// The other way round: created without --wal-dir, started with one.
	o := newMemberURLs(t, dir, "w2")
	o.start(t, quorumdBinary, "w2="+o.peer, "new")
	eventually(t, 20*time.Second, "w2 serves", func() error {
		if s := ctl.ctlRun([]string{o.client}, "put", "k", "v"); s != "OK\n" {
			return fmt.Errorf("put: %s", s)
		}
		return nil
	})
	stopMember(t, o)
	other := filepath.Join(dir, "wal-disk", "w2")
	o.start(t, quorumdBinary, "w2="+o.peer, "new", "--wal-dir", other)
	if log := waitExit(t, o, 20*time.Second); o.err == nil || !strings.Contains(log, "this member was created without --wal-dir") {
		t.Fatalf("started with a new --wal-dir: exit %v, log:\n%s", o.err, log)
	}
	if segs := walSegments(t, other); len(segs) != 0 {
		t.Errorf("the refused start made a WAL in %s: %v", other, segs)
	}
}
