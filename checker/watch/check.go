// Package watch checks the watch workload: writers put and delete over a
// small key space while watchers on every member record every watch
// response (history.FWatch), and once faults are healed one final watch
// from revision 1 over the whole key space (history.FFinalWatch) reads
// back the keyspace's history. Check is a pure function of the history.
//
// The ground truth is every revision's events. It is the final watch's
// events, replayed in revision order (which gives each put's create
// revision and version, each event's previous key-value), and verified
// against the acknowledged writes: a put, delete or write txn acknowledged
// at revision R must appear at R (a delete of an absent key has no event,
// and the key must then be absent at R), and every event must come from a
// write that was acknowledged at its revision or whose outcome is unknown.
// The run does not compact, so the whole history is there; revisions above
// what the final watch covered are not checked.
//
// Each watcher (one logical watch, resumed after each cut from its last
// revision + 1, so its sessions form one stream) is then checked, as etcd's
// robustness tests and Jepsen do:
//
//   - ordered: event revisions never go back;
//   - unique: no (revision, key) event twice;
//   - atomic: one revision's events never split across responses;
//   - bookmarkable: after a progress notification at R no event <= R;
//   - reliable: every matching event between the session's start and the
//     last revision it got (event or progress notification) was received;
//   - resumable: a watch from R starts with the first matching event >= R;
//   - prev-kv: with prev_kv, each event's previous key-value is the
//     history's (none without prev_kv);
//   - is-create: a put creates its key exactly when the key was absent;
//   - filter and range: no put under NoPut, no delete under NoDelete, no
//     key outside the watched interval;
//   - event-mismatch: an event is the history's (type, value, version);
//   - agreement: every watcher that saw a revision saw the same events for
//     it (for the keys it watches).
//
// The truth's own kinds are lost-write (an acknowledged write missing) and
// unexpected-event (an event no write explains).
package watch

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

// Anomaly kinds.
const (
	KindOrdered         = "ordered"
	KindUnique          = "unique"
	KindAtomic          = "atomic"
	KindBookmarkable    = "bookmarkable"
	KindReliable        = "reliable"
	KindResumable       = "resumable"
	KindPrevKV          = "prev-kv"
	KindIsCreate        = "is-create"
	KindFilter          = "filter"
	KindRange           = "range"
	KindEventMismatch   = "event-mismatch"
	KindAgreement       = "agreement"
	KindLostWrite       = "lost-write"
	KindUnexpectedEvent = "unexpected-event"
)

// FinalWatcher is the Watcher of anomalies found in the final watch.
const FinalWatcher = -1

// MaxExamples bounds the anomalies of each kind kept in Result.Anomalies;
// Result.Counts counts them all. MaxWrongRevisions bounds the revisions
// listed per watcher.
const (
	MaxExamples       = 20
	MaxWrongRevisions = 20
)

// Result is the outcome of Check.
type Result struct {
	// Verdict is Invalid if any anomaly was found; Unknown when there is
	// no final watch, or nothing was checked (Reason says which); else
	// Valid.
	Verdict verdict.Verdict `json:"verdict"`
	Reason  string          `json:"reason,omitempty"`
	// WritesOK, WritesFail and WritesInfo count the writes by outcome.
	WritesOK   int `json:"writes_ok"`
	WritesFail int `json:"writes_fail"`
	WritesInfo int `json:"writes_info"`
	// Revisions is how many revisions the history (final watch) holds,
	// up to Through, the last revision checked.
	Revisions int   `json:"revisions"`
	Through   int64 `json:"through"`
	// Sessions and Events count the watch sessions and the events they
	// received (the final watch's excluded).
	Sessions int `json:"sessions"`
	Events   int `json:"events"`
	// Watchers summarizes each watcher, by id.
	Watchers []WatcherResult `json:"watchers,omitempty"`
	// Counts holds how many anomalies of each kind were found.
	Counts map[string]int `json:"counts,omitempty"`
	// Anomalies holds up to MaxExamples anomalies of each kind, in the
	// order found.
	Anomalies []Anomaly `json:"anomalies,omitempty"`
}

