package reports

import (
	"bytes"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/history"
)

type workloadCfg struct {
	Keys     int           `json:"keys"`
	Rate     float64       `json:"rate"`
	Timeout  time.Duration `json:"timeout"`
	Mix      []string      `json:"mix"`
	Internal struct {
		Clients int `json:"clients"`
	} `json:"internal"`
}

func testRun(t *testing.T) Run {
	t.Helper()
	w := workloadCfg{Keys: 4, Rate: 250.5, Timeout: time.Second, Mix: []string{"read", "write", "cas"}}
	w.Internal.Clients = 8
	wc, err := ConfigOf(w)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ConfigOf(map[string]any{"faults": []string{"kill-leader", "partition-halves"}, "interval": "10s"})
	if err != nil {
		t.Fatal(err)
	}
	return Run{
		Name: "register <kill-leader & partition>", Start: time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC),
		Duration: 40 * time.Second, Backend: "process", ServerBinary: "bin/quorumd", ClusterSize: 3,
		Workload: wc, Nemesis: nc, Seed: 1234567890123456789, CheckTimeLimit: time.Minute,
		Command: `quorum test --workload register --nemesis kill-leader,partition-halves --seed 1234567890123456789`,
	}
}

func TestWriteThenLoadAndRebuild(t *testing.T) {
	events := synthetic(7, 3000)
	v := func(s string) *string { return &s }
	tests := []struct {
		name       string
		check      checker.Result
		visualized bool
		wantText   []string
	}{
		{"valid", checker.Result{
			Verdict: checker.Valid, Workload: checker.WorkloadRegister,
			Linearizability: &checker.LinearizabilityResult{Verdict: checker.Valid, Keys: 1, Operations: 2900, Duration: 1500 * time.Millisecond},
			FinalReads:      &checker.FinalReadsResult{Verdict: checker.Valid, Reads: []checker.MemberRead{{Key: "k", Node: "n1", Value: v("7"), Revision: 9}}},
		}, false, []string{"VALID", "Linearizability: valid"}},
		{"invalid with visualization", checker.Result{
			Verdict: checker.Invalid, Workload: checker.WorkloadRegister,
			Linearizability: &checker.LinearizabilityResult{Verdict: checker.Invalid, Keys: 3, Operations: 2900, FailingKeys: []string{"k"}, Visualization: "linearizability.html"},
			FinalReads: &checker.FinalReadsResult{Verdict: checker.Invalid, Disagreements: []string{"k"}, Reads: []checker.MemberRead{
				{Key: "k", Node: "n1", Value: v("7"), Revision: 9}, {Key: "k", Node: "n2", Value: v("<8>"), Revision: 10},
			}},
		}, true, []string{"INVALID", "not linearizable", `href="linearizability.html"`, "&lt;8&gt;"}},
		{"unknown with reason", checker.Result{
			Verdict: checker.Unknown, Workload: checker.WorkloadSet, Reason: "no operation completed ok: nothing was checked",
			Set: &checker.SetResult{Verdict: checker.Unknown, Attempted: 10, Lost: []string{"3"}},
		}, false, []string{"UNKNOWN", "nothing was checked", "lost (acknowledged, missing)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := history.Save(filepath.Join(dir, HistoryFile), events); err != nil {
				t.Fatal(err)
			}
			if tt.visualized {
				if err := os.WriteFile(filepath.Join(dir, checker.VisualizationFile), []byte("<html></html>"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res := Results{Run: testRun(t), Check: tt.check, CheckDuration: 2 * time.Second}
			if err := Write(dir, res, events); err != nil {
				t.Fatalf("Write: %v", err)
			}

			got, err := LoadResults(dir)
			if err != nil {
				t.Fatalf("LoadResults: %v", err)
			}
			want := res
			want.Schema, want.Dir, want.Summary = Schema, dir, Analyze(events, Options{})
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("LoadResults differs from what was written:\n got %+v\nwant %+v", got, want)
			}
			if len(got.Summary.Faults) != 2 || got.Summary.Total < 2000 {
				t.Fatalf("summary of the synthetic history: %d faults, %d ops", len(got.Summary.Faults), got.Summary.Total)
			}

			for _, p := range []string{PlotLatencyRaw, PlotLatencyQuantiles, PlotThroughput, PlotAvailability} {
				assertPNG(t, filepath.Join(dir, filepath.FromSlash(p)))
			}

			page, err := os.ReadFile(filepath.Join(dir, ReportFile))
			if err != nil {
				t.Fatal(err)
			}
			assertReport(t, dir, page, tt.check.Verdict)
			for _, s := range tt.wantText {
				if !bytes.Contains(page, []byte(s)) {
					t.Errorf("report.html does not contain %q", s)
				}
			}
			if bytes.Contains(page, []byte("<kill-leader")) {
				t.Error("report.html holds the run name unescaped")
			}
			if tt.visualized != bytes.Contains(page, []byte(checker.VisualizationFile)) {
				t.Errorf("report links linearizability.html: %v, want %v", !tt.visualized, tt.visualized)
			}

			before, err := os.ReadFile(filepath.Join(dir, ResultsFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, ReportFile)); err != nil {
				t.Fatal(err)
			}
			if err := Rebuild(dir); err != nil {
				t.Fatalf("Rebuild: %v", err)
			}
			after, err := os.ReadFile(filepath.Join(dir, ResultsFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("Rebuild changed results.json:\nbefore %s\nafter %s", before, after)
			}
			rebuilt, err := os.ReadFile(filepath.Join(dir, ReportFile))
			if err != nil {
				t.Fatalf("Rebuild did not rewrite report.html: %v", err)
			}
			if !bytes.Equal(rebuilt, page) {
				t.Fatal("Rebuild wrote a different report.html")
			}
		})
	}
}

// assertPNG checks that path is a non-empty PNG image.
func assertPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 200 {
		t.Fatalf("%s is %v: too small to read", path, b)
	}
}

// assertReport parses page as HTML and checks that the verdict comes before
// the first table, and that every referenced file is local and exists.
func assertReport(t *testing.T, dir string, page []byte, verdict checker.Verdict) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("parse report.html: %v", err)
	}
	var (
		sawVerdict, sawTable bool
		verdictText          string
		refs                 []string
		walk                 func(n *html.Node)
	)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "table":
				if !sawVerdict && !sawTable {
					t.Error("a table comes before the verdict")
				}
				sawTable = true
			case "script", "link", "iframe", "object":
				t.Errorf("report.html has a <%s> element", n.Data)
			}
			for _, a := range n.Attr {
				switch {
				case a.Key == "id" && a.Val == "verdict":
					sawVerdict = true
					if n.FirstChild != nil {
						verdictText = n.FirstChild.Data
					}
					if !hasClass(n, verdict.String()) {
						t.Errorf("verdict element classes %v, want %q", n.Attr, verdict.String())
					}
				case a.Key == "src" || a.Key == "href":
					refs = append(refs, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !sawVerdict || verdictText != strings.ToUpper(verdict.String()) {
		t.Fatalf("verdict element found=%v text=%q, want %q", sawVerdict, verdictText, strings.ToUpper(verdict.String()))
	}
	if !sawTable {
		t.Fatal("report.html has no table")
	}
	imgs := 0
	for _, r := range refs {
		if strings.Contains(r, ":") || strings.HasPrefix(r, "/") || strings.Contains(r, "..") {
			t.Errorf("report references %q: not a relative path inside the run directory", r)
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(r))); err != nil {
			t.Errorf("report references %q: %v", r, err)
		}
		if strings.HasPrefix(r, PlotsDir+"/") {
			imgs++
		}
	}
	if imgs != 4 {
		t.Errorf("report shows %d plots, want 4: %v", imgs, refs)
	}
}

func hasClass(n *html.Node, class string) bool {
	for _, a := range n.Attr {
		if a.Key == "class" && strings.Contains(" "+a.Val+" ", " "+class+" ") {
			return true
		}
	}
	return false
}

func TestWriteHandlesAnEmptyHistory(t *testing.T) {
	dir := t.TempDir()
	res := Results{Check: checker.Result{Verdict: checker.Unknown, Reason: "no operation completed ok: nothing was checked"}}
	if err := Write(dir, res, nil); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for _, p := range []string{PlotLatencyRaw, PlotLatencyQuantiles, PlotThroughput, PlotAvailability} {
		assertPNG(t, filepath.Join(dir, filepath.FromSlash(p)))
	}
	page, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	assertReport(t, dir, page, checker.Unknown)
}

func TestLoadResultsRejectsAnotherSchema(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ResultsFile), []byte(`{"schema":"quorum.test/v0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadResults(dir)
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "quorum.test/v0") {
		t.Fatalf("error %v, want ErrSchema naming the schema found", err)
	}
}

func TestRebuildOfAMissingRunNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	err := Rebuild(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ResultsFile)) {
		t.Fatalf("error %v, want it to name %s", err, filepath.Join(dir, ResultsFile))
	}
}

func TestFormatSummary(t *testing.T) {
	events := build([]opSpec{
		{0, history.FWrite, 0, 100 * time.Millisecond, history.OK},
		{1, history.FWrite, 1100 * time.Millisecond, 2300 * time.Millisecond, history.OK},
		{2, history.FRead, 2400 * time.Millisecond, 3 * time.Second, history.Fail},
	}, []faultSpec{{"kill-leader", time.Second, 2 * time.Second}})
	res := Results{
		Check:         checker.Result{Verdict: checker.Unknown, Workload: checker.WorkloadRegister, Reason: "check timed out"},
		CheckDuration: 1500 * time.Millisecond,
		Summary:       Analyze(events, Options{}),
		Dir:           "runs/r1",
	}
	got := FormatSummary(res)
	for _, want := range []string{
		"UNKNOWN (register workload)", "check timed out",
		"3 in 3.000s: 2 ok, 1 fail, 0 info", "0.7 ok ops/s", "check time      1.500s",
		"worst 1.300s after kill-leader at 1.000s (1 faults)", filepath.Join("runs/r1", ReportFile),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary does not contain %q:\n%s", want, got)
		}
	}
}
