package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/nemesis"
	"github.com/quorum-kv/quorum/rundir"
)

// Outcome is a finished (or interrupted) run.
type Outcome struct {
	// Dir is the run directory.
	Dir     string
	Results Results
}

// engine is one Run's state; only Run's goroutine uses it.
type engine struct {
	cfg     Config
	backend cluster.Backend
	res     Results
	prog    *progress
	ks      keyspace
	// nemeses holds the nemesis of each fault; they share one rand.Rand
	// from the seed.
	nemeses map[string]nemesis.Nemesis
}

// Run benchmarks every server on every size, interleaved: for each size,
// for each round, each server in turn gets a fresh cluster from backend,
// runs every (workload, clients) cell and then every fault FaultReps
// times. It writes Store/bench/<timestamp>/ (results.json, report.html,
// plots/, clusters/<server>-<size>-r<round>/logs) and points Store/latest
// and Store/bench/latest at it.
//
// A cluster that fails to start or recover is recorded in Results.Errors
// and the run goes on. When ctx ends, Run writes what was measured and
// returns it with ctx's error.
func Run(ctx context.Context, cfg Config, backend cluster.Backend) (*Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := cfg.Now()
	dir, err := rundir.Create(cfg.Store, "bench", start)
	if err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, backend: backend, ks: newKeyspace(cfg.KeySize, cfg.ValueSize, cfg.KeySpace, cfg.Seed),
		nemeses: map[string]nemesis.Nemesis{}}
	nopts := nemesis.DefaultOptions()
	nopts.Rand = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	for _, f := range cfg.Faults {
		if e.nemeses[f], err = nemesis.New(NemesisOf(f), nopts); err != nil {
			return nil, fmt.Errorf("bench fault %s: %w", f, err)
		}
	}
	e.res.Run = RunInfo{Start: start.UTC(), Command: cfg.Command, Backend: backend.Name(), Servers: cfg.Servers, Machine: machine(), Settings: Settings{
		Sizes: cfg.Sizes, Workloads: cfg.Workloads, Clients: cfg.Clients, Conns: cfg.Conns, Duration: cfg.Duration,
		Warmup: cfg.Warmup, KeySize: cfg.KeySize, ValueSize: cfg.ValueSize, KeySpace: cfg.KeySpace, OpTimeout: cfg.OpTimeout,
		Rounds: cfg.Rounds, Faults: cfg.Faults, FaultReps: cfg.FaultReps, FaultWait: cfg.FaultWait,
		ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout, Seed: cfg.Seed,
		ElectionTimeout: "server default", HeartbeatInterval: "server default",
		SnapshotCount: cfg.Members.SnapshotCount, ServerArgs: cfg.Members.ExtraArgs,
		Watchers: cfg.Watchers, WatchConns: cfg.WatchConns, WatchPutRate: cfg.WatchPutRate, WatchEventRate: cfg.WatchEventRate,
		IdleWatchers: cfg.IdleWatchers, MemoryWatchers: cfg.MemoryWatchers, MemoryLeases: cfg.MemoryLeases,
	}}
	if cfg.Members.ElectionTimeout > 0 {
		e.res.Run.Settings.ElectionTimeout = cfg.Members.ElectionTimeout.String()
	}
	if cfg.Members.HeartbeatInterval > 0 {
		e.res.Run.Settings.HeartbeatInterval = cfg.Members.HeartbeatInterval.String()
	}
	e.prog = newProgress(cfg.Progress, e.steps())
	t0 := time.Now()
	say(cfg.Progress, "bench %s: seed %d, %s backend, servers %s, sizes %v, %v x clients %v, %v per cell, %d round(s), faults %v x%d",
		dir, cfg.Seed, backend.Name(), labels(cfg.Servers), cfg.Sizes, cfg.Workloads, cfg.Clients, cfg.Duration, cfg.Rounds, cfg.Faults, cfg.FaultReps)

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
		per := 0
		for _, w := range e.cfg.Workloads {
			switch {
			case w == WorkloadWatch:
				per += len(e.cfg.Watchers)
			case clientWorkload(w):
				per += len(e.cfg.Clients) * len(e.cfg.IdleWatchers)
			default:
				per++
			}
		}
		for _, f := range e.cfg.Faults {
			if faultApplies(f, size) {
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
		if needsPreload(w) && !preloaded {
			e.prog.status(where + " · preloading keys")
			conns, err := dialConns(ctx, c, 8)
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
		switch w {
		case WorkloadWatch:
			for _, n := range e.cfg.Watchers {
				e.prog.status(fmt.Sprintf("%s · watch · %d watchers", where, n))
				cell, err := e.watchCell(ctx, c, srv, size, round, n)
				if err != nil {
					return err
				}
				e.res.Load = append(e.res.Load, cell)
				e.prog.step()
				ws := cell.Watch
				e.prog.note(fmt.Sprintf("%s · watch · %d watchers: %.0f events/s (offered %.0f), p50 %v p99 %v, %d missing, %d duplicate, %d put errors",
					where, n, cell.Throughput, ws.EventRate, cell.Latency.P50, cell.Latency.P99, ws.Missing, ws.Duplicates, ws.PutErrors))
			}
			continue
		case WorkloadWatchMemory, WorkloadLeaseMemory:
			e.prog.status(fmt.Sprintf("%s · %s", where, w))
			cell, err := e.memoryCell(ctx, c, srv, size, round, w)
			if err != nil {
				return err
			}
			e.res.Load = append(e.res.Load, cell)
			e.prog.step()
			m := cell.Memory
			e.prog.note(fmt.Sprintf("%s · %s: %d %s, members' RSS +%s (largest member +%s), settled %v",
				where, w, m.Objects, m.Kind, fmtMiB(m.RSSDelta), fmtMiB(m.MaxMemberDelta), m.Settled))
			continue
		}
		for _, clients := range e.cfg.Clients {
			for _, idle := range idleOrder(e.cfg.IdleWatchers, round) {
				label := fmt.Sprintf("%s · %s · %d clients", where, w, clients)
				if idle > 0 {
					label += fmt.Sprintf(" · %d idle watchers", idle)
				}
				e.prog.status(label)
				cell, err := e.cell(ctx, c, srv, size, round, w, clients, idle)
				if err != nil {
					return err
				}
				e.res.Load = append(e.res.Load, cell)
				e.prog.step()
				e.prog.note(fmt.Sprintf("%s: %.0f req/s, p99 %v, %d errors", label, cell.Throughput, cell.Latency.P99, cell.Errors))
			}
		}
	}
	if e.cfg.FaultReps == 0 || len(e.cfg.Faults) == 0 {
		return nil
	}
	p, err := startProber(ctx, c, e.cfg.ProbeInterval, e.cfg.ProbeTimeout)
	if err != nil {
		return err
	}
	defer func() { p.stop() }()
	for _, f := range e.cfg.Faults {
		if !faultApplies(f, size) {
			continue
		}
		if err := e.nemeses[f].Check(c); err != nil {
			msg := fmt.Sprintf("%s: %s cannot run on this cluster: %v", where, f, err)
			e.res.Errors = append(e.res.Errors, msg)
			e.prog.note("error: " + msg)
			for range e.cfg.FaultReps {
				e.prog.step()
			}
			continue
		}
		for rep := 1; rep <= e.cfg.FaultReps; rep++ {
			e.prog.status(fmt.Sprintf("%s · %s %d/%d", where, f, rep, e.cfg.FaultReps))
			t, err := e.trial(ctx, c, p, f, e.nemeses[f])
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
			if p, err = startProber(ctx, c, e.cfg.ProbeInterval, e.cfg.ProbeTimeout); err != nil {
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
func (e *engine) startCluster(ctx context.Context, runDir string, srv Server, size, round, gen int, where string) (c cluster.Cluster, closeCluster func(), err error) {
	name := fmt.Sprintf("%s-%d-r%d", srv.Label, size, round)
	if gen > 0 {
		name += fmt.Sprintf("-%d", gen)
	}
	cdir := filepath.Join(runDir, "clusters", name)
	e.prog.status(where + " · starting")
	c, err = e.backend.Start(ctx, cluster.StartConfig{
		Server: srv, Size: size, Dir: cdir, Logger: e.cfg.Logger, MemberSettings: e.cfg.Members,
		Seed: e.cfg.Seed + uint64(round)*1_000_003 + uint64(size)*7919 + uint64(gen),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("start cluster (logs in %s): %w", filepath.Join(cdir, rundir.LogsDir), err)
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
			os.RemoveAll(filepath.Join(cdir, rundir.DataDir))
		})
	}, nil
}

// pid is the server process of n on this host, 0 when the backend does not
// say (cluster.ProcessNode) or the member is down.
func pid(n cluster.Node) int {
	if pn, ok := n.(cluster.ProcessNode); ok {
		return pn.PID()
	}
	return 0
}

// usageProbe measures the members' CPU and peak RSS, the load generator's
// CPU and the rest of the machine's over a measured time: start at its
// beginning, finish at its end.
type usageProbe struct {
	nodes      []cluster.Node
	pids       []int
	cpu        []time.Duration
	reset      []bool
	selfBefore time.Duration
	// machine is /proc/stat's reading at the start; machineOK false when
	// it could not be read.
	machine   machineCPU
	machineOK bool
}

func startUsage(nodes []cluster.Node) *usageProbe {
	u := &usageProbe{nodes: nodes, pids: make([]int, len(nodes)), cpu: make([]time.Duration, len(nodes)), reset: make([]bool, len(nodes))}
	u.selfBefore = selfCPU()
	u.machine, u.machineOK = readMachineCPU()
	for i, n := range nodes {
		u.pids[i] = pid(n)
		if u.pids[i] != 0 {
			u.cpu[i], _ = procCPU(u.pids[i])
			u.reset[i] = resetPeakRSS(u.pids[i])
		}
	}
	return u
}

// finish sets cell's usage since start: each member's, the load
// generator's CPU, and the CPU the rest of the machine took (other
// processes' busy time, the hypervisor's steal), when /proc/stat tells.
func (u *usageProbe) finish(cell *LoadCell) {
	var members []MemberUsage
	var membersCPU time.Duration
	for i, n := range u.nodes {
		mu := MemberUsage{Name: n.Name(), PeakRSSReset: u.reset[i]}
		if p := pid(n); p != 0 && p == u.pids[i] {
			if cpu, err := procCPU(p); err == nil {
				mu.CPU = cpu - u.cpu[i]
				membersCPU += mu.CPU
			}
			mu.PeakRSS, _ = procPeakRSS(p)
		}
		members = append(members, mu)
	}
	cell.Members, cell.LoadGenCPU = members, selfCPU()-u.selfBefore
	if now, ok := readMachineCPU(); ok && u.machineOK {
		// Ticks and the processes' own clocks round differently: a
		// slightly negative remainder is none.
		cell.OtherCPU = max(now.busy-u.machine.busy-membersCPU-cell.LoadGenCPU, 0)
		cell.StealCPU = max(now.steal-u.machine.steal, 0)
		cell.RestMeasured = true
	}
}

// idleOrder is the order of the idle-watcher cells in round (1-based):
// as given in odd rounds, reversed in even ones. The cells of one cluster
// run one after the other on a store that grows with every put, so a
// fixed order would charge the growth to the later count; alternating it
// spreads that bias evenly over the with/without ratios of a run with an
// even number of rounds.
func idleOrder(counts []int, round int) []int {
	if round%2 == 1 {
		return counts
	}
	out := slices.Clone(counts)
	slices.Reverse(out)
	return out
}

// cellSeed is the seed of one cell's random choices.
func (e *engine) cellSeed(size, round, n int) uint64 {
	return e.cfg.Seed + uint64(round)*1_000_003 + uint64(size)*7919 + uint64(n)
}

// cell measures one (workload, clients) cell on c, with idle idle
// watchers open throughout (none when 0).
func (e *engine) cell(ctx context.Context, c cluster.Cluster, srv Server, size, round int, w string, clients, idle int) (LoadCell, error) {
	var idleEvents func() int64
	if idle > 0 {
		wconns, err := dialConns(ctx, c, e.cfg.watchConnsFor(idle))
		if err != nil {
			return LoadCell{}, err
		}
		defer closeConns(wconns)
		ws, events, err := openIdleWatchers(ctx, wconns, e.ks, idle, watchCreateTimeout(idle))
		if err != nil {
			return LoadCell{}, err
		}
		defer ws.close()
		idleEvents = events.Load
	}
	nconns := e.cfg.connsFor(clients)
	conns, err := dialConns(ctx, c, nconns)
	if err != nil {
		return LoadCell{}, err
	}
	defer closeConns(conns)

	var usage *usageProbe
	measuring := make(chan struct{})
	spec := loadSpec{
		Workload: w, Clients: clients, Conns: nconns, Warmup: e.cfg.Warmup, Duration: e.cfg.Duration,
		OpTimeout: e.cfg.OpTimeout, Seed: e.cellSeed(size, round, clients),
		OnMeasure: func() {
			defer close(measuring)
			usage = startUsage(c.Nodes())
		},
	}
	out := runLoad(ctx, conns, e.ks, spec)
	<-measuring
	cell := LoadCell{
		Server: srv.Label, Round: round, Size: size, Workload: w, Clients: clients, Conns: nconns, IdleWatchers: idle,
		OK: out.OK, Errors: out.Errors, ErrorSample: out.ErrorSample, Measured: out.Measured,
		Latency: latencyOf(out.Hist),
	}
	usage.finish(&cell)
	if idleEvents != nil {
		cell.IdleWatchEvents = idleEvents()
	}
	if out.Measured > 0 {
		cell.Throughput = float64(out.OK) / out.Measured.Seconds()
	}
	if ctx.Err() != nil {
		return cell, ctx.Err()
	}
	return cell, nil
}

// watchCell measures one watch cell on c: watchers watchers of the whole
// key space over watchConnsFor(watchers) connections, under puts sent
// round-robin over one connection per member.
func (e *engine) watchCell(ctx context.Context, c cluster.Cluster, srv Server, size, round, watchers int) (LoadCell, error) {
	nconns := e.cfg.watchConnsFor(watchers)
	wconns, err := dialConns(ctx, c, nconns)
	if err != nil {
		return LoadCell{}, err
	}
	defer closeConns(wconns)
	pconns, err := dialConns(ctx, c, len(c.Endpoints()))
	if err != nil {
		return LoadCell{}, err
	}
	defer closeConns(pconns)
	var usage *usageProbe
	measuring := make(chan struct{})
	spec := watchSpec{
		Watchers: watchers, PutRate: e.cfg.watchPutRate(watchers), Warmup: e.cfg.Warmup, Duration: e.cfg.Duration,
		OpTimeout: e.cfg.OpTimeout, Seed: e.cellSeed(size, round, watchers),
		OnMeasure: func() {
			defer close(measuring)
			usage = startUsage(c.Nodes())
		},
	}
	out, err := runWatch(ctx, wconns, pconns, e.ks, spec)
	if err != nil && ctx.Err() == nil {
		return LoadCell{}, fmt.Errorf("watch cell, %d watchers: %w", watchers, err)
	}
	<-measuring
	out.Stats.Conns = nconns
	cell := LoadCell{
		Server: srv.Label, Round: round, Size: size, Workload: WorkloadWatch, Conns: len(pconns), Watchers: watchers,
		OK: out.Events, Errors: out.Stats.PutErrors, ErrorSample: out.PutErrorSample, Measured: out.Measured,
		Latency: latencyOf(out.Hist), Watch: &out.Stats,
	}
	usage.finish(&cell)
	if out.Measured > 0 {
		cell.Throughput = float64(out.Events) / out.Measured.Seconds()
	}
	if ctx.Err() != nil {
		return cell, ctx.Err()
	}
	return cell, nil
}

func labels(ss []Server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Label+"="+s.String())
	}
	return slices.Clip(out)
}
