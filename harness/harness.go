// Package harness runs one Jepsen-style test: it starts a cluster through a
// cluster.Backend, drives a workload while a nemesis schedule injects faults, heals
// everything, waits for the cluster to recover, takes final reads from every
// member, saves the history, checks it and writes the report — all into a
// run directory that `quorum check` and `quorum report` can read again
// offline.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/checker/logscan"
	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/nemesis"
	"github.com/quorum-kv/quorum/reports"
	"github.com/quorum-kv/quorum/rundir"
	"github.com/quorum-kv/quorum/workloads"
)

// Config is one test run. Flags map onto it in cmd/quorum only; every side
// effect the run has besides the cluster's backend (clock, client dialer)
// is a field, so the harness runs on cluster/fake and an in-memory store
// in unit tests.
type Config struct {
	// Name names the test; runs are stored in Store/<Name>/<timestamp>/.
	// Default: "<server label>-<workload>".
	Name string
	// Store is the directory holding every run (default "store").
	Store string
	// Server is the server under test, started by the backend.
	Server cluster.Server
	// Nodes is the cluster size.
	Nodes int
	// Members are the members' flags and environment (timing, extra
	// arguments), on every backend alike.
	Members cluster.MemberSettings
	// Seed seeds every random choice of the run: the workload's operations
	// (it becomes Workload.Seed), the nemeses' choices and the backend's
	// (ports, proxy jitter). The same seed gives the same operation and
	// fault schedule.
	Seed int64
	// Workload configures the clients; its Seed is set from Seed.
	Workload workloads.Config
	// Nemeses is the comma-separated list of faults (nemesis.Parse);
	// "none" for none.
	Nemeses string
	// NemesisInterval is how long each fault lasts and each quiet period
	// between faults.
	NemesisInterval time.Duration
	// HealTimeout bounds the healing of each fault.
	HealTimeout time.Duration
	// TimeLimit is how long the workload runs.
	TimeLimit time.Duration
	// RecoveryTimeout bounds the wait for the healed cluster to be healthy
	// before final reads.
	RecoveryTimeout time.Duration
	// CheckTimeout bounds the linearizability check; when it expires the
	// verdict is unknown.
	CheckTimeout time.Duration
	// Command is the command line that reproduces the run (for the report).
	Command string
	// Dial connects a workload client to a member (default: etcd's
	// client, workloads.EtcdDialer).
	Dial workloads.Dialer
	// Logger receives the harness's log; Progress (may be nil) the live
	// progress display.
	Logger   *slog.Logger
	Progress io.Writer
	// Now is the clock: the run directory's name, the history's
	// timestamps and every duration the report gives. time.Now's
	// monotonic reading makes the durations measurements.
	Now func() time.Time
}

// DefaultConfig is the README's main job: a 3-member cluster, the register
// workload, kill and partition faults, 60 seconds. Server must still be
// set.
func DefaultConfig() Config {
	w := workloads.DefaultConfig()
	return Config{
		Name:            "",
		Store:           "store",
		Nodes:           3,
		Seed:            w.Seed,
		Workload:        w,
		Nemeses:         "kill-leader,partition-leader,kill-one,partition-halves",
		NemesisInterval: 5 * time.Second,
		HealTimeout:     30 * time.Second,
		TimeLimit:       60 * time.Second,
		RecoveryTimeout: 30 * time.Second,
		CheckTimeout:    2 * time.Minute,
		Dial:            workloads.EtcdDialer(workloads.EtcdOptions{}),
		Logger:          slog.New(slog.DiscardHandler),
		Now:             time.Now,
	}
}

// Validate names the first bad field by its flag.
func (c *Config) Validate() error {
	switch {
	case c.Store == "":
		return errors.New("--store must not be empty")
	case c.Server.Binary == "" && c.Server.Image == "":
		return errors.New("harness.Config: Server needs a Binary or an Image")
	case c.Nodes < 1:
		return fmt.Errorf("--nodes is %d; want at least 1", c.Nodes)
	case c.TimeLimit <= 0:
		return errors.New("--time-limit must be > 0")
	case c.NemesisInterval <= 0:
		return errors.New("--nemesis-interval must be > 0")
	case c.HealTimeout <= 0:
		return errors.New("harness.Config: HealTimeout must be > 0")
	case c.RecoveryTimeout <= 0:
		return errors.New("--recovery-timeout must be > 0")
	case c.CheckTimeout < 0:
		return errors.New("--check-timeout must not be negative")
	case c.Dial == nil || c.Logger == nil || c.Now == nil:
		return errors.New("harness.Config: Dial, Logger and Now are required")
	}
	w := c.Workload
	w.Seed = c.Seed
	if err := w.Validate(); err != nil {
		return err
	}
	opts := nemesis.DefaultOptions()
	opts.Rand = rand.New(rand.NewPCG(1, 1))
	nems, err := nemesis.Parse(c.Nemeses, opts)
	if err != nil {
		return fmt.Errorf("--nemesis: %w", err)
	}
	for _, n := range nems {
		if n.Name() == "compact" && c.Workload.Workload == workloads.WorkloadWatch {
			return errors.New("--nemesis compact cannot run with --workload watch: the watch checker's ground truth is a final watch from revision 1, which compaction removes")
		}
	}
	return nil
}

