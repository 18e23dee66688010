package mvcc

import (
	"bytes"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Events are the store's changes as etcd's watchers see them: one
// mvccpb.Event per changed key, a PUT carrying the key's new KeyValue, a
// DELETE a KeyValue with only Key and ModRevision set (etcd's tombstone).
// PrevKv is never set here: etcd's watch server fills it per watcher.

// RecordEvents makes the store keep the events of every later successful
// write until TakeEvents; a store that does not record allocates nothing
// for them. Called by the goroutine that owns s.
func (s *Store) RecordEvents() { s.recordEvents = true }

// TakeEvents returns the events of the writes since the last call, in
// revision and sub-revision order, and forgets them; nil if none.
func (s *Store) TakeEvents() []mvccpb.Event {
	evs := s.events
	s.events = nil
	if len(evs) == 0 {
		return nil
	}
	return evs
}

// event builds the event of revision r of item it.
func event(it *keyItem, r *rev) mvccpb.Event {
	if r.tomb {
		return mvccpb.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: it.key, ModRevision: r.main}}
	}
	kv := makeKV(it, r)
	return mvccpb.Event{Type: mvccpb.PUT, Kv: &kv}
}

// Events returns the events of the keys in [key, end) (etcd's watch range:
// end nil for the single key, empty for every key >= key) whose revisions
// are in [from, to], in revision order, as a watcher replaying history gets
// them. At most maxRevs distinct revisions are returned (0: no limit); more
// is then the first revision left out, else 0.
//
// Revisions at or below the compaction revision may be gone: the caller
// checks from against CompactRev first, as etcd does.
func (v *View) Events(key, end []byte, from, to int64, maxRevs int) (evs []mvccpb.Event, more int64) {
	if from < 1 {
		from = 1
	}
	if to > v.st.rev {
		to = v.st.rev
	}
	if from > to {
		return nil, 0
	}
	type found struct {
		main int64
		sub  int32
		ev   mvccpb.Event
	}
	var fs []found
	v.st.visit(watchRange(key, end), func(it keyItem) bool {
		i, _ := slices.BinarySearchFunc(it.revs, from, func(r rev, m int64) int { return compareInt64(r.main, m) })
		for ; i < len(it.revs) && it.revs[i].main <= to; i++ {
			fs = append(fs, found{it.revs[i].main, it.revs[i].sub, event(&it, &it.revs[i])})
		}
		return true
	})
	slices.SortFunc(fs, func(a, b found) int {
		if c := compareInt64(a.main, b.main); c != 0 {
			return c
		}
		return int(a.sub) - int(b.sub)
	})
	revs := 0
	for i, f := range fs {
		if i == 0 || f.main != fs[i-1].main {
			revs++
			if maxRevs > 0 && revs > maxRevs {
				more = f.main
				fs = fs[:i]
				break
			}
		}
	}
	evs = make([]mvccpb.Event, len(fs))
	for i := range fs {
		evs[i] = fs[i].ev
	}
	return evs, more
}

// watchRange is mkRange for etcd's watch encoding of a range, which differs
// from the wire's: nil end is the single key, a non-nil empty end every key
// >= key.
func watchRange(key, end []byte) keyRange {
	switch {
	case end == nil:
		return keyRange{key: key, single: true}
	case len(end) == 0:
		return keyRange{key: key, gte: true}
	}
	return keyRange{key: key, end: end}
}

// InWatchRange says whether key is in etcd's watch range [key, end) as
// Events reads it.
func InWatchRange(k, key, end []byte) bool {
	switch {
	case end == nil:
		return bytes.Equal(k, key)
	case len(end) == 0:
		return bytes.Compare(k, key) >= 0
	}
	return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
}
