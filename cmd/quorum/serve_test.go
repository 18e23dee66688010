package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/reports"
	"github.com/quorum-kv/quorum/rundir"
)

// fakeRun writes a run directory as quorum test leaves it: results.json
// (with verdict v), report.html and a log.
func fakeRun(t *testing.T, store, test string, start time.Time, v checker.Verdict, workload string) string {
	t.Helper()
	dir := filepath.Join(store, test, start.UTC().Format(rundir.StampLayout))
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	res := reports.Results{
		Run: reports.Run{Name: test, Start: start, Duration: 20 * time.Second, Backend: "local", ClusterSize: 3, Seed: 42,
			Nemesis: reports.Config{"faults": "kill-leader,partition-halves"}},
		Check: checker.Result{Verdict: v, Workload: workload},
	}
	if err := reports.WriteResults(dir, res); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"report.html": "<html>report of " + v.String() + "</html>", "logs/n1.log": "log line\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeListsRunsNewestFirstWithLinks(t *testing.T) {
	store := t.TempDir()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fakeRun(t, store, "register", t0, checker.Valid, "register")
	fakeRun(t, store, "register", t0.Add(time.Hour), checker.Invalid, "register")
	fakeRun(t, store, "watch", t0.Add(2*time.Hour), checker.Unknown, "watch")
	bench := filepath.Join(store, "bench", t0.Add(30*time.Minute).Format(rundir.StampLayout))
	os.MkdirAll(bench, 0o755)
	os.WriteFile(filepath.Join(bench, "results.json"), []byte(`{"schema":"quorum.bench/v1","run":{"start":"2026-12-01T10:30:00Z","backend":"docker"}}`), 0o644)
	broken := filepath.Join(store, "set", t0.Add(3*time.Hour).Format(rundir.StampLayout))
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "results.json"), []byte(`{"schema":`), 0o644)
	running := filepath.Join(store, "set", t0.Add(4*time.Hour).Format(rundir.StampLayout))
	os.MkdirAll(running, 0o755) // no results yet: not listed

	srv := httptest.NewServer(storeHandler(store))
	defer srv.Close()
	code, page := get(t, srv.URL+"/")
	if code != 200 {
		t.Fatalf("GET / = %d:\n%s", code, page)
	}
	rows := regexp.MustCompile(`<tr class="([a-z]+)" data-path="([^"]+)"`).FindAllStringSubmatch(page, -1)
	var got []string
	for _, r := range rows {
		got = append(got, r[1]+" "+r[2])
	}
	want := []string{
		"unreadable set/" + t0.Add(3*time.Hour).Format(rundir.StampLayout), // unreadable, listed
		"unknown watch/" + t0.Add(2*time.Hour).Format(rundir.StampLayout),
		"invalid register/" + t0.Add(time.Hour).Format(rundir.StampLayout),
		"bench bench/" + t0.Add(30*time.Minute).Format(rundir.StampLayout),
		"valid register/" + t0.Format(rundir.StampLayout),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range []string{"1 valid, 1 invalid, 1 unknown", "kill-leader,partition-halves", "unreadable"} {
		if !strings.Contains(page, s) {
			t.Errorf("index lacks %q", s)
		}
	}
	// Every link on the page resolves.
	links := regexp.MustCompile(`href="(/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(links) < 9 {
		t.Fatalf("only %d links on the page", len(links))
	}
	for _, l := range links {
		if code, body := get(t, srv.URL+l[1]); code != 200 {
			t.Errorf("link %s: %d %s", l[1], code, body)
		}
	}
	if _, body := get(t, srv.URL+"/register/"+t0.Add(time.Hour).Format(rundir.StampLayout)+"/report.html"); !strings.Contains(body, "report of invalid") {
		t.Errorf("report link serves %q", body)
	}
	// Nothing outside the store.
	if code, _ := get(t, srv.URL+"/../../etc/passwd"); code == 200 {
		t.Error("served a file outside the store")
	}
}

func TestServeRefusesAMissingStore(t *testing.T) {
	var out, errb strings.Builder
	code := run(t.Context(), []string{"serve", filepath.Join(t.TempDir(), "nope")}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "is not a directory") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
