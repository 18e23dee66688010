// Package harness runs one Jepsen-style test: it starts a cluster through a
// Backend, drives a workload while a nemesis schedule injects faults, heals
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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/nemesis"
	"github.com/quorum-kv/quorum/reports"
	"github.com/quorum-kv/quorum/workloads"
)

// Backend starts the cluster a run tests.
type Backend interface {
	// Name is the backend's name in reports ("local", "docker").
	Name() string
	// ServerName describes the server under test (a binary path or image).
	ServerName() string
	// Start starts a size-member cluster whose data and member logs live
	// under runDir, and returns once it is healthy.
	Start(ctx context.Context, runDir string, size int, lg *slog.Logger) (cluster.Cluster, error)
}

// Config is one test run. Flags map onto it in cmd/quorum only.
type Config struct {
	// Name names the test; runs are stored in Store/<Name>/<timestamp>/.
	Name string
	// Store is the directory holding every run (default "store").
	Store string
	// Nodes is the cluster size.
	Nodes int
	// Workload configures the clients; its Seed is the run's seed.
	Workload workloads.Config
	// Nemeses is the comma-separated list of faults (nemesis.Parse);
	// "none" for none.
	Nemeses string
	// NemesisInterval is how long each fault lasts and each quiet period
	// between faults.
	NemesisInterval time.Duration
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
	// Logger receives the harness's log; Progress (may be nil) the live
	// progress display.
	Logger   *slog.Logger
	Progress io.Writer
	// Now is the wall clock (for the run directory's name and the report).
	Now func() time.Time
}

// DefaultConfig is the README's main job: a 3-member cluster, the register
// workload, kill and partition faults, 60 seconds.
func DefaultConfig() Config {
	w := workloads.DefaultConfig()
	return Config{
		Name:            "",
		Store:           "store",
		Nodes:           3,
		Workload:        w,
		Nemeses:         "kill-leader,partition-leader,kill-one,partition-halves",
		NemesisInterval: 5 * time.Second,
		TimeLimit:       60 * time.Second,
		RecoveryTimeout: 30 * time.Second,
		CheckTimeout:    2 * time.Minute,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:             time.Now,
	}
}

// Validate names the first bad field by its flag.
func (c *Config) Validate() error {
	switch {
	case c.Store == "":
		return errors.New("--store must not be empty")
	case c.Nodes < 1:
		return fmt.Errorf("--nodes is %d; want at least 1", c.Nodes)
	case c.TimeLimit <= 0:
		return errors.New("--time-limit must be > 0")
	case c.NemesisInterval <= 0:
		return errors.New("--nemesis-interval must be > 0")
	case c.RecoveryTimeout <= 0:
		return errors.New("--recovery-timeout must be > 0")
	case c.CheckTimeout < 0:
		return errors.New("--check-timeout must not be negative")
	case c.Logger == nil || c.Now == nil:
		return errors.New("harness.Config: Logger and Now are required")
	}
	if err := c.Workload.Validate(); err != nil {
		return err
	}
	opts := nemesis.DefaultOptions()
	opts.Rand = rand.New(rand.NewPCG(1, 1))
	if _, err := nemesis.Parse(c.Nemeses, opts); err != nil {
		return fmt.Errorf("--nemesis: %w", err)
	}
	return nil
}

// Outcome is what a run produced.
type Outcome struct {
	Dir     string
	Results reports.Results
}