// WatcherResult is one watcher's figures.
type WatcherResult struct {
	Watcher  int               `json:"watcher"`
	Node     string            `json:"node,omitempty"`
	Spec     history.WatchSpec `json:"spec"`
	Sessions int               `json:"sessions"`
	Events   int               `json:"events"`
	// Progress counts progress notifications; Cuts the sessions that
	// ended cut.
	Progress  int `json:"progress"`
	Cuts      int `json:"cuts"`
	Anomalies int `json:"anomalies"`
	// WrongRevisions are the first MaxWrongRevisions revisions an anomaly
	// names, ascending.
	WrongRevisions []int64 `json:"wrong_revisions,omitempty"`
}

// Anomaly is one piece of evidence.
type Anomaly struct {
	Kind string `json:"kind"`
	// Watcher is the watcher concerned (FinalWatcher: the final watch;
	// for lost-write and unexpected-event, too), Process and Session its
	// session's process and invoke index, Node the member.
	Watcher int    `json:"watcher"`
	Process int    `json:"process"`
	Session int64  `json:"session"`
	Node    string `json:"node,omitempty"`
	// Revisions and Key are what it got wrong.
	Revisions   []int64 `json:"revisions"`
	Key         string  `json:"key,omitempty"`
	Explanation string  `json:"explanation"`
}

// revKey names one event of the history: a revision and a key.
type revKey struct {
	rev int64
	key string
}

// checker accumulates one Check's findings; it belongs to Check.
type checker struct {
	res      Result
	truth    map[revKey]history.WatchEvent // nil: no truth
	byRev    map[int64][]history.WatchEvent
	revs     []int64 // truth revisions, ascending
	through  int64
	watchers map[int]*WatcherResult
}

func (c *checker) add(a Anomaly) {
	if c.res.Counts == nil {
		c.res.Counts = map[string]int{}
	}
	c.res.Counts[a.Kind]++
	if c.res.Counts[a.Kind] <= MaxExamples {
		c.res.Anomalies = append(c.res.Anomalies, a)
	}
	if w := c.watchers[a.Watcher]; w != nil {
		w.Anomalies++
		for _, r := range a.Revisions {
			if i, found := slices.BinarySearch(w.WrongRevisions, r); !found && i < MaxWrongRevisions {
				w.WrongRevisions = slices.Insert(w.WrongRevisions, i, r)
				if len(w.WrongRevisions) > MaxWrongRevisions {
					w.WrongRevisions = w.WrongRevisions[:MaxWrongRevisions]
				}
			}
		}
	}
}

func (c *checker) anomaly(kind string, s *Session, key string, revs []int64, format string, args ...any) {
	c.add(Anomaly{Kind: kind, Watcher: s.Spec.Watcher, Process: s.Process, Session: s.Index, Node: s.Node,
		Revisions: revs, Key: key, Explanation: fmt.Sprintf(format, args...)})
}

// Check checks h. It does not modify h.
func Check(h History) Result {
	c := &checker{watchers: map[int]*WatcherResult{}}
	for _, w := range h.Writes {
		switch w.Type {
		case history.OK:
			c.res.WritesOK++
		case history.Fail:
			c.res.WritesFail++
		default:
			c.res.WritesInfo++
		}
	}
	for i := range h.Sessions {
		s := &h.Sessions[i]
		w := c.watchers[s.Spec.Watcher]
		if w == nil {
			w = &WatcherResult{Watcher: s.Spec.Watcher, Node: s.Node, Spec: s.Spec}
			c.watchers[s.Spec.Watcher] = w
		}
		w.Sessions++
		if s.Type != history.OK {
			w.Cuts++
		}
		for _, r := range s.Responses {
			w.Events += len(r.Events)
			if r.Progress {
				w.Progress++
			}
		}
		c.res.Sessions++
		c.res.Events += countEvents(s)
	}
	if h.Final != nil {
		c.buildTruth(h.Final)
		c.checkWrites(h.Final, h.Writes)
	}
	c.checkWatchers(h)
	c.checkAgreement(h.Sessions)

	for _, w := range c.watchers {
		c.res.Watchers = append(c.res.Watchers, *w)
	}
	slices.SortFunc(c.res.Watchers, func(a, b WatcherResult) int { return cmp.Compare(a.Watcher, b.Watcher) })
	switch {
	case len(c.res.Counts) > 0:
		c.res.Verdict = verdict.Invalid
	case h.Final == nil:
		c.res.Verdict = verdict.Unknown
		c.res.Reason = "no final watch: the history's events are not known"
	case h.Final.Target > c.through:
		c.res.Verdict = verdict.Unknown
		c.res.Reason = fmt.Sprintf("the final watch reached revision %d, short of %d: the history is incomplete", c.through, h.Final.Target)
		if h.Final.Error != "" {
			c.res.Reason += " (" + h.Final.Error + ")"
		}
	case c.res.Events == 0:
		c.res.Verdict = verdict.Unknown
		c.res.Reason = "no watcher received an event: nothing was checked"
	default:
		c.res.Verdict = verdict.Valid
	}
	return c.res
}

