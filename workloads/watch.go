package workloads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorum-kv/quorum/history"
)

// WatchClient is the optional capability of a Client that the watch
// workload needs: deletes, write txns, the store's revision and watches.
// Run checks for it at run time; EtcdDialer's and MemStore's Clients have
// it.
type WatchClient interface {
	Client
	// Delete deletes key and returns the header revision (the delete's
	// revision if key existed; else the store's, unchanged).
	Delete(ctx context.Context, key string) (rev int64, err error)
	// WriteTxn applies ops (puts and deletes on distinct keys) in one txn
	// at one revision and returns the header revision.
	WriteTxn(ctx context.Context, ops []history.WriteOp) (rev int64, err error)
	// Revision returns the store's revision, read linearizably.
	Revision(ctx context.Context) (int64, error)
	// Watch starts a watch as spec says and returns its responses, in
	// order, on a channel that is closed when the watch ends: when ctx is
	// done (then the last response is the last one received), or when the
	// watch is cut — canceled by the member, its connection lost — and
	// then the last response carries Err (or Canceled). With
	// spec.ProgressNotify it also asks for a progress notification now and
	// then. The channel belongs to the caller, who must drain it until it
	// is closed.
	Watch(ctx context.Context, spec history.WatchSpec) <-chan history.WatchResponse
}

// Bounds of the watchers: sessions per watcher, responses per session
// (a session that reaches it ends ok and the watcher resumes), and the
// pause after a cut.
const (
	maxWatchSessions  = 10_000
	maxWatchResponses = 100_000
	watchBackoff      = 100 * time.Millisecond
	maxWatchDelay     = 500 * time.Millisecond
	// ProgressEvery is how often a watcher with ProgressNotify asks for
	// a progress notification.
	ProgressEvery = 300 * time.Millisecond
)

// WatchProcessBase is the process of watcher 0; watcher w is
// WatchProcessBase+w in every session (a session ends ok or fail, never
// info, so its process goes on), far above the writers'.
const WatchProcessBase = 1_000_000

// watchSpec returns watcher w's watch (before its start revision is
// known): by w%3 a key, the whole prefix or a range of keys; with prev_kv,
// a filter and progress notifications as its rand.Rand says, a
// PCG seeded with (cfg.Seed, 1<<32+w).
func watchSpec(cfg Config, w int, rng *rand.Rand) history.WatchSpec {
	s := history.WatchSpec{Watcher: w}
	k := rng.IntN(cfg.Keys)
	switch w % 3 {
	case 0:
		s.Kind, s.Key = "key", cfg.WatchKey(k)
	case 1:
		s.Kind, s.Key = "prefix", cfg.WatchPrefix()
		s.RangeEnd = clientv3.GetPrefixRangeEnd(s.Key)
	default:
		// Keys sort as strings: WatchKey(1) < WatchKey(10) < WatchKey(2).
		// "~" sorts after every digit.
		s.Kind, s.Key = "range", cfg.WatchKey(k)
		s.RangeEnd = cfg.WatchPrefix() + "~"
		if j := rng.IntN(cfg.Keys); cfg.WatchKey(j) > s.Key {
			s.RangeEnd = cfg.WatchKey(j)
		}
	}
	s.PrevKV = rng.IntN(2) == 0
	switch rng.IntN(4) {
	case 0:
		s.NoPut = true
	case 1:
		s.NoDelete = true
	}
	s.ProgressNotify = rng.IntN(2) == 0
	return s
}

// startRev chooses watcher's first start revision from the store's
// current revision cur: from 1, from just after cur, or from up to 20
// revisions back.
func startRev(rng *rand.Rand, cur int64) int64 {
	switch rng.IntN(3) {
	case 0:
		return 1
	case 1:
		return cur + 1
	}
	return max(1, cur-int64(rng.IntN(20)))
}