// Run runs the test and writes its run directory. The returned error is
// a harness failure (the cluster did not start, the run directory could not
// be written); a run that completes returns its verdict in Outcome even when
// it is invalid or unknown.
func Run(ctx context.Context, cfg Config, backend Backend) (*Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	name := cfg.Name
	if name == "" {
		name = filepath.Base(backend.ServerName()) + "-" + cfg.Workload.Workload
	}
	start := cfg.Now()
	dir, err := newRunDir(cfg.Store, name, start)
	if err != nil {
		return nil, err
	}
	seed := cfg.Workload.Seed
	say(cfg.Progress, "run %s: seed %d, %d members (%s, %s), workload %s, nemesis %s, %v",
		dir, seed, cfg.Nodes, backend.Name(), backend.ServerName(), cfg.Workload.Workload, cfg.Nemeses, cfg.TimeLimit)

	// Everything random in the run comes from the seed: the workers' ops
	// (inside workloads) and the nemesis' choices (one stream here).
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	nopts := nemesis.DefaultOptions()
	nopts.Rand = rng
	nems, err := nemesis.Parse(cfg.Nemeses, nopts)
	if err != nil {
		return nil, fmt.Errorf("--nemesis: %w", err)
	}

	t0 := time.Now()
	c, err := backend.Start(ctx, dir, cfg.Nodes, lg)
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w (member logs in %s)", err, filepath.Join(dir, "logs"))
	}
	clusterStart := time.Since(t0)
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

	runStart := time.Now()
	rec := history.NewRecorder(func() time.Duration { return time.Since(runStart) })
	var targets []workloads.Target
	for _, n := range c.Nodes() {
		targets = append(targets, workloads.Target{Name: n.Name(), Endpoint: n.ClientURL()})
	}
	dial := workloads.EtcdDialer(workloads.EtcdOptions{})
	wcfg := cfg.Workload
	progress := &workloads.Progress{}
	wcfg.Progress = progress

	sched, err := nemesis.NewSchedule(nemesis.Config{
		Nemeses: nems, Interval: cfg.NemesisInterval, Order: nemesis.RoundRobin, Rand: rng,
		HealTimeout: 30 * time.Second, Logger: lg,
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
	stopProgress := startProgress(cfg.Progress, cfg.TimeLimit, progress, sched.Current)
	_, werr := workloads.Run(runCtx, wcfg, targets, dial, rec, lg)
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
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.RecoveryTimeout+30*time.Second)
	defer cancel()
	if err := nemesis.HealAll(hctx, c); err != nil {
		lg.Warn("healing faults", "err", err)
	}
	rStart := time.Now()
	rctx, rcancel := context.WithTimeout(hctx, cfg.RecoveryTimeout)
	recoverErr := cluster.WaitHealthy(rctx, c)
	rcancel()
	if recoverErr != nil {
		say(cfg.Progress, "cluster did not recover within %v: %v", cfg.RecoveryTimeout, recoverErr)
	} else {
		say(cfg.Progress, "cluster recovered %v after healing", time.Since(rStart).Round(time.Millisecond))
	}
	if err := workloads.FinalReads(hctx, wcfg, targets, dial, rec); err != nil {
		lg.Warn("final reads", "err", err)
	}

	events := rec.Events()
	if err := history.Save(filepath.Join(dir, "history.jsonl"), events); err != nil {
		return nil, err
	}
	say(cfg.Progress, "checking %d events (limit %v)...", len(events), cfg.CheckTimeout)
	checkStart := time.Now()
	res := checker.Check(ctx, events, checker.Options{Workload: cfg.Workload.Workload, Timeout: cfg.CheckTimeout, VisualizeDir: dir})
	checkDur := time.Since(checkStart)

	wconf, _ := reports.ConfigOf(cfg.Workload)
	if wconf != nil {
		wconf["timeout"] = cfg.Workload.Timeout.String() // not nanoseconds
	}
	results := reports.Results{
		Run: reports.Run{
			Name: name, Start: start.UTC(), Duration: cfg.TimeLimit, Backend: backend.Name(), ServerBinary: backend.ServerName(),
			ClusterSize: cfg.Nodes, Workload: wconf,
			Nemesis: reports.Config{"faults": cfg.Nemeses, "interval": cfg.NemesisInterval.String(), "order": "round-robin",
				"cluster_start": clusterStart.String(), "recovered": recoverErr == nil},
			Seed: seed, CheckTimeLimit: cfg.CheckTimeout, Command: cfg.Command,
		},
		Check: res, CheckDuration: checkDur, Dir: dir,
	}
	results.Summary = reports.Analyze(events, reports.Options{})
	if err := reports.Write(dir, results, events); err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	return &Outcome{Dir: dir, Results: results}, nil
}

// newRunDir creates Store/<name>/<timestamp>/ and points Store/latest and
// Store/<name>/latest at it.
func newRunDir(store, name string, now time.Time) (string, error) {
	stamp := now.UTC().Format("20060102T150405.000Z")
	dir := filepath.Join(store, name, stamp)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create run directory: %w", err)
	}
	for _, link := range []struct{ at, to string }{
		{filepath.Join(store, "latest"), filepath.Join(name, stamp)},
		{filepath.Join(store, name, "latest"), stamp},
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

func say(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