func countEvents(s *Session) int {
	n := 0
	for _, r := range s.Responses {
		n += len(r.Events)
	}
	return n
}

// buildTruth replays the final watch's events in revision order, checking
// the stream itself, and records every event with its create revision,
// version and previous key-value.
func (c *checker) buildTruth(f *Session) {
	c.truth = map[revKey]history.WatchEvent{}
	c.byRev = map[int64][]history.WatchEvent{}
	state := map[string]*history.KV{}
	last := int64(0)
	for ri, r := range f.Responses {
		if r.Progress {
			c.through = max(c.through, r.Revision)
		}
		for _, e := range r.Events {
			rev := e.Kv.ModRev
			if rev < last {
				c.anomaly(KindOrdered, f, e.Kv.Key, []int64{last, rev}, "final watch: revision %d after %d (response %d)", rev, last, ri)
				continue
			}
			k := revKey{rev, e.Kv.Key}
			if _, dup := c.truth[k]; dup {
				c.anomaly(KindUnique, f, e.Kv.Key, []int64{rev}, "final watch: %s at revision %d twice", e.Kv.Key, rev)
				continue
			}
			last = rev
			c.through = max(c.through, rev)
			prev := state[e.Kv.Key]
			t := history.WatchEvent{Type: e.Type, Kv: history.KV{Key: e.Kv.Key, ModRev: rev}}
			if prev != nil {
				p := *prev
				t.PrevKV = &p
			}
			switch e.Type {
			case history.WatchPut:
				t.Kv.Value = e.Kv.Value
				t.Kv.CreateRev, t.Kv.Version = rev, 1
				if prev != nil {
					t.Kv.CreateRev, t.Kv.Version = prev.CreateRev, prev.Version+1
				}
				kv := t.Kv
				state[e.Kv.Key] = &kv
			case history.WatchDelete:
				if prev == nil {
					c.anomaly(KindUnexpectedEvent, f, e.Kv.Key, []int64{rev}, "final watch: delete of %s at revision %d, which did not exist", e.Kv.Key, rev)
				}
				delete(state, e.Kv.Key)
			}
			c.truth[k] = t
			if len(c.byRev[rev]) == 0 {
				c.revs = append(c.revs, rev)
			}
			c.byRev[rev] = append(c.byRev[rev], t)
		}
	}
	c.res.Revisions, c.res.Through = len(c.revs), c.through
}

// presentBefore reports whether key exists just before revision rev, by
// the history.
func (c *checker) presentBefore(key string, rev int64) bool {
	i, _ := slices.BinarySearch(c.revs, rev)
	for j := i - 1; j >= 0; j-- {
		for _, e := range c.byRev[c.revs[j]] {
			if e.Kv.Key == key {
				return e.Type == history.WatchPut
			}
		}
	}
	return false
}

