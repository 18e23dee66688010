package watch

import (
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/pkg/v3/adt"
)

// watcher is one watch: a key or a range, the next revision it accepts,
// its filters and the stream it sends to. Its fields after creation are
// guarded by the hub's lock.
type watcher struct {
	// key, end: etcd's watch range (end nil: the key; empty: every key >=
	// key).
	key, end []byte
	id       WatchID
	fcs      []FilterFunc
	stream   *Stream
	// prevKV is copied into every response.
	prevKV bool
	// startRev is the revision the watch was created with (0: now).
	startRev int64
	// minRev is the lowest revision the watcher still needs.
	minRev int64
	// behind: the watcher misses events below the hub's revision and is
	// in the hub's behind set, to be caught up by the sync loop.
	behind bool
	// compacted: removed after its compaction response was sent.
	compacted bool
}

// send filters resp's events and offers the result to the watcher's stream
// without blocking; a response whose events were all filtered out is not
// sent (and counts as sent). It reports false when the stream's buffer is
// full.
func (w *watcher) send(resp Response) bool {
	resp.PrevKV = w.prevKV
	progress := len(resp.Events) == 0
	if len(w.fcs) != 0 && !progress {
		kept := make([]mvccpb.Event, 0, len(resp.Events))
	events:
		for _, e := range resp.Events {
			for _, f := range w.fcs {
				if f(e) {
					continue events
				}
			}
			kept = append(kept, e)
		}
		if len(kept) == 0 {
			return true
		}
		resp.Events = kept
	}
	select {
	case w.stream.ch <- resp:
		return true
	default:
		w.stream.blocked.Store(true)
		return false
	}
}

type watcherSet map[*watcher]struct{}

// group is a set of watchers indexed for matching events: single-key
// watchers by key, range watchers in etcd's interval tree (pkg/v3/adt).
type group struct {
	keys     map[string]watcherSet
	ranges   adt.IntervalTree
	watchers watcherSet
}

func newGroup() group {
	return group{keys: map[string]watcherSet{}, ranges: adt.NewIntervalTree(), watchers: watcherSet{}}
}

func (g *group) size() int { return len(g.watchers) }

func (g *group) has(w *watcher) bool { _, ok := g.watchers[w]; return ok }

func (w *watcher) interval() adt.Interval {
	// An empty end is "every key >= key": adt's string-affine ordering
	// sorts "" after every other string.
	return adt.NewStringAffineInterval(string(w.key), string(w.end))
}

func (g *group) add(w *watcher) {
	g.watchers[w] = struct{}{}
	if w.end == nil {
		set := g.keys[string(w.key)]
		if set == nil {
			set = watcherSet{}
			g.keys[string(w.key)] = set
		}
		set[w] = struct{}{}
		return
	}
	ivl := w.interval()
	if iv := g.ranges.Find(ivl); iv != nil {
		iv.Val.(watcherSet)[w] = struct{}{}
		return
	}
	g.ranges.Insert(ivl, watcherSet{w: {}})
}

// remove takes w out of the group; false if it was not in it.
func (g *group) remove(w *watcher) bool {
	if !g.has(w) {
		return false
	}
	delete(g.watchers, w)
	if w.end == nil {
		set := g.keys[string(w.key)]
		delete(set, w)
		if len(set) == 0 {
			delete(g.keys, string(w.key))
		}
		return true
	}
	ivl := w.interval()
	if iv := g.ranges.Find(ivl); iv != nil {
		set := iv.Val.(watcherSet)
		delete(set, w)
		if len(set) == 0 {
			g.ranges.Delete(ivl)
		}
	}
	return true
}

// match calls f for every watcher of the group whose range holds key.
func (g *group) match(key []byte, f func(w *watcher)) {
	for w := range g.keys[string(key)] {
		f(w)
	}
	if g.ranges.Len() == 0 {
		return
	}
	for _, iv := range g.ranges.Stab(adt.NewStringAffinePoint(string(key))) {
		for w := range iv.Val.(watcherSet) {
			f(w)
		}
	}
}