// watcher is one logical watcher; its fields belong to its goroutine.
type watcher struct {
	cfg     Config
	target  Target
	dial    Dialer
	rec     *history.Recorder
	lg      *slog.Logger
	rng     *rand.Rand
	spec    history.WatchSpec
	process int
	client  WatchClient
}

// runWatcher runs watcher w on targets[w%len(targets)] until ctx is done
// (the second and later watchers of a member first wait up to
// maxWatchDelay, as their rand.Rand says): it dials,
// chooses its start revision, and records each session (history.FWatch);
// after a cut it redials and resumes from the last revision it got + 1.
func runWatcher(ctx context.Context, cfg Config, w int, targets []Target, dial Dialer, rec *history.Recorder, lg *slog.Logger) {
	target := targets[w%len(targets)]
	rng := newWatcherRand(cfg, w)
	wt := &watcher{cfg: cfg, target: target, dial: dial, rec: rec, lg: lg, rng: rng,
		spec: watchSpec(cfg, w, rng), process: WatchProcessBase + w}
	defer wt.close()
	if w >= len(targets) {
		// Start later than the writers, so that watches from a past
		// revision have a past.
		sleep(ctx, time.Duration(rng.IntN(int(maxWatchDelay/time.Millisecond)))*time.Millisecond)
	}
	for range maxWatchSessions {
		if ctx.Err() != nil {
			return
		}
		if !wt.connect(ctx) {
			sleep(ctx, watchBackoff)
			continue
		}
		if wt.session(ctx) {
			wt.close()
			sleep(ctx, watchBackoff)
		}
	}
}

// connect dials if needed and, the first time, chooses the start
// revision. It reports whether the watcher is ready for a session.
func (w *watcher) connect(ctx context.Context) bool {
	if w.client == nil {
		c, err := w.dial(w.target)
		if err != nil {
			w.lg.Warn("watcher dial failed", "node", w.target.Name, "watcher", w.spec.Watcher, "err", err)
			return false
		}
		wc, ok := c.(WatchClient)
		if !ok {
			_ = c.Close()
			w.lg.Error("client cannot watch", "type", fmt.Sprintf("%T", c))
			return false
		}
		w.client = wc
	}
	if w.spec.StartRev == 0 {
		octx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		cur, err := w.client.Revision(octx)
		cancel()
		if err != nil {
			w.close()
			return false
		}
		w.spec.StartRev = startRev(w.rng, cur)
	}
	return true
}

func (w *watcher) close() {
	if w.client != nil {
		_ = w.client.Close()
		w.client = nil
	}
}

// session records one watch session and reports whether it was cut. The
// next session starts after the last revision this one got (event or
// progress notification).
func (w *watcher) session(ctx context.Context) (cut bool) {
	h := w.rec.Invoke(w.process, history.Invocation{F: history.FWatch, Key: w.spec.Key, Value: history.WatchJSON(w.spec), Node: w.target.Name})
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		got       []history.WatchResponse
		last      int64
		compacted int64
		errs      string
	)
	for r := range w.client.Watch(sctx, w.spec) {
		if len(got) == maxWatchResponses {
			cancel()
			continue // drain
		}
		got = append(got, r)
		for _, e := range r.Events {
			last = max(last, e.Kv.ModRev)
		}
		if r.Progress {
			last = max(last, r.Revision)
		}
		compacted = max(compacted, r.CompactRevision)
		if r.Err != "" || r.Canceled {
			cut, errs = true, r.Err
			if errs == "" {
				errs = "watch canceled"
			}
		}
	}
	if !cut && ctx.Err() == nil && len(got) < maxWatchResponses {
		cut, errs = true, "watch ended"
	}
	t := history.OK
	if cut {
		t = history.Fail
	}
	w.rec.Complete(h, t, history.Completion{Value: history.WatchJSON(got), Error: errs})
	if last >= w.spec.StartRev {
		w.spec.StartRev = last + 1
	}
	if compacted > w.spec.StartRev {
		// The run does not compact; if the server did, what is gone is
		// gone: resume from the oldest revision left.
		w.spec.StartRev = compacted
	}
	return cut
}

