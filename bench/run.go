package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/cluster/local"
)

// Outcome is a finished (or interrupted) run.
type Outcome struct {
	// Dir is the run directory.
	Dir     string
	Results Results
}

// engine is one Run's state; only Run's goroutine uses it.
type engine struct {
	cfg  Config
	res  Results
	prog *progress
	ks   keyspace
}

// Run benchmarks every server on every size, interleaved: for each size,
// for each round, each server in turn gets a fresh local cluster, runs
// every (workload, clients) cell and then every fault FaultReps times.
// It writes Store/bench/<timestamp>/ (results.json, report.html, plots/,
// clusters/<server>-<size>-r<round>/logs) and points Store/latest and
// Store/bench/latest at it.
//
// A cluster that fails to start or recover is recorded in Results.Errors
// and the run goes on. When ctx ends, Run writes what was measured and
// returns it with ctx's error.
func Run(ctx context.Context, cfg Config) (*Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := cfg.Now()
	dir, err := newRunDir(cfg.Store, start)
	if err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, ks: newKeyspace(cfg.KeySize, cfg.ValueSize, cfg.KeySpace, cfg.Seed)}
	e.res.Run = RunInfo{Start: start.UTC(), Command: cfg.Command, Servers: cfg.Servers, Machine: machine(), Settings: Settings{
		Sizes: cfg.Sizes, Workloads: cfg.Workloads, Clients: cfg.Clients, Conns: cfg.Conns, Duration: cfg.Duration,
		Warmup: cfg.Warmup, KeySize: cfg.KeySize, ValueSize: cfg.ValueSize, KeySpace: cfg.KeySpace, OpTimeout: cfg.OpTimeout,
		Rounds: cfg.Rounds, Faults: cfg.Faults, FaultReps: cfg.FaultReps, FaultWait: cfg.FaultWait,
		ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout, Seed: cfg.Seed,
		ElectionTimeout: "server default",
	}}
	e.prog = newProgress(cfg.Progress, e.steps())
	t0 := time.Now()
	say(cfg.Progress, "bench %s: servers %s, sizes %v, %v x clients %v, %v per cell, %d round(s), faults %v x%d",
		dir, labels(cfg.Servers), cfg.Sizes, cfg.Workloads, cfg.Clients, cfg.Duration, cfg.Rounds, cfg.Faults, cfg.FaultReps)

	var runErr error
loop:
	for _, size := range cfg.Sizes {
		for round := 1; round <= cfg.Rounds; round++ {
			for _, srv := range cfg.Servers {
				if err := e.runCluster(ctx, dir, srv, size, round); err != nil {
					if ctx.Err() != nil {
						runErr = ctx.Err()
						break loop
					}
					msg := fmt.Sprintf("%s, %d members, round %d: %v", srv.Label, size, round, err)
					e.res.Errors = append(e.res.Errors, msg)
					cfg.Logger.Warn("bench cluster failed", "server", srv.Label, "size", size, "round", round, "err", err)
					e.prog.note("error: " + msg)
				}
			}
		}
	}
	e.prog.finish()
	e.res.Run.Elapsed = time.Since(t0)
	e.res.Summary = Summarize(cfg.Servers, e.res.Load, e.res.Availability)
	if err := Write(dir, e.res); err != nil {
		return nil, errors.Join(err, runErr)
	}
	return &Outcome{Dir: dir, Results: e.res}, runErr
}

// steps is the number of progress steps: one per cell and per trial.
func (e *engine) steps() int {
	n := 0
	for _, size := range e.cfg.Sizes {
		per := len(e.cfg.Workloads) * len(e.cfg.Clients)
		names := make([]string, size)
		for i := range names {
			names[i] = fmt.Sprintf("n%d", i+1)
		}
		for _, f := range e.cfg.Faults {
			if _, ok := planFault(f, names, names[0]); ok {
				per += e.cfg.FaultReps
			}
		}
		n += per * e.cfg.Rounds * len(e.cfg.Servers)
	}
	return n
}

