package workloads

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"

	"golang.org/x/time/rate"

	"github.com/quorum-kv/quorum/history"
)

// LockClient is the optional capability of a Client that the lock
// workload needs: a session (a lease kept alive by the client) and
// etcd's lock recipe on it. Run checks for it at run time; EtcdDialer's
// and MemStore's Clients have it.
type LockClient interface {
	Client
	// Session returns the client's session lease and its granted TTL,
	// granting a new lease of ttl seconds (kept alive from then on) when
	// the client has none or its lease was lost (expired, revoked, its
	// keep-alives refused).
	Session(ctx context.Context, ttl int64) (lease, granted int64, err error)
	// Lock takes the lock name (a key prefix) on the session and returns
	// how it was granted: the session's key under name and the revision
	// of the response granting it.
	Lock(ctx context.Context, name string) (history.LockHold, error)
	// Unlock releases the lock held as h (deletes h.Key).
	Unlock(ctx context.Context, h history.LockHold) error
	// Incr reads register (a decimal; absent: 0) and writes read+1: a
	// plain Put, or with h.Fenced a Txn that puts only if h.Key's create
	// revision is still h.Rev (written false when it is not). rev is the
	// write's header revision. An error reading makes the write
	// unsent (ErrNotSent).
	Incr(ctx context.Context, register string, h history.LockHold, serializable bool) (res history.IncrResult, rev int64, written bool, err error)
}

// runLock is worker w's loop in the lock workload: take a lock (chosen
// by its rand.Rand among cfg.Keys), wait cfg.LockHoldTime, increment the
// lock's register, release; each step one recorded operation, each
// counted against the budget. After an operation with an unknown
// outcome the worker drops its client (and with it the session: its
// lease is abandoned, not revoked, and expires) and continues as a new
// process, as in every workload.
func (w *worker) runLock(ctx context.Context, take func() bool, lim *rate.Limiter) error {
	var dialErr error
	defer w.closeClient()
	rng := rand.New(rand.NewPCG(uint64(w.cfg.Seed), 2<<32+uint64(w.process)))
	for ctx.Err() == nil {
		lc, err := w.lockClient(ctx)
		if err != nil {
			dialErr = err
			sleep(ctx, dialBackoff)
			continue
		}
		octx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		lease, ttl, err := lc.Session(octx, w.cfg.LockTTL)
		cancel()
		if err != nil {
			w.lg.Warn("lock session", "node", w.target.Name, "process", w.process, "err", err)
			w.closeClient()
			sleep(ctx, failBackoff)
			continue
		}
		if !take() || lim != nil && lim.Wait(ctx) != nil {
			return dialErr
		}
		i := rng.IntN(w.cfg.Keys)
		want := history.LockHold{Lock: w.cfg.LockKey(i), Lease: lease, TTL: ttl, Fenced: w.cfg.Fenced}
		var hold history.LockHold
		t, _ := w.record(ctx, history.Invocation{F: history.FAcquire, Key: want.Lock, Value: lockJSON(want)},
			func(ctx context.Context) (history.Type, history.Completion) {
				h, err := lc.Lock(ctx, want.Lock)
				if err != nil {
					return Classify(err, true), history.Completion{Error: err.Error()}
				}
				h.Lease, h.TTL, h.Fenced = lease, ttl, w.cfg.Fenced
				hold = h
				return history.OK, history.Completion{Value: lockJSON(h), Revision: h.Granted}
			})
		if !w.after(ctx, t) {
			continue
		}
		sleep(context.WithoutCancel(ctx), w.cfg.LockHoldTime)
		// The holder finishes its increment and releases even when the
		// run ends meanwhile: each operation has its own timeout.
		if !take() {
			// Over budget: release without incrementing.
		} else {
			reg := w.cfg.LockRegisterKey(i)
			t, _ = w.record(ctx, history.Invocation{F: history.FIncr, Key: reg, Value: lockJSON(hold)},
				func(ctx context.Context) (history.Type, history.Completion) {
					res, rev, written, err := lc.Incr(ctx, reg, hold, w.cfg.ReadConsistency == Serializable)
					switch {
					case err != nil:
						return Classify(err, true), history.Completion{Error: err.Error()}
					case !written:
						return history.Fail, history.Completion{Error: history.ErrCompareFailed}
					}
					return history.OK, history.Completion{Value: history.WatchJSON(res), Revision: rev}
				})
			if t == history.Info {
				w.after(ctx, t)
				continue
			}
		}
		t, _ = w.record(ctx, history.Invocation{F: history.FRelease, Key: hold.Lock, Value: lockJSON(hold)},
			func(ctx context.Context) (history.Type, history.Completion) {
				if err := lc.Unlock(ctx, hold); err != nil {
					return Classify(err, true), history.Completion{Error: err.Error()}
				}
				return history.OK, history.Completion{}
			})
		w.after(ctx, t)
	}
	return dialErr
}

// lockClient dials if needed and returns the client as a LockClient.
func (w *worker) lockClient(ctx context.Context) (LockClient, error) {
	if w.client == nil {
		c, err := w.dial(w.target)
		if err != nil {
			w.lg.Warn("dial failed", "node", w.target.Name, "process", w.process, "err", err)
			return nil, err
		}
		w.client = c
	}
	lc, ok := w.client.(LockClient)
	if !ok {
		return nil, fmt.Errorf("%T cannot take locks: %w", w.client, ErrNotSent)
	}
	return lc, nil
}

// record invokes in as w.process, performs it with cfg.Timeout (not cut
// short by ctx) and records how it ended.
func (w *worker) record(ctx context.Context, in history.Invocation, do func(ctx context.Context) (history.Type, history.Completion)) (history.Type, history.Completion) {
	in.Node = w.target.Name
	h := w.rec.Invoke(w.process, in)
	for _, p := range w.progs {
		p.invoke()
	}
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Timeout)
	t, c := do(octx)
	cancel()
	w.rec.Complete(h, t, c)
	for _, p := range w.progs {
		p.complete(t)
	}
	return t, c
}

// after handles an operation's outcome t and reports whether it was ok:
// after info the client is dropped and the worker goes on as a new
// process; after fail it backs off.
func (w *worker) after(ctx context.Context, t history.Type) bool {
	switch t {
	case history.OK:
		return true
	case history.Info:
		w.closeClient()
		w.process += w.cfg.Concurrency
	default:
		sleep(ctx, failBackoff)
	}
	return false
}

func lockJSON(h history.LockHold) *string { return history.WatchJSON(h) }

// parseCount reads a register of the lock workload (nil: 0).
func parseCount(key string, v *string) (int64, error) {
	if v == nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(*v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("register %s holds %q, not a count: %w", key, *v, err)
	}
	return n, nil
}