// checkWrites verifies the history, read by the final watch, against the
// writes.
func (c *checker) checkWrites(final *Session, writes []Write) {
	puts := map[revKey]bool{}         // (0, key+"\x00"+value) of ok or unknown puts
	okDeletes := map[revKey]bool{}    // (rev, key) of ok deletes
	maybeDeletes := map[string]bool{} // keys of unknown-outcome deletes
	okPutAt := map[revKey]int64{}     // (0, key+value) -> revision of the ok put
	for _, w := range writes {
		if w.Type == history.Fail {
			continue
		}
		for _, o := range w.Ops {
			switch o.F {
			case history.WatchPut:
				pk := revKey{0, o.Key + "\x00" + o.Value}
				puts[pk] = true
				if w.Type == history.OK {
					okPutAt[pk] = w.Revision
				}
			case history.WatchDelete:
				if w.Type == history.OK {
					okDeletes[revKey{w.Revision, o.Key}] = true
				} else {
					maybeDeletes[o.Key] = true
				}
			}
		}
		if w.Type != history.OK || w.Revision > c.through {
			continue
		}
		for _, o := range w.Ops {
			e, ok := c.truth[revKey{w.Revision, o.Key}]
			switch {
			case o.F == history.WatchPut && (!ok || e.Type != history.WatchPut || e.Kv.Value != o.Value):
				c.anomaly(KindLostWrite, final, o.Key, []int64{w.Revision},
					"%s by process %d (event #%d) of %s = %q acknowledged at revision %d is not in the history there", w.F, w.Process, w.Index, o.Key, o.Value, w.Revision)
			case o.F == history.WatchDelete && ok && e.Type != history.WatchDelete,
				o.F == history.WatchDelete && !ok && c.presentBefore(o.Key, w.Revision+1):
				c.anomaly(KindLostWrite, final, o.Key, []int64{w.Revision},
					"%s by process %d (event #%d) of %s acknowledged at revision %d, but the key exists after it", w.F, w.Process, w.Index, o.Key, w.Revision)
			}
		}
	}
	for _, rev := range c.revs {
		for _, e := range c.byRev[rev] {
			switch e.Type {
			case history.WatchPut:
				pk := revKey{0, e.Kv.Key + "\x00" + e.Kv.Value}
				if at, ok := okPutAt[pk]; ok && at != rev {
					c.anomaly(KindUnexpectedEvent, final, e.Kv.Key, []int64{rev, at},
						"put of %s = %q at revision %d, but it was acknowledged at revision %d", e.Kv.Key, e.Kv.Value, rev, at)
				} else if !puts[pk] {
					c.anomaly(KindUnexpectedEvent, final, e.Kv.Key, []int64{rev},
						"put of %s = %q at revision %d: no write that may have succeeded put it", e.Kv.Key, e.Kv.Value, rev)
				}
			case history.WatchDelete:
				if !okDeletes[revKey{rev, e.Kv.Key}] && !maybeDeletes[e.Kv.Key] {
					c.anomaly(KindUnexpectedEvent, final, e.Kv.Key, []int64{rev},
						"delete of %s at revision %d: no delete acknowledged there or with an unknown outcome", e.Kv.Key, rev)
				}
			}
		}
	}
}

// matches reports whether s's watch delivers e's key and type.
func matches(s history.WatchSpec, key, typ string) bool {
	if !s.Contains(key) {
		return false
	}
	return !(typ == history.WatchPut && s.NoPut || typ == history.WatchDelete && s.NoDelete)
}

func kvEqual(a, b *history.KV) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func kvString(kv *history.KV) string {
	if kv == nil {
		return "none"
	}
	return fmt.Sprintf("%s=%q mod %d create %d version %d", kv.Key, kv.Value, kv.ModRev, kv.CreateRev, kv.Version)
}

// checkWatchers checks each watcher's stream of sessions, and the final
// watch's own (it is the truth, so only its event data is taken on
// trust: its stream is checked as any other).
func (c *checker) checkWatchers(h History) {
	byWatcher := map[int][]*Session{}
	var ids []int
	for i := range h.Sessions {
		s := &h.Sessions[i]
		if byWatcher[s.Spec.Watcher] == nil {
			ids = append(ids, s.Spec.Watcher)
		}
		byWatcher[s.Spec.Watcher] = append(byWatcher[s.Spec.Watcher], s)
	}
	for _, id := range ids {
		c.checkStream(byWatcher[id])
	}
	if h.Final != nil {
		c.checkStream([]*Session{h.Final})
	}
}

