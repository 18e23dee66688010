package nemesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/history"
)

// Order is how a Schedule picks the next nemesis.
type Order int

const (
	// RoundRobin runs the nemeses in the order given, cycling.
	RoundRobin Order = iota
	// Random picks each next nemesis uniformly with Config.Rand.
	Random
)

// Config configures a Schedule. Zero durations, a nil Sleep and a nil
// Logger take the defaults of DefaultConfig.
type Config struct {
	// Nemeses to run, one fault at a time. Empty: Run only waits.
	Nemeses []Nemesis
	// Interval is both the quiet period before each fault and how long
	// each fault is held. Default 5s.
	Interval time.Duration
	// Order picks the next nemesis. Default RoundRobin.
	Order Order
	// Rand is required with Order Random. It is used only from Run's
	// goroutine, so it may be the one given to the nemeses' Options.
	Rand *rand.Rand
	// HealTimeout bounds each Heal. Heals run on a context that is not
	// canceled with Run's, so that a fault is healed even when the run is
	// stopping. Default 30s.
	HealTimeout time.Duration
	// Sleep waits d or until ctx is done, returning ctx.Err() in the
	// latter case. Default: a real timer. Tests inject a fake.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives one line per fault injected, healed or failed.
	// Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with the default Interval, HealTimeout,
// Sleep and a discarding Logger, and no nemeses.
func DefaultConfig() Config {
	return Config{
		Interval:    5 * time.Second,
		HealTimeout: 30 * time.Second,
		Sleep:       sleep,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("nemesis schedule: Interval %v must be positive", c.Interval)
	case c.HealTimeout <= 0:
		return fmt.Errorf("nemesis schedule: HealTimeout %v must be positive", c.HealTimeout)
	case c.Order != RoundRobin && c.Order != Random:
		return fmt.Errorf("nemesis schedule: unknown Order %d", c.Order)
	case c.Order == Random && c.Rand == nil:
		return errors.New("nemesis schedule: Order Random needs Rand")
	case c.Sleep == nil:
		return errors.New("nemesis schedule: Sleep is nil")
	case c.Logger == nil:
		return errors.New("nemesis schedule: Logger is nil")
	}
	for i, n := range c.Nemeses {
		if n == nil {
			return fmt.Errorf("nemesis schedule: Nemeses[%d] is nil", i)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Schedule alternates quiet periods and faults. Run is called once, from
// one goroutine, which owns the schedule's state; Current may be called
// from any goroutine.
type Schedule struct {
	cfg     Config
	current atomic.Pointer[string]
	running atomic.Bool
}

// NewSchedule fills cfg's zero fields with defaults and validates it.
func NewSchedule(cfg Config) (*Schedule, error) {
	d := DefaultConfig()
	if cfg.Interval == 0 {
		cfg.Interval = d.Interval
	}
	if cfg.HealTimeout == 0 {
		cfg.HealTimeout = d.HealTimeout
	}
	if cfg.Sleep == nil {
		cfg.Sleep = d.Sleep
	}
	if cfg.Logger == nil {
		cfg.Logger = d.Logger
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Nemeses = append([]Nemesis(nil), cfg.Nemeses...)
	return &Schedule{cfg: cfg}, nil
}

// Current names the active fault and its targets ("kill-leader
// targets=n2"), or returns "" between faults. Safe for concurrent use.
func (s *Schedule) Current() string {
	if p := s.current.Load(); p != nil {
		return *p
	}
	return ""
}

// Run checks every nemesis against c (refusing the whole schedule if one
// cannot run), then until ctx is done: waits Interval, injects the next
// nemesis, holds the fault for Interval, heals it. Each fault is recorded
// in rec (nil: not recorded) as an interval: NemesisStart with the fault's
// targets once the injection returned, i.e. once the fault is in force (a
// killed member's process is gone, a partition's rules are in place), so
// that "time from the fault to the next acknowledged write" is measured
// from the fault itself and not from the moment it was asked for (a
// container kill can take tens of milliseconds, during which the doomed
// leader still commits writes); NemesisEnd once healed, with the error if
// injection or healing failed. A failed injection is logged, its
// partial fault healed, and the schedule goes on.
//
// When ctx is done, the active fault is healed before Run returns, so
// every fault Run started is healed (or recorded as not healed). Run
// returns nil when stopped by ctx, the error of that last heal if it
// failed, or an error from the up-front checks. Faults of other origin are
// for HealAll.
func (s *Schedule) Run(ctx context.Context, c cluster.Cluster, rec *history.Recorder) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("nemesis schedule: Run is already running")
	}
	defer s.running.Store(false)
	var errs []error
	for _, n := range s.cfg.Nemeses {
		if err := n.Check(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nemesis schedule: %w", err)
	}
	for i := 0; ; i++ {
		if s.cfg.Sleep(ctx, s.cfg.Interval) != nil || ctx.Err() != nil {
			return nil
		}
		if len(s.cfg.Nemeses) == 0 {
			continue
		}
		n := s.next(i)
		if err := s.fault(ctx, c, rec, n); err != nil && ctx.Err() != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// next returns the nemesis for round i.
func (s *Schedule) next(i int) Nemesis {
	if s.cfg.Order == Random {
		return s.cfg.Nemeses[s.cfg.Rand.IntN(len(s.cfg.Nemeses))]
	}
	return s.cfg.Nemeses[i%len(s.cfg.Nemeses)]
}

// fault runs one inject, hold, heal cycle and returns the heal's error.
func (s *Schedule) fault(ctx context.Context, c cluster.Cluster, rec *history.Recorder, n Nemesis) error {
	log := s.cfg.Logger.With("nemesis", n.Name())
	var (
		f         Fault
		injectErr error
		h         history.Handle
	)
	if p, ok := n.(Planner); ok {
		var err error
		f, err = p.Plan(ctx, c)
		if err != nil {
			err = fmt.Errorf("plan %s: %w", n.Name(), err)
			log.Warn("nemesis: choosing targets failed", "err", err)
			if rec != nil {
				rec.NemesisEnd(rec.NemesisStart(n.Name(), ""), err)
			}
			return nil
		}
		if r, ok := n.(Describer); ok {
			f, injectErr = r.ApplyAndDescribe(ctx, c, f)
		} else {
			injectErr = p.Apply(ctx, c, f)
		}
		h = s.start(rec, n, f)
	} else {
		f, injectErr = n.Inject(ctx, c)
		h = s.start(rec, n, f)
	}
	if injectErr != nil {
		injectErr = fmt.Errorf("inject %s: %w", n.Name(), injectErr)
		log.Warn("nemesis: injection failed, healing what was done", "fault", f.String(), "err", injectErr)
	} else {
		log.Info("nemesis: fault injected", "fault", f.String())
		_ = s.cfg.Sleep(ctx, s.cfg.Interval) // hold; ctx done ends it early
	}
	healErr := s.heal(ctx, c, n, f)
	if healErr != nil {
		log.Error("nemesis: heal failed", "fault", f.String(), "err", healErr)
	} else {
		log.Info("nemesis: fault healed", "fault", f.String())
	}
	if rec != nil {
		rec.NemesisEnd(h, errors.Join(injectErr, healErr))
	}
	s.current.Store(nil)
	return healErr
}

func (s *Schedule) start(rec *history.Recorder, n Nemesis, f Fault) history.Handle {
	desc := f.String()
	cur := n.Name()
	if desc != "" {
		cur += " " + desc
	}
	s.current.Store(&cur)
	if rec == nil {
		return history.Handle{}
	}
	return rec.NemesisStart(n.Name(), desc)
}

// heal heals f on a fresh context bounded by HealTimeout, which outlives
// ctx's cancellation.
func (s *Schedule) heal(ctx context.Context, c cluster.Cluster, n Nemesis, f Fault) error {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.HealTimeout)
	defer cancel()
	if err := n.Heal(hctx, c, f); err != nil {
		return fmt.Errorf("heal %s: %w", n.Name(), err)
	}
	return nil
}

// HealAll undoes every fault a nemesis can cause, whatever caused it: it
// heals all partitions (cluster.Partitioner), removes latency from every
// link (cluster.LinkShaper), then resumes every paused node and starts
// every stopped node. It does not wait for the cluster to be healthy. It
// tries everything and joins the errors. The runner calls it before the
// final reads.
func HealAll(ctx context.Context, c cluster.Cluster) error {
	var errs []error
	if p, ok := c.(cluster.Partitioner); ok {
		if err := p.Heal(ctx); err != nil {
			errs = append(errs, fmt.Errorf("heal partitions: %w", err))
		}
	}
	if ls, ok := c.(cluster.LinkShaper); ok {
		if links := allLinks(nodeNames(c)); len(links) > 0 {
			if err := ls.SetLatency(ctx, links, 0, 0); err != nil {
				errs = append(errs, fmt.Errorf("remove latency: %w", err))
			}
		}
	}
	for _, n := range c.Nodes() {
		switch n.State() {
		case cluster.Paused:
			if err := n.Resume(ctx); err != nil {
				errs = append(errs, fmt.Errorf("resume %s: %w", n.Name(), err))
			}
		case cluster.Stopped:
			if err := n.Start(ctx); err != nil {
				errs = append(errs, fmt.Errorf("start %s: %w", n.Name(), err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("heal all faults: %w", err)
	}
	return nil
}
