package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJUnitHasOneCasePerRunWithFailuresAndErrors(t *testing.T) {
	runs := []matrixRun{
		{Workload: "register", Nemesis: "none", Nodes: 3, Seed: 1, Verdict: "valid", Dir: "store/a", Elapsed: time.Second},
		{Workload: "register", Nemesis: "kill-one", Nodes: 5, Seed: 2, Verdict: "invalid", Reasons: []string{"not linearizable: 1 of 5 keys fail (k1)"}},
		{Workload: "set", Nemesis: "none", Nodes: 3, Seed: 3, Verdict: "unknown", Reasons: []string{"timeout"}},
		{Workload: "set", Nemesis: "none", Nodes: 3, Seed: 4, Verdict: "error", Reasons: []string{"cluster did not start"}},
	}
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := writeJUnit(path, runs, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var got junitSuites
	if err := xml.Unmarshal(b, &got); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	s := got.Suites[0]
	if s.Tests != 4 || s.Failures != 1 || s.Errors != 2 || len(s.Cases) != 4 {
		t.Fatalf("suite %+v", s)
	}
	if c := s.Cases[1]; c.Failure == nil || !strings.Contains(c.Failure.Message, "not linearizable") || c.Name != "register kill-one n=5 seed=2" {
		t.Fatalf("invalid case %+v", c)
	}
	if s.Cases[0].Failure != nil || s.Cases[0].Error != nil || s.Cases[2].Error == nil || s.Cases[3].Error == nil {
		t.Fatalf("cases %+v", s.Cases)
	}
	for want, rs := range map[int][]matrixRun{0: runs[:1], 1: runs, 2: {runs[0], runs[2]}} {
		if got := matrixExitCode(rs); got != want {
			t.Errorf("exit code %d, want %d", got, want)
		}
	}
}

// A real matrix: two workloads by two nemeses, short runs, all valid on
// quorumd, one table and a JUnit file with four passing testcases.
func TestTestAllRunsTheMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four 3-member clusters")
	}
	store := t.TempDir()
	junit := filepath.Join(store, "junit.xml")
	var out, errb strings.Builder
	code := run(t.Context(), []string{"test-all", "--workload", "register,set", "--nemesis", "none", "--nemesis", "kill-one",
		"--time-limit", "3s", "--seed", "11", "--store", store, "--junit", junit}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\nstderr tail:\n%s", code, out.String(), tailString(errb.String(), 3000))
	}
	if !strings.Contains(out.String(), "4 runs: 4 valid, 0 invalid, 0 unknown, 0 errors") {
		t.Fatalf("summary:\n%s", out.String())
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b, &got); err != nil || got.Suites[0].Tests != 4 || got.Suites[0].Failures != 0 {
		t.Fatalf("junit %v:\n%s", err, b)
	}
}