// checkStream checks one watcher's sessions, in order.
func (c *checker) checkStream(sessions []*Session) {
	var (
		lastEvent    int64
		lastProgress int64
		seen         = map[revKey]bool{}
		revResponse  = map[int64]int{} // revision -> stream-wide response number
		resp         int
	)
	for _, s := range sessions {
		received := map[revKey]bool{}
		var first, hi int64
		for _, r := range s.Responses {
			resp++
			if r.Progress {
				lastProgress = max(lastProgress, r.Revision)
				hi = max(hi, r.Revision)
				continue
			}
			for _, e := range r.Events {
				rev, key := e.Kv.ModRev, e.Kv.Key
				k := revKey{rev, key}
				if seen[k] {
					c.anomaly(KindUnique, s, key, []int64{rev}, "%s at revision %d delivered twice", key, rev)
					continue
				}
				seen[k], received[k] = true, true
				if first == 0 {
					first = rev
				}
				hi = max(hi, rev)
				if rev < lastEvent {
					c.anomaly(KindOrdered, s, key, []int64{lastEvent, rev}, "event at revision %d (%s) after one at %d", rev, key, lastEvent)
				}
				if n, ok := revResponse[rev]; ok && n != resp {
					c.anomaly(KindAtomic, s, key, []int64{rev}, "revision %d split across responses: %s in a later one", rev, key)
				}
				revResponse[rev] = resp
				if rev <= lastProgress {
					c.anomaly(KindBookmarkable, s, key, []int64{lastProgress, rev}, "event at revision %d (%s) after a progress notification at %d", rev, key, lastProgress)
				}
				if rev < s.Spec.StartRev {
					c.anomaly(KindResumable, s, key, []int64{s.Spec.StartRev, rev}, "watch from revision %d delivered %s at %d", s.Spec.StartRev, key, rev)
				}
				if !s.Spec.Contains(key) {
					c.anomaly(KindRange, s, key, []int64{rev}, "%s at revision %d is outside the watched %s", key, rev, specRange(s.Spec))
				} else if !matches(s.Spec, key, e.Type) {
					c.anomaly(KindFilter, s, key, []int64{rev}, "%s of %s at revision %d passed the watch's filter", e.Type, key, rev)
				}
				lastEvent = max(lastEvent, rev)
				c.checkEvent(s, e)
			}
		}
		c.checkCoverage(s, received, first, hi)
	}
}

func specRange(s history.WatchSpec) string {
	switch {
	case s.RangeEnd == "":
		return "key " + s.Key
	case s.RangeEnd == "\x00":
		return fmt.Sprintf("range [%s, end)", s.Key)
	}
	return fmt.Sprintf("range [%s, %s)", s.Key, s.RangeEnd)
}

// checkEvent compares one received event with the history's.
func (c *checker) checkEvent(s *Session, e history.WatchEvent) {
	if c.truth == nil || e.Kv.ModRev > c.through {
		return
	}
	rev, key := e.Kv.ModRev, e.Kv.Key
	t, ok := c.truth[revKey{rev, key}]
	switch {
	case !ok:
		if s.Spec.Watcher != FinalWatcher {
			c.anomaly(KindEventMismatch, s, key, []int64{rev}, "%s of %s at revision %d is not in the history", e.Type, key, rev)
		}
		return
	case e.Type != t.Type || e.Type == history.WatchPut && e.Kv.Value != t.Kv.Value:
		c.anomaly(KindEventMismatch, s, key, []int64{rev}, "%s of %s = %q at revision %d; the history has a %s = %q", e.Type, key, e.Kv.Value, rev, t.Type, t.Kv.Value)
		return
	}
	if e.Type == history.WatchPut {
		if e.IsCreate() != t.IsCreate() {
			c.anomaly(KindIsCreate, s, key, []int64{rev}, "put of %s at revision %d has is_create %v (create revision %d); the key %s", key, rev,
				e.IsCreate(), e.Kv.CreateRev, map[bool]string{true: "was absent", false: "existed"}[t.IsCreate()])
		} else if e.Kv.CreateRev != t.Kv.CreateRev || e.Kv.Version != t.Kv.Version {
			c.anomaly(KindEventMismatch, s, key, []int64{rev}, "put of %s at revision %d: create %d version %d; the history has create %d version %d",
				key, rev, e.Kv.CreateRev, e.Kv.Version, t.Kv.CreateRev, t.Kv.Version)
		}
	}
	want := t.PrevKV
	if !s.Spec.PrevKV {
		want = nil
	}
	if !kvEqual(e.PrevKV, want) {
		c.anomaly(KindPrevKV, s, key, []int64{rev}, "%s of %s at revision %d: prev_kv %s, want %s", e.Type, key, rev, kvString(e.PrevKV), kvString(want))
	}
}