// Bounds of the final watch: sessions that make no progress (the next
// one goes to the next member; maxWatchSessions in all), and how long one
// may take to reach the store's revision.
const (
	finalWatchAttempts = 20
	finalWatchTimeout  = 15 * time.Second
)

// finalWatch records the watch workload's final watch
// (history.FFinalWatch): from revision 1 over cfg.WatchPrefix(), with
// prev_kv, on one member, until it got the store's revision read just
// before (a linearizable read, not recorded; it is the completion's
// Revision) as an event's or a progress notification's. A session that is
// cut, or does not get there in finalWatchTimeout, is recorded as fail
// and the next one resumes after the last revision it got, so the
// sessions together are one stream from revision 1; after a session that
// got nothing the next one goes to the next member, finalWatchAttempts
// such sessions at most.
func finalWatch(ctx context.Context, cfg Config, targets []Target, dial Dialer, rec *history.Recorder, process int) error {
	spec := history.WatchSpec{Watcher: -1, Kind: "prefix", Key: cfg.WatchPrefix(), StartRev: 1, PrevKV: true, ProgressNotify: true}
	spec.RangeEnd = clientv3.GetPrefixRangeEnd(spec.Key)
	var errs []error
	for i, stuck := 0, 0; i < maxWatchSessions && stuck < finalWatchAttempts; i++ {
		if stuck > 0 {
			sleep(ctx, finalBackoff)
		}
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
		t := targets[stuck%len(targets)]
		last, err := finalWatchOn(ctx, cfg, spec, t, dial, rec, process)
		if err == nil {
			return nil
		}
		if last >= spec.StartRev {
			spec.StartRev, stuck = last+1, 0 // progress: go on at once, on this member
			continue
		}
		stuck++
		errs = append(errs, fmt.Errorf("final watch on %s: %w", t.Name, err))
	}
	return errors.Join(errs...)
}

// finalWatchOn records one session of the final watch on t and returns
// the last revision it got.
func finalWatchOn(ctx context.Context, cfg Config, spec history.WatchSpec, t Target, dial Dialer, rec *history.Recorder, process int) (last int64, _ error) {
	c, err := dial(t)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	wc, ok := c.(WatchClient)
	if !ok {
		return 0, fmt.Errorf("%T cannot watch", c)
	}
	octx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	target, err := wc.Revision(octx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("revision: %w", err)
	}
	h := rec.Invoke(process, history.Invocation{F: history.FFinalWatch, Key: spec.Key, Value: history.WatchJSON(spec), Node: t.Name})
	wctx, cancel := context.WithTimeout(ctx, finalWatchTimeout)
	defer cancel()
	var (
		got     []history.WatchResponse
		reached bool
		why     string
	)
	for r := range wc.Watch(wctx, spec) {
		if reached || len(got) == maxWatchResponses {
			continue // drain
		}
		got = append(got, r)
		if r.Err != "" || r.Canceled {
			why = "cut: " + r.Err
		}
		for _, e := range r.Events {
			last = max(last, e.Kv.ModRev)
		}
		if r.Progress {
			last = max(last, r.Revision)
		}
		if last >= target {
			reached = true
			cancel()
		}
	}
	if !reached {
		if why == "" {
			why = fmt.Sprintf("revision %d not reached in %v", target, finalWatchTimeout)
		}
		rec.Complete(h, history.Fail, history.Completion{Value: history.WatchJSON(got), Revision: target, Error: why})
		return last, errors.New(why)
	}
	rec.Complete(h, history.OK, history.Completion{Value: history.WatchJSON(got), Revision: target})
	return last, nil
}

// newWatcherRand returns watcher w's rand.Rand: a PCG seeded with
// (cfg.Seed, 1<<32+w), apart from every writer's.
func newWatcherRand(cfg Config, w int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(cfg.Seed), 1<<32+uint64(w)))
}