// testName is the run's name: Name, or "<server label>-<workload>" made
// safe as one path element.
func (c *Config) testName() string {
	if c.Name != "" {
		return c.Name
	}
	label := c.Server.Label
	if label == "" {
		label = filepath.Base(c.Server.String())
	}
	safe := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, label)
	return safe + "-" + c.Workload.Workload
}

// Outcome is what a run produced.
type Outcome struct {
	Dir     string
	Results reports.Results
}

// Run runs the test on a cluster that backend starts and writes its run
// directory. The returned error is a harness failure (the cluster did not
// start, the run directory could not be written); a run that completes
// returns its verdict in Outcome even when it is invalid or unknown.
func Run(ctx context.Context, cfg Config, backend cluster.Backend) (*Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg, now := cfg.Logger, cfg.Now
	name := cfg.testName()
	start := now()
	dir, err := rundir.Create(cfg.Store, name, start)
	if err != nil {
		return nil, err
	}
	seed := cfg.Seed
	say(cfg.Progress, "run %s: seed %d, %d members (%s, %s), workload %s, nemesis %s, %v",
		dir, seed, cfg.Nodes, backend.Name(), cfg.Server, cfg.Workload.Workload, cfg.Nemeses, cfg.TimeLimit)

	// Everything random in the run comes from the seed: the workers' ops
	// (inside workloads), the nemesis' choices (one stream here) and the
	// backend's (its own stream, from the same seed).
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	nopts := nemesis.DefaultOptions()
	nopts.Rand = rng
	nopts.Dir = dir
	nems, err := nemesis.Parse(cfg.Nemeses, nopts)
	if err != nil {
		return nil, fmt.Errorf("--nemesis: %w", err)
	}

	t0 := now()
	c, err := backend.Start(ctx, cluster.StartConfig{
		Server: cfg.Server, Size: cfg.Nodes, Dir: dir, Seed: uint64(seed), Logger: lg, MemberSettings: cfg.Members,
		DiskFaults: nemesis.NeedsDiskFaults(cfg.Nemeses),
	})
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w (member logs in %s)", err, filepath.Join(dir, rundir.LogsDir))
	}
	clusterStart := now().Sub(t0)
	say(cfg.Progress, "cluster up in %v: %s", clusterStart.Round(time.Millisecond), strings.Join(c.Endpoints(), " "))
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if err := c.Close(cctx); err != nil {
			lg.Warn("closing cluster", "err", err)
		}
	}()
	for _, n := range nems {
		if err := n.Check(c); err != nil {
			return nil, fmt.Errorf("--nemesis %s cannot run on this cluster: %w", n.Name(), err)
		}
	}

	runStart := now()
	rec := history.NewRecorder(func() time.Duration { return now().Sub(runStart) })
	var targets []workloads.Target
	for _, n := range c.Nodes() {
		targets = append(targets, workloads.Target{Name: n.Name(), Endpoint: n.ClientURL(), TLS: cluster.ClientTLS(c)})
	}
	wcfg := cfg.Workload
	wcfg.Seed = seed
	if wcfg.Workload == workloads.WorkloadLease && wcfg.LeaseBound <= 0 {
		wcfg.LeaseBound = workloads.LeaseBound(wcfg.LockTTL, cfg.Members.ElectionTimeout)
	}
	progress := &workloads.Progress{}
	wcfg.Progress = progress

	sched, err := nemesis.NewSchedule(nemesis.Config{
		Nemeses: nems, Interval: cfg.NemesisInterval, Order: nemesis.RoundRobin, Rand: rng,
		HealTimeout: cfg.HealTimeout, Logger: lg,
	})
	if err != nil {
		return nil, err
	}

	runCtx, cancelRun := context.WithTimeout(ctx, cfg.TimeLimit)
	defer cancelRun()
	var wg sync.WaitGroup
	var nemErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		nemErr = sched.Run(runCtx, c, rec)
	}()
	stopProgress := startProgress(cfg.Progress, cfg.TimeLimit, progress, sched.Current, now)
	_, werr := workloads.Run(runCtx, wcfg, targets, cfg.Dial, rec, lg)
	cancelRun()
	wg.Wait()
	stopProgress()
	if werr != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("workload: %w", werr)
	}
	if nemErr != nil {
		lg.Warn("nemesis schedule ended with an error", "err", nemErr)
	}

	// Heal everything, wait for the cluster to recover, take final reads.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.RecoveryTimeout+cfg.HealTimeout)
	defer cancel()
	if err := nemesis.HealAll(hctx, c); err != nil {
		lg.Warn("healing faults", "err", err)
	}
	rStart := now()
	rctx, rcancel := context.WithTimeout(hctx, cfg.RecoveryTimeout)
	recoverErr := cluster.WaitHealthy(rctx, c)
	rcancel()
	if recoverErr != nil {
		say(cfg.Progress, "cluster did not recover within %v: %v", cfg.RecoveryTimeout, recoverErr)
	} else {
		say(cfg.Progress, "cluster recovered %v after healing", now().Sub(rStart).Round(time.Millisecond))
	}
	finalErr := workloads.FinalReads(hctx, wcfg, targets, cfg.Dial, rec)
	if finalErr != nil {
		lg.Warn("final reads", "err", finalErr)
	}
	hashKV := checkHashKV(context.WithoutCancel(ctx), c, cfg.RecoveryTimeout)
	if hashKV != nil {
		say(cfg.Progress, "%s", hashKV.Line())
	}

	events := rec.Events()
	if err := history.Save(filepath.Join(dir, rundir.HistoryFile), events); err != nil {
		return nil, err
	}
	say(cfg.Progress, "checking %d events (limit %v)...", len(events), cfg.CheckTimeout)
	checkStart := now()
	res := checker.Check(ctx, events, checker.Options{Workload: cfg.Workload.Workload, Timeout: cfg.CheckTimeout, VisualizeDir: dir})
	res = reports.ApplyHashKV(res, hashKV)
	scan := logscan.ScanDir(filepath.Join(dir, rundir.LogsDir))
	scan.Excuse(checker.CorruptionExcuse(events))
	res.AddLogScan(scan)
	recoveryFailure := ""
	switch {
	case recoverErr != nil:
		recoveryFailure = fmt.Sprintf("not healthy within %v: %v", cfg.RecoveryTimeout, recoverErr)
	case everyMemberFailed(finalErr, len(targets)):
		// Healthy for a moment (every member answered Status and named
		// one leader), then no member served a read: members that
		// restarted and failed again.
		recoveryFailure = fmt.Sprintf("no member answered the final reads: %v", finalErr)
	}
	res.AddRecovery(recoveryFailure)
	checkDur := now().Sub(checkStart)

	wconf, _ := reports.ConfigOf(wcfg)
	if wconf != nil {
		wconf["timeout"] = cfg.Workload.Timeout.String() // not nanoseconds
	}
	results := reports.Results{
		Run: reports.Run{
			Name: name, Start: start.UTC(), Duration: cfg.TimeLimit, Backend: backend.Name(), ServerBinary: cfg.Server.String(),
			TLS: cfg.Server.TLS, ClusterSize: cfg.Nodes, Workload: wconf,
			Nemesis: reports.Config{"faults": cfg.Nemeses, "interval": cfg.NemesisInterval.String(), "order": "round-robin",
				"cluster_start": clusterStart.String(), "recovered": recoverErr == nil, "recovery_failure": recoveryFailure},
			Seed: seed, CheckTimeLimit: cfg.CheckTimeout, Command: cfg.Command,
		},
		Check: res, CheckDuration: checkDur, Dir: dir, HashKV: hashKV,
	}
	results.Summary = reports.Analyze(events, reports.Options{})
	if err := reports.Write(dir, results, events); err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	return &Outcome{Dir: dir, Results: results}, nil
}

// everyMemberFailed reports whether err (FinalReads', one joined error per
// member that did not answer) names all n members.
func everyMemberFailed(err error, n int) bool {
	j, ok := err.(interface{ Unwrap() []error })
	return ok && n > 0 && len(j.Unwrap()) == n
}

func say(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
