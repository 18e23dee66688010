package workloads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/quorum-kv/quorum/history"
)

// Backoffs of a worker: after a failed dial, and after an operation that
// failed for another reason than a cas compare (the member is likely
// unreachable; retrying at once would only fill the history with fails).
const (
	dialBackoff = 100 * time.Millisecond
	failBackoff = 50 * time.Millisecond
)

// Run runs cfg's workload until ctx is done or cfg.OpsBound operations were
// invoked, recording every operation in rec, and returns the counts.
//
// Worker i (0 <= i < cfg.Concurrency) talks to targets[i%len(targets)]
// through Clients from dial, with one operation in flight. It starts as
// process i; after an operation with an unknown outcome (info) it closes
// its Client, dials a fresh one and continues as process p+Concurrency, so
// process ids are never reused and the worker of process p is
// p%Concurrency. Operations come from the worker's generator (see
// Config.Seed). Each operation gets cfg.Timeout, counted from its start
// and not cut short by ctx: Run returns at most about cfg.Timeout after ctx
// is done, with every operation it invoked completed.
//
// Outcomes: a read that returned is ok; a read error fail; a cas whose
// compare did not hold fail with Error history.ErrCompareFailed; other
// errors as Classify says. Read completions carry the value and mod
// revision, write and cas the header revision, set reads the elements,
// transactions (history.FTxn) their micro-ops with the lists read; a
// transaction whose guard did not hold is fail with ErrCompareFailed.
//
// In the watch workload Run also starts cfg.Watchers watchers per member
// (watcher w on targets[w%len(targets)], process WatchProcessBase+w), each
// recording its watch sessions (history.FWatch) until ctx is done or the
// writers stopped; they
// need Clients with the WatchClient capability.
//
// Run returns an error for a bad cfg or arguments (nothing is recorded),
// or when no operation could be invoked because every dial failed. lg
// receives dial failures and a summary; nil discards.
func Run(ctx context.Context, cfg Config, targets []Target, dial Dialer, rec *history.Recorder, lg *slog.Logger) (Stats, error) {
	if err := checkArgs(cfg, targets, dial, rec); err != nil {
		return Stats{}, fmt.Errorf("workload run: %w", err)
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	var d time.Duration
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	bound := int64(cfg.OpsBound(d))
	var lim *rate.Limiter
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	local := &Progress{}
	progs := []*Progress{local}
	if cfg.Progress != nil {
		progs = append(progs, cfg.Progress)
	}
	lg.Info("workload starting", "workload", cfg.Workload, "concurrency", cfg.Concurrency,
		"targets", len(targets), "rate", cfg.Rate, "max_ops", bound, "seed", cfg.Seed)

	var (
		budget  atomic.Int64
		wg      sync.WaitGroup
		dialErr = make([]error, cfg.Concurrency)
	)
	for i := range cfg.Concurrency {
		w := &worker{
			cfg: cfg, target: targets[i%len(targets)], dial: dial, rec: rec, lg: lg,
			gen: newGenerator(cfg, i), process: i, progs: progs,
		}
		take := func() bool { return budget.Add(1) <= bound }
		wg.Go(func() {
			switch cfg.Workload {
			case WorkloadLock:
				dialErr[i] = w.runLock(ctx, take, lim)
				return
			case WorkloadLease:
				if w.cfg.LeaseBound <= 0 {
					w.cfg.LeaseBound = LeaseBound(cfg.LockTTL, 0)
				}
				dialErr[i] = w.runLease(ctx, take, lim)
				return
			}
			dialErr[i] = w.run(ctx, take, lim)
		})
	}
	var watchers sync.WaitGroup
	wctx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	if cfg.Workload == WorkloadWatch {
		for w := range cfg.Watchers * len(targets) {
			watchers.Go(func() { runWatcher(wctx, cfg, w, targets, dial, rec, lg) })
		}
	}
	wg.Wait()
	stopWatchers()
	watchers.Wait()
	st := local.Snapshot()
	lg.Info("workload stopped", "invoked", st.Invoked, "ok", st.OK, "fail", st.Fail, "info", st.Info)
	if st.Invoked == 0 {
		if err := errors.Join(dialErr...); err != nil {
			return st, fmt.Errorf("workload run: no operation invoked: %w", err)
		}
	}
	return st, nil
}

func checkArgs(cfg Config, targets []Target, dial Dialer, rec *history.Recorder) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	switch {
	case len(targets) == 0:
		return errors.New("no targets")
	case dial == nil:
		return errors.New("nil dialer")
	case rec == nil:
		return errors.New("nil recorder")
	}
	return nil
}

// worker is one logical client; its fields belong to its goroutine.
type worker struct {
	cfg     Config
	target  Target
	dial    Dialer
	rec     *history.Recorder
	lg      *slog.Logger
	gen     *generator
	process int
	client  Client
	progs   []*Progress
}

