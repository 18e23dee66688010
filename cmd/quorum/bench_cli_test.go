package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/bench"
	"github.com/quorum-kv/quorum/cluster/docker"
	"github.com/quorum-kv/quorum/rundir"
)

// benchShape is what a bench run measured, without the figures: the cells,
// trials and summary rows by their keys, and the settings.
type benchShape struct {
	Settings bench.Settings
	Servers  []string
	Load     []string
	Trials   []string
	Summary  []string
}

func shapeOf(res bench.Results) benchShape {
	s := benchShape{Settings: res.Run.Settings}
	for _, srv := range res.Run.Servers {
		s.Servers = append(s.Servers, srv.Label)
	}
	for _, c := range res.Load {
		s.Load = append(s.Load, fmt.Sprintf("%s r%d size %d %s %d clients %d conns", c.Server, c.Round, c.Size, c.Workload, c.Clients, c.Conns))
	}
	for _, f := range res.Availability {
		s.Trials = append(s.Trials, fmt.Sprintf("%s r%d size %d %s #%d lost %d", f.Server, f.Round, f.Size, f.Fault, f.Rep, f.Lost))
	}
	for _, l := range res.Summary.Load {
		s.Summary = append(s.Summary, fmt.Sprintf("load %s %s size %d %d clients", l.Server, l.Workload, l.Size, l.Clients))
	}
	for _, f := range res.Summary.Availability {
		s.Summary = append(s.Summary, fmt.Sprintf("fault %s size %d %s lost %d", f.Server, f.Size, f.Fault, f.Lost))
	}
	for _, q := range res.Summary.Quorum {
		s.Summary = append(s.Summary, fmt.Sprintf("quorum %s %d members", q.Server, q.Members))
	}
	slices.Sort(s.Load)
	slices.Sort(s.Trials)
	slices.Sort(s.Summary)
	return s
}

// benchRun runs a short `quorum bench` on backend (quorumd built by the
// CLI, as by default) and returns the results it stored.
func benchRun(t *testing.T, backend string) bench.Results {
	t.Helper()
	store := t.TempDir()
	start := time.Now()
	o := quorum(t, "bench", "--backend", backend, "--sizes", "3", "--workload", "put", "--clients", "100",
		"--duration", "2s", "--warmup", "0s", "--faults", "kill-leader,isolate-leader", "--fault-reps", "1", "--store", store)
	t.Logf("bench --backend %s: %v\n%s%s", backend, time.Since(start).Round(time.Second), o.stderr, o.stdout)
	if o.code != 0 {
		t.Fatalf("bench --backend %s: exit %d", backend, o.code)
	}
	dir := filepath.Join(store, rundir.Latest)
	res, err := bench.LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, bench.ReportFile)); err != nil || st.Size() == 0 {
		t.Errorf("report.html: %v", err)
	}
	if res.Run.Backend != backend || len(res.Errors) != 0 {
		t.Errorf("run.backend %q, errors %q; want %q and none", res.Run.Backend, res.Errors, backend)
	}
	var cells int
	for _, c := range res.Load {
		if c.Size == 3 && c.Workload == bench.WorkloadPut && c.Clients == 100 {
			cells++
			if c.OK == 0 {
				t.Errorf("load cell %+v: no request acknowledged", c)
			}
		}
	}
	if cells != 1 || len(res.Load) != 1 {
		t.Errorf("%d load cells, %d for size 3 put 100 clients; want that one", len(res.Load), cells)
	}
	recovered := map[string]bool{}
	for _, f := range res.Availability {
		recovered[f.Fault] = f.Recovered
		if !f.Recovered {
			t.Errorf("%s did not recover: %s", f.Fault, f.RecoveryError)
		}
	}
	if want := map[string]bool{"kill-leader": true, "isolate-leader": true}; !reflect.DeepEqual(recovered, want) {
		t.Errorf("trials recovered %v, want %v", recovered, want)
	}
	return res
}

// The documented containerized bench, driven through the CLI end to end:
// one load cell and both faults, stored with a report; the local backend
// measures the same cells and trials.
func TestBenchEndToEndOnDockerAndLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end bench (about 30s: two short benches, docker and local)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	eng, err := docker.NewEngine(ctx, nil, nil)
	if err != nil {
		t.Skipf("no Docker engine reachable, skipping the docker bench: %v", err)
	}
	eng.Close()
	if os.Geteuid() != 0 {
		t.Skip("isolate-leader in containers needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")
	}
	onDocker := benchRun(t, "docker")
	onLocal := benchRun(t, "local")
	if d, l := shapeOf(onDocker), shapeOf(onLocal); !reflect.DeepEqual(d, l) {
		t.Errorf("docker and local runs differ in shape:\ndocker %+v\nlocal  %+v", d, l)
	}
}
