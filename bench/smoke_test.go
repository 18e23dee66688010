package bench_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/bench"
	"github.com/quorum-kv/quorum/cluster/local"
	"github.com/quorum-kv/quorum/internal/testbin"
)

var quorumd string

func TestMain(m *testing.M) { testbin.Main(m, &quorumd) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// A tiny bench through the real code path (fresh quorumd clusters of 1 and
// 3 members, one client for a second, every fault once) writes a complete
// run directory that loads, re-reports and compares with itself cleanly.
// Nothing about the figures is asserted: they depend on the machine.
func TestSmokeBenchWritesResultsAndReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real clusters (skipped with -short)")
	}
	cfg := bench.DefaultConfig()
	cfg.Servers = []bench.Server{{Label: "quorumd", Binary: quorumd}}
	cfg.Sizes = []int{1, 3}
	cfg.Clients = []int{1}
	cfg.Duration = time.Second
	cfg.Warmup = 0
	cfg.FaultReps = 1
	cfg.FaultWait = 2 * time.Second
	cfg.RecoveryTimeout = 10 * time.Second
	cfg.Store = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Progress = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := bench.Run(ctx, cfg, &local.Backend{})
	if err != nil {
		t.Fatalf("bench.Run: %v", err)
	}
	t.Log("\n" + bench.FormatSummary(out.Results, out.Dir))
	if len(out.Results.Errors) > 0 {
		t.Fatalf("harness errors: %v", out.Results.Errors)
	}
	if latest, err := filepath.EvalSymlinks(filepath.Join(cfg.Store, "latest")); err != nil || latest != mustEval(t, out.Dir) {
		t.Errorf("store/latest -> %q (%v), want %q", latest, err, out.Dir)
	}
	res, err := bench.LoadResults(out.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Schema != bench.Schema || len(res.Load) != 2 || len(res.Summary.Load) != 2 {
		t.Fatalf("schema %q, %d cells, %d summarized", res.Schema, len(res.Load), len(res.Summary.Load))
	}
	for _, c := range res.Load {
		if c.OK == 0 || c.Latency.Count != c.OK || len(c.Members) != c.Size || len(c.Latency.CDF) != len(bench.CDFQuantiles) {
			t.Errorf("cell %+v", c)
		}
	}
	// Size 1: kill-leader only; size 3: kill, isolate leader, minority, majority.
	if len(res.Availability) != 5 {
		t.Errorf("%d fault trials, want 5: %+v", len(res.Availability), res.Availability)
	}
	if q := res.Summary.Quorum; len(q) != 2 || q[0].Members != 1 || q[1].Members != 3 || q[1].PredictedQuorum != 2 {
		t.Errorf("quorum table %+v", q)
	}
	page, err := os.ReadFile(filepath.Join(out.Dir, bench.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	// The rest of the machine is measured (the runs on this machine's
	// /proc/stat); how much it took depends on the neighbours.
	if sum := bench.FormatSummary(res, ""); !strings.Contains(sum, "rest of the machine (other processes, hypervisor steal): median") {
		t.Errorf("summary has no line on the rest of the machine:\n%s", sum)
	}
	for _, want := range []string{"Quorum table", "Rest of the machine: other processes", "plots/throughput.png", "plots/unavailability.png", "plots/cdf-put-c1.png", "plots/latency-put-c1.png"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, p := range []string{"throughput.png", "unavailability.png", "cdf-put-c1.png", "latency-put-c1.png"} {
		if fi, err := os.Stat(filepath.Join(out.Dir, bench.PlotsDir, p)); err != nil || fi.Size() == 0 {
			t.Errorf("plot %s: %v", p, err)
		}
	}
	if err := bench.Rebuild(out.Dir); err != nil {
		t.Errorf("Rebuild: %v", err)
	}
	if c := bench.Compare(res, res, 0.10); c.Regressions != 0 || len(c.Unmatched) != 0 || len(c.Changes) == 0 {
		t.Errorf("a run compared with itself: %s", c.Format())
	}
}

func mustEval(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
