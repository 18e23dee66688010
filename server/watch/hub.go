package watch

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// Tunables, etcd's where etcd has them.
const (
	// chanBufLen is a stream's buffer (etcd's chanBufLen).
	chanBufLen = 128
	// maxWatchersPerSync bounds one catch-up round (etcd's).
	maxWatchersPerSync = 512
	// watchBatchMaxRevs bounds the revisions of one catch-up response
	// (etcd's watchBatchMaxRevs).
	watchBatchMaxRevs = 1000
	// syncPeriod is how often unsynced watchers are caught up when
	// nothing asks sooner (etcd's watchResyncPeriod).
	syncPeriod = 100 * time.Millisecond
	// blockedRetryPeriod is how soon a round that could not send to a
	// full stream is retried (etcd retries its victims every 10 ms): a
	// stream's client drains 128 responses in a few milliseconds, so
	// waiting syncPeriod would leave it idle most of the time.
	blockedRetryPeriod = 10 * time.Millisecond
	// ringEvents bounds the recent events kept for closing a catch-up's
	// last gap.
	ringEvents = 8192
)

// Metrics are the hub's gauges and counters (etcd's
// etcd_debugging_mvcc_* watch families); any may be nil.
type Metrics struct {
	Streams       prometheus.Gauge   // watch_stream_total
	Watchers      prometheus.Gauge   // watcher_total
	SlowWatchers  prometheus.Gauge   // slow_watcher_total
	PendingEvents prometheus.Gauge   // pending_events_total
	Events        prometheus.Counter // events_total
}

func gaugeAdd(g prometheus.Gauge, d float64) {
	if g != nil {
		g.Add(d)
	}
}

// Hub is a member's watchable store: its watchers and the events the
// applier notifies. All methods are safe for concurrent use; Notify and
// Restore must be called by one goroutine (the applier), in revision order.
//
// Every watcher is in one indexed group, all; the ones that are behind
// (etcd's unsynced and victims) are also in the set behind, by stream, and
// flagged, so that falling behind on the apply path is a flag and a map
// insert, the index is changed only when a watcher is created or canceled,
// and a catch-up round passes over a full stream's watchers at once.
type Hub struct {
	source  func() Source
	metrics Metrics
	kick    chan struct{}

	mu sync.Mutex
	// rev is the revision of the last notified batch; compactRev the
	// store's compaction revision then.
	rev, compactRev int64
	all             group
	behind          map[*Stream]watcherSet
	nBehind         int // watchers in behind
	recent          ring
}

// NewHub returns a hub over a store at rev (compacted at compactRev);
// source returns the store's latest published snapshot, which may be
// behind or ahead of the last Notify.
func NewHub(rev, compactRev int64, source func() Source, m Metrics) *Hub {
	return &Hub{
		source: source, metrics: m, kick: make(chan struct{}, 1),
		rev: rev, compactRev: compactRev,
		all: newGroup(), behind: map[*Stream]watcherSet{},
		recent: ring{from: rev + 1},
	}
}

// fallBehind marks w as needing a catch-up from revision from. Caller
// holds h.mu.
func (h *Hub) fallBehind(w *watcher, from int64) {
	w.minRev = from
	if !w.behind {
		w.behind = true
		set := h.behind[w.stream]
		if set == nil {
			set = watcherSet{}
			h.behind[w.stream] = set
		}
		set[w] = struct{}{}
		h.nBehind++
		gaugeAdd(h.metrics.SlowWatchers, 1)
	}
}

// caughtUp marks w as synced again. Caller holds h.mu.
func (h *Hub) caughtUp(w *watcher) {
	if w.behind {
		w.behind = false
		set := h.behind[w.stream]
		delete(set, w)
		if len(set) == 0 {
			delete(h.behind, w.stream)
		}
		h.nBehind--
		gaugeAdd(h.metrics.SlowWatchers, -1)
	}
}

// synced reports whether w has been sent every event up to the hub's
// revision. Caller holds h.mu.
func (h *Hub) synced(w *watcher) bool { return h.all.has(w) && !w.behind }

