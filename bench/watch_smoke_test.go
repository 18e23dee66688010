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
)

// etcdBinary is tools/bin/etcd when tools/build.sh built it, else "".
func etcdBinary() string {
	p, err := filepath.Abs("../tools/bin/etcd")
	if err != nil {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// watchSmokeConfig is a small run of every watch and memory mode on one
// 3-member cluster of srv: watch with 1 and 20 watchers, put with and
// without 50 idle watchers, 200 idle watchers' and 200 leases' memory.
func watchSmokeConfig(t *testing.T, srv bench.Server) bench.Config {
	cfg := bench.DefaultConfig()
	cfg.Servers = []bench.Server{srv}
	cfg.Sizes = []int{3}
	cfg.Workloads = []string{bench.WorkloadWatch, bench.WorkloadPut, bench.WorkloadWatchMemory, bench.WorkloadLeaseMemory}
	cfg.Watchers = []int{1, 20}
	cfg.WatchPutRate = 100
	cfg.Clients = []int{4}
	cfg.IdleWatchers = []int{0, 50}
	cfg.MemoryWatchers = 200
	cfg.MemoryLeases = 200
	cfg.MemorySettle = 500 * time.Millisecond
	cfg.Duration = time.Second
	cfg.Warmup = 200 * time.Millisecond
	cfg.Faults = nil
	cfg.Store = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Progress = testWriter{t}
	return cfg
}

// Every put's event reaches every watcher exactly once, with latency
// samples; idle watchers see no events and put cells run beside them;
// memory cells create every object and read every member's RSS. The run
// re-reports and compares with itself.
func checkWatchSmoke(t *testing.T, srv bench.Server) {
	if testing.Short() {
		t.Skip("starts real clusters (skipped with -short)")
	}
	cfg := watchSmokeConfig(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := bench.Run(ctx, cfg, &local.Backend{})
	if err != nil {
		t.Fatalf("bench.Run: %v", err)
	}
	t.Log("\n" + bench.FormatSummary(out.Results, out.Dir))
	if len(out.Results.Errors) > 0 {
		t.Fatalf("harness errors: %v", out.Results.Errors)
	}
	res, err := bench.LoadResults(out.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var watch, idle, plain, mem int
	for _, c := range res.Load {
		switch {
		case c.Workload == bench.WorkloadWatch:
			watch++
			w := c.Watch
			if w == nil {
				t.Fatalf("watch cell without stats: %+v", c)
			}
			if w.Puts < 50 || w.PutErrors != 0 || w.Missing != 0 || w.Duplicates != 0 || w.Extra != 0 || w.WatchErrors != 0 ||
				w.Delivered != w.Expected || w.Expected != w.Puts*int64(c.Watchers) {
				t.Errorf("%d watchers: delivery %+v", c.Watchers, *w)
			}
			// 100 puts/s for 1 s measured: about 100 events per watcher.
			if c.OK < 50*int64(c.Watchers) || c.Latency.Count != c.OK || c.Throughput <= 0 || w.PutLatency.Count == 0 ||
				w.FromSend.Count+w.BeforeAck < c.OK {
				t.Errorf("%d watchers: %d events measured, %d latency samples, %.0f/s, %d put latencies", c.Watchers, c.OK, c.Latency.Count, c.Throughput, w.PutLatency.Count)
			}
		case c.Workload == bench.WorkloadPut && c.IdleWatchers > 0:
			idle++
			if c.IdleWatchers != 50 || c.IdleWatchEvents != 0 || c.OK == 0 || c.Errors != 0 {
				t.Errorf("put with idle watchers: %d idle, %d idle events, %d ok, %d errors", c.IdleWatchers, c.IdleWatchEvents, c.OK, c.Errors)
			}
		case c.Workload == bench.WorkloadPut:
			plain++
		default:
			mem++
			m := c.Memory
			want := map[string]int{bench.WorkloadWatchMemory: 200, bench.WorkloadLeaseMemory: 200}[c.Workload]
			if m == nil || m.Objects != want || m.Errors != 0 || c.OK != int64(want) || c.IdleWatchEvents != 0 || c.Latency.Count != int64(want) {
				t.Fatalf("%s: %+v, memory %+v", c.Workload, c, m)
			}
			for _, mu := range c.Members {
				if mu.RSSBefore <= 0 || mu.RSSAfter <= 0 || mu.RSSAnonBefore <= 0 || mu.RSSAnonAfter <= 0 {
					t.Errorf("%s: member %s RSS before %d after %d", c.Workload, mu.Name, mu.RSSBefore, mu.RSSAfter)
				}
			}
		}
	}
	if watch != 2 || idle != 1 || plain != 1 || mem != 2 {
		t.Errorf("cells: %d watch, %d put with idle watchers, %d put, %d memory; want 2, 1, 1, 2", watch, idle, plain, mem)
	}
	var idleRatios int
	for _, r := range res.Summary.Ratios {
		if r.Kind == "idle-watchers" && r.IdleWatchers == 50 && r.Median > 0 {
			idleRatios++
		}
	}
	if idleRatios != 2 {
		t.Errorf("%d idle-watcher ratios (throughput, p99), want 2: %+v", idleRatios, res.Summary.Ratios)
	}
	if len(res.Summary.Load) != 6 {
		t.Errorf("%d summary rows, want 6", len(res.Summary.Load))
	}
	page, err := os.ReadFile(filepath.Join(out.Dir, bench.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>Watch</h2>", "<h2>Memory</h2>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if err := bench.Rebuild(out.Dir); err != nil {
		t.Errorf("Rebuild: %v", err)
	}
	if c := bench.Compare(res, res, 0.10); c.Regressions != 0 || len(c.Unmatched) != 0 || len(c.Changes) == 0 {
		t.Errorf("a run compared with itself: %s", c.Format())
	}
}

func TestWatchAndMemorySmokeQuorumd(t *testing.T) {
	checkWatchSmoke(t, bench.Server{Label: "quorumd", Binary: quorumd})
}

func TestWatchAndMemorySmokeEtcd(t *testing.T) {
	bin := etcdBinary()
	if bin == "" {
		t.Skip("tools/bin/etcd not built (bash tools/build.sh)")
	}
	checkWatchSmoke(t, bench.Server{Label: "etcd", Binary: bin})
}