// runCluster runs everything for one server, size and round on a fresh
// cluster, appending to e.res. A cluster that does not recover from a fault
// is replaced by a fresh one (the trial is kept, marked not recovered) so
// the remaining faults are still measured.
func (e *engine) runCluster(ctx context.Context, runDir string, srv Server, size, round int) error {
	where := fmt.Sprintf("round %d/%d · %s · %d members", round, e.cfg.Rounds, srv.Label, size)
	gen := 0
	c, closeCluster, err := e.startCluster(ctx, runDir, srv, size, round, gen, where)
	if err != nil {
		return err
	}
	defer func() { closeCluster() }()

	preloaded := false
	for _, w := range e.cfg.Workloads {
		if w != WorkloadPut && !preloaded {
			e.prog.status(where + " · preloading keys")
			conns, err := dialConns(ctx, c.Endpoints(), 8)
			if err != nil {
				return err
			}
			err = preload(ctx, conns, e.ks, e.cfg.OpTimeout)
			closeConns(conns)
			if err != nil {
				return fmt.Errorf("preload %d keys: %w", e.ks.n, err)
			}
			preloaded = true
		}
		for _, clients := range e.cfg.Clients {
			e.prog.status(fmt.Sprintf("%s · %s · %d clients", where, w, clients))
			cell, err := e.cell(ctx, c, srv, size, round, w, clients)
			if err != nil {
				return err
			}
			e.res.Load = append(e.res.Load, cell)
			e.prog.step()
			e.prog.note(fmt.Sprintf("%s · %s · %d clients: %.0f req/s, p99 %v, %d errors",
				where, w, clients, cell.Throughput, cell.Latency.P99, cell.Errors))
		}
	}
	if e.cfg.FaultReps == 0 || len(e.cfg.Faults) == 0 {
		return nil
	}
	p, err := startProber(ctx, c.Endpoints(), e.cfg.ProbeInterval, e.cfg.ProbeTimeout)
	if err != nil {
		return err
	}
	defer func() { p.stop() }()
	for _, f := range e.cfg.Faults {
		for rep := 1; rep <= e.cfg.FaultReps; rep++ {
			e.prog.status(fmt.Sprintf("%s · %s %d/%d", where, f, rep, e.cfg.FaultReps))
			t, applies, err := e.trial(ctx, c, p, f)
			if !applies {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			measured := t.Leader != ""
			if measured {
				t.Server, t.Round, t.Rep = srv.Label, round, rep
				t.Recovered = err == nil
				if err != nil {
					t.RecoveryError = err.Error()
				}
				e.res.Availability = append(e.res.Availability, t)
				e.prog.step()
				verdict := fmt.Sprintf("writable after %v", t.Window.Round(time.Millisecond))
				if !t.Writable {
					verdict = fmt.Sprintf("not writable within %v", e.cfg.FaultWait)
				}
				if err != nil {
					verdict += "; did not recover after healing: " + err.Error()
				}
				e.prog.note(fmt.Sprintf("%s · %s %d/%d (%v): %s", where, f, rep, e.cfg.FaultReps, t.Targets, verdict))
			}
			if err == nil {
				continue
			}
			if !measured {
				// The cluster was not healthy before the fault: count the
				// repetition as lost, not as a trial.
				e.res.Errors = append(e.res.Errors, fmt.Sprintf("%s, %s %d: %v", where, f, rep, err))
				e.prog.step()
			}
			e.cfg.Logger.Warn("replacing a cluster that did not recover", "server", srv.Label, "size", size, "err", err)
			p.stop()
			closeCluster()
			gen++
			if c, closeCluster, err = e.startCluster(ctx, runDir, srv, size, round, gen, where); err != nil {
				closeCluster = func() {}
				p = &prober{cancel: func() {}}
				return err
			}
			if p, err = startProber(ctx, c.Endpoints(), e.cfg.ProbeInterval, e.cfg.ProbeTimeout); err != nil {
				p = &prober{cancel: func() {}}
				return err
			}
		}
	}
	return nil
}

// startCluster starts a fresh cluster in runDir/clusters/<label>-<size>-r<round>
// (with a -<gen> suffix for replacements); closeCluster stops it and
// deletes its data, keeping the logs.
func (e *engine) startCluster(ctx context.Context, runDir string, srv Server, size, round, gen int, where string) (c *local.Cluster, closeCluster func(), err error) {
	name := fmt.Sprintf("%s-%d-r%d", srv.Label, size, round)
	if gen > 0 {
		name += fmt.Sprintf("-%d", gen)
	}
	cdir := filepath.Join(runDir, "clusters", name)
	lc := local.DefaultConfig()
	lc.Binary, lc.Size, lc.Dir, lc.Logger = srv.Binary, size, cdir, e.cfg.Logger
	if e.cfg.ConfigureCluster != nil {
		sc := e.cfg.ConfigureCluster(ServerConfig{Server: srv, Size: size})
		lc.ExtraArgs = sc.ExtraArgs
	}
	e.prog.status(where + " · starting")
	c, err = local.New(ctx, lc)
	if err != nil {
		return nil, nil, fmt.Errorf("start cluster (logs in %s): %w", filepath.Join(cdir, "logs"), err)
	}
	var once sync.Once
	return c, func() {
		once.Do(func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := c.Close(cctx); err != nil {
				e.cfg.Logger.Warn("close cluster", "dir", cdir, "err", err)
			}
			// The data is of no use after the run; the logs stay.
			os.RemoveAll(filepath.Join(cdir, "data"))
		})
	}, nil
}