// checkCoverage checks that s received every matching event of the
// history from its start revision to hi, the last revision it got (event
// or progress notification): one missing before the first event received
// breaks resumable, one after it reliable.
func (c *checker) checkCoverage(s *Session, received map[revKey]bool, first, hi int64) {
	if c.truth == nil || s.Spec.Watcher == FinalWatcher {
		return
	}
	hi = min(hi, c.through)
	i, _ := slices.BinarySearch(c.revs, s.Spec.StartRev)
	var resumeMiss, gaps []int64
	var gapKey, resumeKey string
	for ; i < len(c.revs) && c.revs[i] <= hi; i++ {
		rev := c.revs[i]
		for _, e := range c.byRev[rev] {
			if !matches(s.Spec, e.Kv.Key, e.Type) || received[revKey{rev, e.Kv.Key}] {
				continue
			}
			if first == 0 || rev < first {
				resumeMiss, resumeKey = append(resumeMiss, rev), e.Kv.Key
			} else {
				gaps, gapKey = append(gaps, rev), e.Kv.Key
			}
		}
	}
	if len(resumeMiss) > 0 && first != 0 {
		c.anomaly(KindResumable, s, resumeKey, resumeMiss, "watch from revision %d started with revision %d, not with the first matching event at %d (%d missed)",
			s.Spec.StartRev, first, resumeMiss[0], len(resumeMiss))
	} else if len(resumeMiss) > 0 {
		gaps, gapKey = append(resumeMiss, gaps...), resumeKey
	}
	if len(gaps) > 0 {
		c.anomaly(KindReliable, s, gapKey, gaps, "%d matching events between revisions %d and %d never delivered, first at %d",
			len(gaps), s.Spec.StartRev, hi, gaps[0])
	}
}

// checkAgreement checks that watchers that saw a revision saw the same
// events for it: the same data for each (revision, key), and every event
// of the revision another watcher saw that its own watch matches.
func (c *checker) checkAgreement(sessions []Session) {
	type sighting struct {
		s *Session
		e history.WatchEvent
	}
	first := map[revKey]sighting{}
	var order []revKey
	sawRev := map[int]map[int64]bool{} // watcher -> revisions it saw events of
	specOf := map[int]*Session{}
	for i := range sessions {
		s := &sessions[i]
		specOf[s.Spec.Watcher] = s
		if sawRev[s.Spec.Watcher] == nil {
			sawRev[s.Spec.Watcher] = map[int64]bool{}
		}
		for _, r := range s.Responses {
			for _, e := range r.Events {
				k := revKey{e.Kv.ModRev, e.Kv.Key}
				sawRev[s.Spec.Watcher][k.rev] = true
				f, ok := first[k]
				if !ok {
					first[k] = sighting{s, e}
					order = append(order, k)
					continue
				}
				if f.s.Spec.Watcher != s.Spec.Watcher && (f.e.Type != e.Type || f.e.Kv != e.Kv) {
					c.anomaly(KindAgreement, s, k.key, []int64{k.rev}, "watcher %d saw %s %s at revision %d; watcher %d (%s) saw %s %s",
						s.Spec.Watcher, e.Type, kvString(&e.Kv), k.rev, f.s.Spec.Watcher, f.s.Node, f.e.Type, kvString(&f.e.Kv))
				}
			}
		}
	}
	// Who saw each (revision, key).
	saw := map[revKey]map[int]bool{}
	for i := range sessions {
		s := &sessions[i]
		for _, r := range s.Responses {
			for _, e := range r.Events {
				k := revKey{e.Kv.ModRev, e.Kv.Key}
				if saw[k] == nil {
					saw[k] = map[int]bool{}
				}
				saw[k][s.Spec.Watcher] = true
			}
		}
	}
	ids := make([]int, 0, len(sawRev))
	for id := range sawRev {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, k := range order {
		f := first[k]
		for _, id := range ids {
			s := specOf[id]
			if saw[k][id] || !sawRev[id][k.rev] || !matches(s.Spec, k.key, f.e.Type) {
				continue
			}
			c.anomaly(KindAgreement, s, k.key, []int64{k.rev}, "watcher %d saw revision %d without its %s of %s, which watcher %d (%s) saw",
				id, k.rev, f.e.Type, k.key, f.s.Spec.Watcher, f.s.Node)
		}
	}
}