// Notify hands the events of one applied batch to the synced watchers;
// rev is the store's revision after the batch, compactRev its compaction
// revision. evs are in revision order, every revision in (previous rev,
// rev] that has any. It never blocks on a watcher.
func (h *Hub) Notify(rev, compactRev int64, evs []mvccpb.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev, h.compactRev = rev, compactRev
	if len(evs) == 0 {
		return
	}
	h.recent.add(evs)
	if h.all.size() == h.nBehind {
		return
	}
	batches := map[*watcher][]mvccpb.Event{}
	for _, e := range evs {
		h.all.match(e.Kv.Key, func(w *watcher) {
			if !w.behind && e.Kv.ModRevision >= w.minRev {
				batches[w] = append(batches[w], e)
			}
		})
	}
	slow := false
	for w, b := range batches {
		if w.send(Response{WatchID: w.id, Events: b, Revision: rev}) {
			w.minRev = rev + 1
			gaugeAdd(h.metrics.PendingEvents, float64(len(b)))
			continue
		}
		// The stream is full: catch the watcher up later, from the first
		// revision it was not sent.
		h.fallBehind(w, b[0].Kv.ModRevision)
		slow = true
	}
	if slow {
		h.wake()
	}
}

// Restore follows the applier replacing its store by a snapshot at rev:
// every synced watcher has seen everything up to the old revision and now
// catches up from the new store.
func (h *Hub) Restore(rev, compactRev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.all.watchers {
		if !w.behind {
			h.fallBehind(w, max(w.minRev, h.rev+1))
		}
	}
	h.rev, h.compactRev = rev, compactRev
	h.recent = ring{from: rev + 1}
	h.wake()
}