// cell measures one (workload, clients) cell on c.
func (e *engine) cell(ctx context.Context, c *local.Cluster, srv Server, size, round int, w string, clients int) (LoadCell, error) {
	nconns := e.cfg.connsFor(clients)
	conns, err := dialConns(ctx, c.Endpoints(), nconns)
	if err != nil {
		return LoadCell{}, err
	}
	defer closeConns(conns)

	type snap struct {
		pid   int
		cpu   time.Duration
		reset bool
	}
	nodes := c.Nodes()
	before := make([]snap, len(nodes))
	var selfBefore time.Duration
	measuring := make(chan struct{})
	spec := loadSpec{
		Workload: w, Clients: clients, Conns: nconns, Warmup: e.cfg.Warmup, Duration: e.cfg.Duration,
		OpTimeout: e.cfg.OpTimeout, Seed: e.cfg.Seed + uint64(round)*1_000_003 + uint64(size)*7919 + uint64(clients),
		OnMeasure: func() {
			defer close(measuring)
			selfBefore = selfCPU()
			for i, n := range nodes {
				pid := c.LocalNode(n.Name()).PID()
				before[i].pid = pid
				if pid != 0 {
					before[i].cpu, _ = procCPU(pid)
					before[i].reset = resetPeakRSS(pid)
				}
			}
		},
	}
	out := runLoad(ctx, conns, e.ks, spec)
	<-measuring
	cell := LoadCell{
		Server: srv.Label, Round: round, Size: size, Workload: w, Clients: clients, Conns: nconns,
		OK: out.OK, Errors: out.Errors, ErrorSample: out.ErrorSample, Measured: out.Measured,
		Latency: latencyOf(out.Hist), LoadGenCPU: selfCPU() - selfBefore,
	}
	if out.Measured > 0 {
		cell.Throughput = float64(out.OK) / out.Measured.Seconds()
	}
	for i, n := range nodes {
		mu := MemberUsage{Name: n.Name(), PeakRSSReset: before[i].reset}
		if pid := c.LocalNode(n.Name()).PID(); pid != 0 && pid == before[i].pid {
			if cpu, err := procCPU(pid); err == nil {
				mu.CPU = cpu - before[i].cpu
			}
			mu.PeakRSS, _ = procPeakRSS(pid)
		}
		cell.Members = append(cell.Members, mu)
	}
	if ctx.Err() != nil {
		return cell, ctx.Err()
	}
	return cell, nil
}

// newRunDir creates store/bench/<timestamp>/ and points store/latest and
// store/bench/latest at it (as the test command does for its runs).
func newRunDir(store string, now time.Time) (string, error) {
	stamp := now.UTC().Format("20060102T150405.000Z")
	dir := filepath.Join(store, "bench", stamp)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create bench run directory: %w", err)
	}
	for _, link := range []struct{ at, to string }{
		{filepath.Join(store, "latest"), filepath.Join("bench", stamp)},
		{filepath.Join(store, "bench", "latest"), stamp},
	} {
		tmp := link.at + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(link.to, tmp); err != nil {
			return "", fmt.Errorf("link %s: %w", link.at, err)
		}
		if err := os.Rename(tmp, link.at); err != nil {
			return "", fmt.Errorf("link %s: %w", link.at, err)
		}
	}
	return dir, nil
}

func labels(ss []Server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Label+"="+s.Binary)
	}
	return slices.Clip(out)
}

// The local backend can kill members and cut links: what trials need.
var _ faultTarget = (*local.Cluster)(nil)