// run performs operations until ctx is done, the limiter refuses, or take
// (the shared operation budget) says stop. It dials only when it has an
// operation to send. It returns the last dial error, if any.
func (w *worker) run(ctx context.Context, take func() bool, lim *rate.Limiter) error {
	var dialErr error
	defer w.closeClient()
	for ctx.Err() == nil && take() {
		for w.client == nil {
			c, err := w.dial(w.target)
			if err == nil {
				w.client = c
				break
			}
			dialErr = err
			w.lg.Warn("dial failed", "node", w.target.Name, "process", w.process, "err", err)
			sleep(ctx, dialBackoff)
			if ctx.Err() != nil {
				return dialErr
			}
		}
		if lim != nil && lim.Wait(ctx) != nil {
			return dialErr
		}
		o := w.gen.next(w.process)
		t, c := w.do(ctx, o)
		switch {
		case t == history.Info:
			w.closeClient()
			w.process += w.cfg.Concurrency
		case t == history.Fail && c.Error != history.ErrCompareFailed:
			sleep(ctx, failBackoff)
		}
	}
	return dialErr
}

func (w *worker) closeClient() {
	if w.client == nil {
		return
	}
	if err := w.client.Close(); err != nil {
		w.lg.Debug("close client", "node", w.target.Name, "process", w.process, "err", err)
	}
	w.client = nil
}

// do performs o as w.process and records it.
func (w *worker) do(ctx context.Context, o op) (history.Type, history.Completion) {
	h := w.rec.Invoke(w.process, invocation(o, w.target.Name))
	for _, p := range w.progs {
		p.invoke()
	}
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Timeout)
	t, c := perform(octx, w.client, o, w.cfg.ReadConsistency == Serializable)
	cancel()
	w.rec.Complete(h, t, c)
	for _, p := range w.progs {
		p.complete(t)
	}
	w.gen.observe(o, t, c.Value)
	return t, c
}

// invocation returns the invoke event's arguments for o sent to node.
func invocation(o op, node string) history.Invocation {
	in := history.Invocation{Key: o.key, Node: node}
	switch o.kind {
	case opRead, opReadSet:
		in.F = history.FRead
	case opWrite:
		in.F, in.Value = history.FWrite, history.Str(o.value)
	case opCAS:
		in.F, in.Value, in.Expected = history.FCAS, history.Str(o.value), o.expected
	case opAdd:
		in.F, in.Value = history.FAdd, history.Str(o.value)
	case opTxn:
		in.F, in.Value = history.FTxn, microOpsJSON(o.txn)
	case opDelete:
		in.F = history.FDelete
	case opWriteTxn:
		in.F, in.Value = history.FWriteTxn, history.WatchJSON(o.writes)
	}
	return in
}

// microOpsJSON is the Event.Value of a transaction: its micro-ops' JSON.
func microOpsJSON(ops []history.MicroOp) *string {
	b, err := json.Marshal(ops)
	if err != nil {
		panic(fmt.Sprintf("marshal micro-ops %+v: %v", ops, err)) // the generator made a bad micro-op
	}
	return history.Str(string(b))
}

// mutates reports whether o may change the store.
func (o op) mutates() bool {
	switch o.kind {
	case opRead, opReadSet:
		return false
	case opTxn:
		for _, m := range o.txn {
			if m.F == history.MicroAppend {
				return true
			}
		}
		return false
	}
	return true
}

// perform sends o through c and returns how it ended, as recorded.
func perform(ctx context.Context, c Client, o op, serializable bool) (history.Type, history.Completion) {
	var (
		comp history.Completion
		err  error
	)
	switch o.kind {
	case opRead:
		comp.Value, comp.Revision, err = c.Read(ctx, o.key, serializable)
	case opWrite:
		comp.Revision, err = c.Write(ctx, o.key, o.value)
	case opCAS:
		var swapped bool
		swapped, comp.Revision, err = c.CAS(ctx, o.key, o.expected, o.value)
		if err == nil && !swapped {
			return history.Fail, history.Completion{Error: history.ErrCompareFailed}
		}
	case opAdd:
		err = c.Add(ctx, o.key, o.value)
	case opReadSet:
		comp.Elements, err = c.ReadSet(ctx, o.key, serializable)
	case opTxn:
		var (
			done      []history.MicroOp
			committed bool
		)
		done, committed, err = c.Txn(ctx, o.txn, serializable)
		if err == nil && !committed {
			return history.Fail, history.Completion{Error: history.ErrCompareFailed}
		}
		if err == nil {
			comp.Value = microOpsJSON(done)
		}
	case opDelete, opWriteTxn:
		wc, ok := c.(WatchClient)
		if !ok {
			return history.Fail, history.Completion{Error: fmt.Sprintf("%T cannot delete or write a txn: %v", c, ErrNotSent)}
		}
		if o.kind == opDelete {
			comp.Revision, err = wc.Delete(ctx, o.key)
		} else {
			comp.Revision, err = wc.WriteTxn(ctx, o.writes)
		}
	}
	if err != nil {
		return Classify(err, o.mutates()), history.Completion{Error: err.Error()}
	}
	return history.OK, comp
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