func (h *Hub) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Run catches watchers that are behind up until stop is closed.
func (h *Hub) Run(stop <-chan struct{}) {
	t := time.NewTimer(syncPeriod)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-h.kick:
		}
		start := time.Now()
		left, progressed, blocked := h.syncWatchers()
		next := syncPeriod
		switch {
		case left > 0 && progressed:
			// More to do: go on after yielding as long as the round took.
			next = time.Since(start)
		case left > 0 && blocked:
			next = blockedRetryPeriod
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// pick is one watcher chosen for a catch-up round, with what the round
// read for it: its events of revisions [minRev, observed].
type pick struct {
	w              *watcher
	key, end       []byte
	minRev         int64
	evs            []mvccpb.Event
	observed, more int64
	revs           int
}

// add appends e to p's events unless p already has watchBatchMaxRevs
// revisions and e starts another (then more is set).
func (p *pick) add(e mvccpb.Event) {
	if p.more != 0 {
		return
	}
	r := e.Kv.ModRevision
	if len(p.evs) == 0 || p.evs[len(p.evs)-1].Kv.ModRevision != r {
		if p.revs == watchBatchMaxRevs {
			p.more = r
			p.observed = r - 1
			return
		}
		p.revs++
	}
	p.evs = append(p.evs, e)
}

// syncWatchers is one catch-up round over at most maxWatchersPerSync
// watchers that are behind, and no more of a stream's than it has free
// slots (what could not be sent is not read; the round's work goes to the
// others). It returns how many remain behind, whether any watcher
// advanced, and whether any was held back by a full stream.
//
// The history is read outside the lock. Watchers whose next revision the
// ring of recent events still holds are served together, in one pass over
// the ring (a snapshot of it: the ring is append-only until trimmed, and
// trimming copies), dispatching each event by key as etcd's syncWatchers
// does over its revision-ordered backend; the others read their key range
// from the store's latest view, one by one.
func (h *Hub) syncWatchers() (left int, progressed, blocked bool) {
	h.mu.Lock()
	if h.nBehind == 0 {
		h.mu.Unlock()
		return 0, false, false
	}
	picks := make([]pick, 0, min(h.nBehind, maxWatchersPerSync))
streams:
	for st, set := range h.behind {
		if st.full() {
			blocked = true
			continue
		}
		// One response each at most this round: no more picks than the
		// stream has free slots.
		free := cap(st.ch) - len(st.ch)
		for w := range set {
			if len(picks) == maxWatchersPerSync {
				break streams
			}
			if free == 0 {
				blocked = true
				st.blocked.Store(true) // Drained wakes the hub for the rest
				break
			}
			free--
			picks = append(picks, pick{w: w, key: w.key, end: w.end, minRev: w.minRev})
		}
	}
	recent, ringRev := h.recent, h.rev
	h.mu.Unlock()

	src := h.source()
	srcRev, srcCompact := src.Rev(), src.CompactRev()
	fromRing := newGroup()
	byWatcher := map[*watcher]*pick{}
	minRing := int64(0)
	for i := range picks {
		p := &picks[i]
		switch {
		case p.minRev < srcCompact:
			// compacted: answered under the lock
		case p.minRev >= recent.from && len(recent.evs) > 0:
			p.observed = ringRev
			fromRing.add(p.w)
			byWatcher[p.w] = p
			if minRing == 0 || p.minRev < minRing {
				minRing = p.minRev
			}
		default:
			p.observed = srcRev
			if p.minRev <= srcRev {
				p.evs, p.more = src.Events(p.key, p.end, p.minRev, srcRev, watchBatchMaxRevs)
				if p.more != 0 {
					p.observed = p.more - 1
				}
			}
		}
	}
	if len(byWatcher) > 0 {
		i := sort.Search(len(recent.evs), func(i int) bool { return recent.evs[i].Kv.ModRevision >= minRing })
		for _, e := range recent.evs[i:] {
			fromRing.match(e.Kv.Key, func(w *watcher) {
				if p := byWatcher[w]; e.Kv.ModRevision >= p.minRev {
					p.add(e)
				}
			})
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range picks {
		p := &picks[i]
		w := p.w
		if !w.behind || !h.all.has(w) || w.minRev != p.minRev {
			continue // canceled, or moved meanwhile
		}
		if compactRev := max(h.compactRev, srcCompact); w.minRev < compactRev {
			if w.send(Response{WatchID: w.id, CompactRevision: compactRev}) {
				w.compacted = true
				h.caughtUp(w)
				h.all.remove(w)
				gaugeAdd(h.metrics.Watchers, -1)
				progressed = true
			} else {
				blocked = true
			}
			continue
		}
		evs, next := p.evs, max(p.minRev, p.observed+1)
		if p.more == 0 && next <= h.rev {
			// Close the gap between the history read and the hub's
			// revision from the recent events, if they reach back so far.
			if gap, ok := h.recent.since(next, w); ok {
				evs = append(evs, gap...)
				next = h.rev + 1
			}
		}
		if len(evs) > 0 {
			if !w.send(Response{WatchID: w.id, Events: evs, Revision: next - 1}) {
				blocked = true
				continue // still full; try again next round
			}
			gaugeAdd(h.metrics.PendingEvents, float64(len(evs)))
		}
		if next > w.minRev {
			progressed = true
		}
		w.minRev = next
		if w.minRev > h.rev {
			h.caughtUp(w)
		}
	}
	return h.nBehind, progressed, blocked
}

// ring holds the events of the most recent revisions: every event of a
// revision >= from that was notified since.
type ring struct {
	evs  []mvccpb.Event // in revision order
	from int64
}

func (r *ring) add(evs []mvccpb.Event) {
	r.evs = append(r.evs, evs...)
	if n := len(r.evs); n > ringEvents {
		// Drop whole revisions from the front, down to half the bound so
		// that trimming is amortized.
		cut := n - ringEvents/2
		for cut < n && r.evs[cut].Kv.ModRevision == r.evs[cut-1].Kv.ModRevision {
			cut++
		}
		if cut == n {
			r.from = r.evs[n-1].Kv.ModRevision + 1
			r.evs = nil
			return
		}
		r.from = r.evs[cut].Kv.ModRevision
		r.evs = append([]mvccpb.Event(nil), r.evs[cut:]...)
	}
}

// since returns w's events of revisions >= rev, and false if the ring does
// not reach back to rev.
func (r *ring) since(rev int64, w *watcher) ([]mvccpb.Event, bool) {
	if rev < r.from {
		return nil, false
	}
	i := sort.Search(len(r.evs), func(i int) bool { return r.evs[i].Kv.ModRevision >= rev })
	var out []mvccpb.Event
	for _, e := range r.evs[i:] {
		if mvcc.InWatchRange(e.Kv.Key, w.key, w.end) {
			out = append(out, e)
		}
	}
	return out, true
}
