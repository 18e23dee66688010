package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/bench"
	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/reports"
	"github.com/quorum-kv/quorum/rundir"
)

// The saved histories with known verdicts (see checker/fixtures_test.go)
// and the saved A/B bench run.
const (
	savedHistories = "../../testdata/histories"
	savedBench     = "../../bench/testdata/ab-etcd-quorumd-size3.json"
)

// copyFile copies from to dir/name and returns dir.
func copyFile(t *testing.T, from, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// savedRun is a fresh run directory holding the saved history name.
func savedRun(t *testing.T, name string) string {
	t.Helper()
	return copyFile(t, filepath.Join(savedHistories, name, rundir.HistoryFile), t.TempDir(), rundir.HistoryFile)
}

// `quorum check RUN_DIR` exits with the verdict's code (0 valid, 1 invalid,
// 2 unknown) and prints the verdict and what decided it.
func TestCheckExitCodeIsTheVerdict(t *testing.T) {
	tests := []struct {
		history string
		flags   []string
		code    int
		// lines are regular expressions, each matching a whole line of
		// stdout in this order; DIR stands for the run directory.
		lines     []string
		visualize bool
	}{
		{"register-valid", nil, 0, []string{
			`DIR: valid \(30 events\)`,
			`linearizability: valid, 2 keys, 14 operations checked in \S+`,
		}, false},
		{"set-valid", nil, 0, []string{`DIR: valid \(18 events\)`}, false},
		{"append-valid", nil, 0, []string{
			`DIR: valid \(14 events\)`,
			`append \(elle\): valid, 4 transactions ok, 1 failed, 1 unknown`,
		}, false},
		{"append-stale-read", nil, 1, []string{
			`DIR: invalid \(6 events\)`,
			`append \(elle\): invalid, 3 transactions ok, 0 failed, 0 unknown`,
			`anomalies: G-single-realtime 1`,
			`G-single-realtime: cycle of 2 transactions: T1 -rw-> T0 -realtime-> T1`,
			`  T1 \(process 1, ok\) \[\["r","x",null\]\]; rw edge: T1 read x = \[\]; T0 appended the next element, 1`,
			`  T0 \(process 0, ok\) \[\["append","x",1\]\]; realtime edge: T0 completed at 2000000 before T1 was invoked at 3000000`,
		}, false},
		{"append-lost", nil, 1, []string{
			`DIR: invalid \(8 events\)`,
			`append \(elle\): invalid, 4 transactions ok, 0 failed, 0 unknown`,
			`anomalies: lost-append 1`,
			`lost-append on x: T0 appended 1 to x and completed at 2000000; T3, invoked later at 7000000, never saw it, nor did any read`,
			`  T0 \(process 0, ok\) \[\["append","x",1\]\]`,
			`  T3 \(process 1, ok\) \[\["r","x",\[2\]\]\]`,
		}, false},
		{"watch-valid", nil, 0, []string{
			`DIR: valid \(18 events\)`,
			`watch: valid, 2 watchers, 3 sessions, 6 events received; history of 3 revisions through 4; writes 3 ok, 0 failed, 1 unknown`,
		}, false},
		{"watch-missed-event", nil, 1, []string{
			`DIR: invalid \(18 events\)`,
			`watch: invalid, 2 watchers, 3 sessions, 5 events received; history of 3 revisions through 4; writes 3 ok, 0 failed, 1 unknown`,
			`anomalies: reliable 1`,
			`watcher 1 \(key k/a, no delete, progress on n2\): 1 anomalies at revisions 4`,
			`reliable: watcher 1 \(session #1 on n2\), revisions 4: 1 matching events between revisions 2 and 4 never delivered, first at 4`,
		}, false},
		{"lock-valid", nil, 0, []string{
			`DIR: valid \(16 events\)`,
			`lock \(unfenced\): valid, 2 holds, 0 holders at once, 0 lost updates; acquires 2 ok/0 fail/0 info, increments 2 ok/0 fail/0 info, releases 2 ok/0 fail/0 info`,
			`register /quorum/lock-register/0: final 2, 2 increments acknowledged, 0 unknown`,
		}, false},
		{"lock-two-holders", nil, 1, []string{
			`DIR: invalid \(18 events\)`,
			`lock \(unfenced\): invalid, 2 holds, 1 holders at once, 0 lost updates; acquires 2 ok/0 fail/0 info, increments 2 ok/0 fail/0 info, releases 2 ok/0 fail/0 info`,
			`register /quorum/lock-register/0: final 2, 2 increments acknowledged, 0 unknown`,
			`two holders of /quorum/lock/0 from 5\.500s to 5\.503s: process 0 on n1 held /quorum/lock/0 from 0\.002s \(session lease 3e8, TTL 2 s, key /quorum/lock/0/3e8\) until 8\.100s; ` +
				`process 1 on n2 was granted it at 5\.500s \(lease 7d0, key /quorum/lock/0/7d0\); ` +
				`pause-leader n1 from 0\.005s to 8\.000s \(7\.995s, longer than the 2 s TTL: the first holder's lease expired while its member did not answer its keep-alives\)`,
		}, false},
		{"lease-valid", nil, 0, []string{
			`DIR: valid \(14 events\)`,
			`lease: valid, 1 kept alive, 0 abandoned, 0 revoked; 2 reads, 2 \(read, lease\) pairs checked`,
		}, false},
		{"lease-outlived", nil, 1, []string{
			`DIR: invalid \(10 events\)`,
			`lease: invalid, 0 kept alive, 1 abandoned, 0 revoked; 2 reads, 2 \(read, lease\) pairs checked`,
			`anomalies: outlived-bound 1`,
			`outlived-bound: lease 3e8 \(abandon\), keys /quorum/lease/0-1-0 /quorum/lease/0-1-1, read #8 on n1 at revision 3: ` +
				`lease 3e8 \(TTL 2 s\) was last renewed by 0\.002s and abandoned; its keys had to be gone by 8\.502s \(TTL \+ bound 6\.500s\), ` +
				`yet the linearizable read on n1 sent at 10\.000s \(revision 3\) saw \[/quorum/lease/0-1-0 /quorum/lease/0-1-1\]`,
		}, false},
		{"watch-duplicate-event", nil, 1, []string{
			`DIR: invalid \(18 events\)`,
			`watch: invalid, 2 watchers, 3 sessions, 7 events received; history of 3 revisions through 4; writes 3 ok, 0 failed, 1 unknown`,
			`anomalies: unique 1`,
			`watcher 1 \(key k/a, no delete, progress on n2\): 1 anomalies at revisions 4`,
			`unique: watcher 1 \(session #1 on n2\), revisions 4: k/a at revision 4 delivered twice`,
		}, false},
		{"watch-split-revision", nil, 1, []string{
			`DIR: invalid \(18 events\)`,
			`watch: invalid, 2 watchers, 3 sessions, 6 events received; history of 3 revisions through 4; writes 3 ok, 0 failed, 1 unknown`,
			`anomalies: atomic 1`,
			`watcher 0 \(prefix k/, prev_kv on n1\): 1 anomalies at revisions 3`,
			`atomic: watcher 0 \(session #0 on n1\), revisions 3: revision 3 split across responses: k/a in a later one`,
		}, false},
		{"register-stale-read", nil, 1, []string{
			`DIR: invalid \(8 events\)`,
			`linearizability: invalid, 1 keys, 3 operations checked in \S+`,
			`not linearizable: k0`,
		}, true},
		{"set-lost-element", nil, 1, []string{
			`DIR: invalid \(12 events\)`,
			`set: lost \[0-2\], unexpected \[\], failed but present \[\]`,
		}, false},
		{"register-no-ok-ops", nil, 2, []string{
			`DIR: unknown \(5 events\)`,
			`reason: no operation completed ok: nothing was checked`,
			`linearizability: unknown, 1 keys, 1 operations checked in \S+`,
		}, false},
		// A valid history whose check runs out of time is unknown, not a pass.
		{"register-valid", []string{"--check-timeout", "1ns"}, 2, []string{
			`DIR: unknown \(30 events\)`,
			`linearizability: unknown, 2 keys, 14 operations checked in \S+`,
			`not decided within --check-timeout 1ns: k0, k1`,
		}, false},
		// Checked as the wrong workload: nothing was acknowledged as an add.
		{"register-valid", []string{"--workload", "set"}, 2, []string{`DIR: unknown \(30 events\)`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.history+strings.Join(tt.flags, ""), func(t *testing.T) {
			dir := savedRun(t, tt.history)
			o := quorum(t, append(append([]string{"check"}, tt.flags...), dir)...)
			if o.code != tt.code || o.stderr != "" {
				t.Errorf("exit %d, stderr %q; want %d and nothing", o.code, o.stderr, tt.code)
			}
			got := strings.Split(strings.TrimSuffix(o.stdout, "\n"), "\n")
			if len(got) != len(tt.lines) {
				t.Fatalf("stdout has %d lines, want %d:\n%s", len(got), len(tt.lines), o.stdout)
			}
			for i, re := range tt.lines {
				re = strings.ReplaceAll(re, "DIR", regexp.QuoteMeta(dir))
				if !regexp.MustCompile("^" + re + "$").MatchString(got[i]) {
					t.Errorf("line %d %q does not match %q", i+1, got[i], re)
				}
			}
			_, err := os.Stat(filepath.Join(dir, checker.VisualizationFile))
			if visualized := err == nil; visualized != tt.visualize {
				t.Errorf("%s written: %v, want %v", checker.VisualizationFile, visualized, tt.visualize)
			}
		})
	}
}

// A history that is missing or cannot be parsed is a harness error (2),
// named in one line on stderr.
func TestCheckRefusesAMissingOrMalformedHistory(t *testing.T) {
	missing := t.TempDir()
	malformed := t.TempDir()
	path := filepath.Join(malformed, rundir.HistoryFile)
	if err := os.WriteFile(path, []byte(`{"type":"invoke"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	quorum(t, "check", missing).refused(t, "load history: open "+filepath.Join(missing, rundir.HistoryFile)+": no such file or directory")
	quorum(t, "check", malformed).refused(t, "load "+path+": history line 1: unexpected end of JSON input")
	quorum(t, "check").refused(t, "accepts 1 arg(s), received 0")
}

// `quorum report RUN_DIR` rebuilds a deleted report.html from the saved
// history and results.json and prints its path.
func TestReportRebuildsASavedRun(t *testing.T) {
	t.Parallel() // rendering plots is slow under -race
	dir := savedRun(t, "register-stale-read")
	events, err := history.Load(filepath.Join(dir, rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	res := reports.Results{
		Run:   reports.Run{Name: "saved", Start: time.Unix(0, 0).UTC(), Backend: "local", ClusterSize: 3},
		Check: checker.Check(context.Background(), events, checker.Options{}),
	}
	if err := reports.Write(dir, res, events); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, rundir.ReportFile)
	if err := os.Remove(report); err != nil {
		t.Fatal(err)
	}
	o := quorum(t, "report", dir)
	if o.code != 0 || o.stdout != report+"\n" || o.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and %q", o.code, o.stdout, o.stderr, report)
	}
	if b, err := os.ReadFile(report); err != nil || !strings.Contains(string(b), "INVALID") {
		t.Errorf("report.html rebuilt: %v, mentions INVALID: %v", err, strings.Contains(string(b), "INVALID"))
	}

	empty := t.TempDir()
	quorum(t, "report", empty).refused(t, "rebuild report: load results: open "+filepath.Join(empty, rundir.ResultsFile)+": no such file or directory")
}

// `quorum bench report RUN_DIR` renders report.html from a saved results.json.
func TestBenchReportRendersASavedRun(t *testing.T) {
	t.Parallel() // rendering plots is slow under -race
	dir := copyFile(t, savedBench, t.TempDir(), bench.ResultsFile)
	o := quorum(t, "bench", "report", dir)
	report := filepath.Join(dir, bench.ReportFile)
	if o.code != 0 || o.stdout != report+"\n" || o.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and %q", o.code, o.stdout, o.stderr, report)
	}
	if st, err := os.Stat(report); err != nil || st.Size() == 0 {
		t.Errorf("report.html: %v", err)
	}
	if plots, _ := filepath.Glob(filepath.Join(dir, bench.PlotsDir, "*.png")); len(plots) == 0 {
		t.Errorf("no plots under %s", filepath.Join(dir, bench.PlotsDir))
	}
}

// `quorum bench compare` exits 0 without a regression, 1 with one, 2 on an
// unreadable file or a bad --threshold.
func TestBenchCompareExitCodes(t *testing.T) {
	base, err := bench.LoadResults(savedBench)
	if err != nil {
		t.Fatal(err)
	}
	// Plant a regression: quorumd's put throughput at 1000 clients down 20%.
	slower := base
	slower.Summary.Load = append([]bench.LoadSummary(nil), base.Summary.Load...)
	planted := 0
	for i, l := range slower.Summary.Load {
		if l.Server == "quorumd" && l.Workload == bench.WorkloadPut && l.Clients == 1000 {
			slower.Summary.Load[i].Throughput *= 0.8
			planted++
		}
	}
	if planted != 1 {
		t.Fatalf("planted %d regressions, want 1", planted)
	}
	slowerDir := t.TempDir()
	if err := bench.WriteResults(slowerDir, slower); err != nil {
		t.Fatal(err)
	}

	o := quorum(t, "bench", "compare", savedBench, savedBench)
	if o.code != 0 || o.stderr != "" || strings.Contains(o.stdout, "WORSE") || !strings.Contains(o.stdout, "quorumd put 3 members 1000 clients") {
		t.Errorf("a run against itself: exit %d, stderr %q\n%s", o.code, o.stderr, o.stdout)
	}

	o = quorum(t, "bench", "compare", savedBench, slowerDir)
	worse := regexp.MustCompile(`(?m)^quorumd put 3 members 1000 clients +throughput .*WORSE`)
	if o.code != 1 || o.stderr != "" || strings.Count(o.stdout, "WORSE") != 1 || !worse.MatchString(o.stdout) {
		t.Errorf("planted regression: exit %d, stderr %q; want 1 and one WORSE row\n%s", o.code, o.stderr, o.stdout)
	}
	// Within a 25% threshold a 20% drop is no regression.
	if o = quorum(t, "bench", "compare", "--threshold", "25%", savedBench, slowerDir); o.code != 0 {
		t.Errorf("--threshold 25%%: exit %d\n%s", o.code, o.stdout)
	}

	missing := filepath.Join(t.TempDir(), "gone.json")
	quorum(t, "bench", "compare", savedBench, missing).refused(t, "load results: open "+missing+": no such file or directory")
	quorum(t, "bench", "compare", "--threshold", "ten", savedBench, savedBench).refused(t,
		`--threshold: threshold "ten": want a percentage like 10% or a fraction like 0.1`)
	quorum(t, "bench", "compare", "--threshold", "-5%", savedBench, savedBench).refused(t,
		`--threshold: threshold "-5%": want a percentage like 10% or a fraction like 0.1`)
	quorum(t, "bench", "compare", savedBench).refused(t, "accepts 2 arg(s), received 1")
}
