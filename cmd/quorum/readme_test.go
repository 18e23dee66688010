package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runScript runs bash script (a file in dir) in dir, in a process group
// of its own, and returns its combined output. Whatever the
// script leaves running is killed when it ends, by the group: also when
// ctx expires and bash is killed before its EXIT trap can stop its jobs.
func runScript(ctx context.Context, t *testing.T, dir, script string) ([]byte, error) {
	t.Helper()
	path := filepath.Join(dir, "readme.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", "readme.sh")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group's leftovers; none if the trap ran
	}
	return out, err
}

// readmeBlocks returns the ```sh blocks of the README section that starts
// with heading, in order.
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q section", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	var blocks []string
	for {
		_, after, ok := strings.Cut(rest, "```sh\n")
		if !ok {
			return blocks
		}
		block, next, _ := strings.Cut(after, "```")
		blocks = append(blocks, block)
		rest = next
	}
}

// buildCommands builds each named command of cmd/ into dir/NAME.
func buildCommands(ctx context.Context, t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
}

// The README's commands stop processes by the PIDs they recorded, never by
// name: `kill $(pgrep -f 'quorumd --name n3 ')` also stops any other
// quorumd called n3 on the machine — a harness test's, when the suite runs
// this test beside them (it did, in CI: the harness's n3 got SIGTERM while
// its cluster was starting).
func TestReadmeStopsProcessesByPIDNotByName(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	byName := regexp.MustCompile(`\b(pgrep|pkill|killall)\b`)
	for i, l := range strings.Split(string(readme), "\n") {
		if byName.MatchString(l) {
			t.Errorf("README.md:%d picks processes by name (record $! and kill that PID): %s", i+1, l)
		}
	}
}

// The README's by-hand cluster and its "Operating a cluster" commands,
// run as written in one shell: back up quorumd, read the file with
// etcdutl, restore it into real etcd, back that up and restore it into
// quorumd, replace a dead member, add and promote a learner, check hashes,
// recover from NOSPACE. Needs tools/bin (bash tools/build.sh).
func TestReadmeOperatingCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member quorumd cluster and real etcd (skipped with -short)")
	}
	tools, err := filepath.Abs("../../tools/bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"etcd", "etcdctl", "etcdutl"} {
		if _, err := os.Stat(filepath.Join(tools, b)); err != nil {
			t.Skipf("tools/bin/%s is missing (bash tools/build.sh builds it): %v", b, err)
		}
	}
	blocks := append(readmeBlocks(t, "## Running a 3-member quorumd cluster by hand"), readmeBlocks(t, "## Operating a cluster")...)
	if len(blocks) != 4 {
		t.Fatalf("README: %d sh blocks in the by-hand and operating sections, want 1 and 3", len(blocks))
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	buildCommands(ctx, t, filepath.Join(dir, "bin"), "quorumd", "quorumctl", "quorumutl")
	if err := os.MkdirAll(filepath.Join(dir, "tools"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tools, filepath.Join(dir, "tools", "bin")); err != nil {
		t.Fatal(err)
	}
	var script []string
	for _, l := range strings.Split(strings.Join(blocks, "\n"), "\n") {
		if !strings.HasPrefix(l, "go build ") {
			script = append(script, l)
		}
	}
	// Echo each command (its first 100 bytes) so a failure shows which;
	// stop every member however the script ends.
	body := "set -e\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\ntrap 'echo \"+ ${BASH_COMMAND:0:100}\"' DEBUG\n" +
		strings.Join(script, "\n") + "\n"
	out, err := runScript(ctx, t, dir, body)
	if err != nil {
		var logs []string
		for _, n := range []string{"n1", "n3", "n4", "e1", "q1"} {
			b, _ := os.ReadFile(filepath.Join(dir, n+".log"))
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			logs = append(logs, n+".log (tail):\n"+string(b))
		}
		t.Fatalf("README blocks: %v\n%s\n%s", err, out, strings.Join(logs, "\n"))
	}
	t.Logf("README blocks output:\n%s", out)
	o := string(out)
	for _, want := range []string{
		"alarm:NOSPACE",           // the loop filled the quota
		"database space exceeded", // and the write past it failed as etcd's
		"Finished defragmenting",  // defrag
		"memberID:",               // alarm disarm answered the alarm it cleared
	} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// After the promotion n4 is a voter, and the hashes agree.
	if !regexp.MustCompile(`\| +n4 \| \S+ \| \S+ \| +false \|`).MatchString(o) {
		t.Errorf("member list after promote shows no voter n4")
	}
	hashes := regexp.MustCompile(`(?m)^\s*\| http://127\.0\.0\.1:\d+ \| +(\d+) \|`).FindAllStringSubmatch(o, -1)
	if len(hashes) != 4 {
		t.Fatalf("endpoint hashkv --cluster: %d rows, want 4", len(hashes))
	}
	for _, h := range hashes[1:] {
		if h[1] != hashes[0][1] {
			t.Errorf("endpoint hashkv --cluster: hashes differ: %v", hashes)
		}
	}
}
