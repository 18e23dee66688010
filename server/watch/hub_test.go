package watch

import (
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// applier is the test's stand-in for the server's applier: it owns a store,
// applies batches of writes, publishes a view and notifies the hub, in
// that order, as the server does.
type applier struct {
	store *mvcc.Store
	view  atomic.Pointer[mvcc.View]
	hub   *Hub
	log   []mvccpb.Event // every event so far
}

func newApplier() *applier {
	a := &applier{store: mvcc.New()}
	a.store.RecordEvents()
	a.view.Store(a.store.View())
	a.hub = NewHub(a.store.Rev(), a.store.CompactRev(), func() Source { return a.view.Load() }, Metrics{})
	return a
}

var testKeys = []string{"a", "ab", "b", "ba", "c", "d"}

func (a *applier) batch(rng *rand.Rand, writes int) {
	for range writes {
		k := []byte(testKeys[rng.Intn(len(testKeys))])
		switch rng.Intn(5) {
		case 0:
			a.store.DeleteRange(&pb.DeleteRangeRequest{Key: k})
		case 1:
			// Two keys in one revision.
			k2 := []byte(testKeys[rng.Intn(len(testKeys))])
			if string(k2) == string(k) {
				k2 = append(k2, 'x')
			}
			if _, err := a.store.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: k, Value: []byte("t")}}},
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: k2, Value: []byte("t")}}},
			}}); err != nil {
				panic(err)
			}
		default:
			if _, err := a.store.Put(&pb.PutRequest{Key: k, Value: []byte(fmt.Sprint(rng.Intn(100)))}); err != nil {
				panic(err)
			}
		}
	}
	evs := a.store.TakeEvents()
	a.log = append(a.log, evs...)
	a.view.Store(a.store.View())
	a.hub.Notify(a.store.Rev(), a.store.CompactRev(), evs)
}

// expected is what a watcher created with these options must receive.
func expected(log []mvccpb.Event, key, end []byte, from int64, noPut, noDelete bool) []string {
	var out []string
	for _, e := range log {
		if e.Kv.ModRevision < from || !mvcc.InWatchRange(e.Kv.Key, key, end) {
			continue
		}
		if (noPut && e.Type == mvccpb.PUT) || (noDelete && e.Type == mvccpb.DELETE) {
			continue
		}
		out = append(out, evString(e))
	}
	return out
}

func evString(e mvccpb.Event) string {
	return fmt.Sprintf("%s %s=%s m%d v%d", e.Type, e.Kv.Key, e.Kv.Value, e.Kv.ModRevision, e.Kv.Version)
}

type testWatch struct {
	id             WatchID
	key, end       []byte
	from           int64 // first revision it must see
	noPut, noDel   bool
	got            []string
	lastRev        int64
	compactedAt    int64
	createdAtRev   int64
	splitRevisions []string
}

// TestHubDeliversEveryEventOnce: watchers on random ranges, from random
// past, present and future revisions, with random filters, on streams whose
// readers are slow enough to overflow their buffers, receive exactly the
// matching events, in revision order, each once, with no revision split
// across responses — while writes go on and the hub's sync loop catches
// them up.
func TestHubDeliversEveryEventOnce(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { hubRun(t, seed) })
	}
}

func hubRun(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	a := newApplier()
	stop := make(chan struct{})
	var loop sync.WaitGroup
	loop.Add(1)
	go func() { defer loop.Done(); a.hub.Run(stop) }()
	defer func() { close(stop); loop.Wait() }()

	for range 20 {
		a.batch(rng, 1+rng.Intn(3))
	}
	const streams = 4
	type streamState struct {
		s       *Stream
		watches map[WatchID]*testWatch
		mu      sync.Mutex
	}
	var sts []*streamState
	var readers sync.WaitGroup
	for i := range streams {
		st := &streamState{s: a.hub.NewStream(), watches: map[WatchID]*testWatch{}}
		sts = append(sts, st)
		slow := i%2 == 0
		readers.Add(1)
		go func() {
			defer readers.Done()
			for resp := range st.s.Chan() {
				if slow {
					time.Sleep(200 * time.Microsecond)
				}
				st.mu.Lock()
				w := st.watches[resp.WatchID]
				if w == nil {
					st.mu.Unlock()
					continue
				}
				if resp.CompactRevision != 0 {
					w.compactedAt = resp.CompactRevision
				}
				for j, e := range resp.Events {
					w.got = append(w.got, evString(e))
					if j == 0 && e.Kv.ModRevision == w.lastRev {
						w.splitRevisions = append(w.splitRevisions, evString(e))
					}
					w.lastRev = e.Kv.ModRevision
				}
				st.mu.Unlock()
			}
		}()
	}

	var all []*testWatch
	for step := range 300 {
		if step%5 == 0 {
			st := sts[rng.Intn(streams)]
			k := []byte(testKeys[rng.Intn(len(testKeys))])
			var end []byte
			switch rng.Intn(3) {
			case 1:
				end = []byte{}
			case 2:
				end = append([]byte(nil), k...)
				end[len(end)-1]++
			}
			rev := a.store.Rev()
			var start int64
			switch rng.Intn(4) {
			case 0: // now
			case 1:
				start = rev + 1 + rng.Int63n(5) // the future
			default:
				start = max(1, a.store.CompactRev()) + rng.Int63n(rev-max(1, a.store.CompactRev())+1)
			}
			tw := &testWatch{key: k, end: end, noPut: rng.Intn(6) == 0, noDel: rng.Intn(6) == 0}
			var fcs []FilterFunc
			if tw.noPut {
				fcs = append(fcs, FilterNoPut)
			}
			if tw.noDel {
				fcs = append(fcs, FilterNoDelete)
			}
			st.mu.Lock()
			id, err := st.s.Watch(AutoWatchID, k, end, start, fcs...)
			if err != nil {
				st.mu.Unlock()
				t.Fatalf("watch: %v", err)
			}
			tw.id = id
			tw.from = start
			if start == 0 {
				tw.from = rev + 1 // no write happens between reading rev and Watch
			}
			st.watches[id] = tw
			st.mu.Unlock()
			all = append(all, tw)
		}
		a.batch(rng, 1+rng.Intn(4))
		if step == 150 {
			// A compaction below some watchers' next revision.
			if err := a.store.Compact(a.store.Rev() - 30); err != nil {
				t.Fatal(err)
			}
			a.view.Store(a.store.View())
			a.hub.Notify(a.store.Rev(), a.store.CompactRev(), nil)
		}
	}

	// Let everyone catch up: each watcher must reach its final event.
	deadline := time.Now().Add(10 * time.Second)
	for _, st := range sts {
		for {
			done := true
			st.mu.Lock()
			for _, w := range st.watches {
				want := expected(a.log, w.key, w.end, w.from, w.noPut, w.noDel)
				if w.compactedAt == 0 && len(w.got) < len(want) {
					done = false
				}
			}
			st.mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("watchers did not catch up within 10 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, st := range sts {
		st.s.Close()
	}
	readers.Wait()

	compacted := 0
	for _, w := range all {
		want := expected(a.log, w.key, w.end, w.from, w.noPut, w.noDel)
		if w.compactedAt != 0 {
			compacted++
			// A compacted watcher got a prefix of its events first.
			if len(w.got) > len(want) || strings.Join(w.got, "\n") != strings.Join(want[:len(w.got)], "\n") {
				t.Errorf("watch %q-%q from %d (compacted at %d): got\n%s\nwant a prefix of\n%s", w.key, w.end, w.from, w.compactedAt,
					strings.Join(w.got, "\n"), strings.Join(want, "\n"))
			}
			continue
		}
		if strings.Join(w.got, "\n") != strings.Join(want, "\n") {
			t.Errorf("watch %q-%q from %d (noput %v nodelete %v): got\n%s\nwant\n%s", w.key, w.end, w.from, w.noPut, w.noDel,
				strings.Join(w.got, "\n"), strings.Join(want, "\n"))
		}
		if len(w.splitRevisions) > 0 {
			t.Errorf("watch %q-%q: revisions split across responses: %v", w.key, w.end, w.splitRevisions)
		}
	}
	t.Logf("%d watchers, %d compacted, %d events", len(all), compacted, len(a.log))
}

// staleApplier's hub reads history from a view that stops at a fixed
// revision, as a catch-up round does when batches are applied while it
// reads.
func staleApplier(t *testing.T, before, after int) (*applier, *mvcc.View) {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	a := newApplier()
	for range before {
		a.batch(rng, 2)
	}
	old := a.store.View()
	a.hub.source = func() Source { return old }
	for range after {
		a.batch(rng, 2)
	}
	return a, old
}

func drain(s *Stream) (got []string, last Response) {
	for {
		select {
		case r := <-s.Chan():
			for _, e := range r.Events {
				got = append(got, evString(e))
			}
			last = r
		default:
			return got, last
		}
	}
}

// TestCatchUpClosesGapFromRecentEvents: the history read stops at an older
// revision than the hub's; the rest comes from the recent events, and the
// watcher is synced after one round.
func TestCatchUpClosesGapFromRecentEvents(t *testing.T) {
	a, old := staleApplier(t, 10, 5)
	s := a.hub.NewStream()
	id, err := s.Watch(AutoWatchID, []byte("a"), []byte{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if left, _, _ := a.hub.syncWatchers(); left != 0 {
		t.Fatalf("%d watchers left unsynced, want 0", left)
	}
	got, last := drain(s)
	want := expected(a.log, []byte("a"), []byte{}, 2, false, false)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if last.WatchID != id || last.Revision != a.store.Rev() {
		t.Fatalf("last response %+v, want watch %d at revision %d", last, id, a.store.Rev())
	}
	if old.Rev() >= a.store.Rev() {
		t.Fatalf("test setup: history view at %d is not behind the hub at %d", old.Rev(), a.store.Rev())
	}
}

// TestCatchUpWaitsWhenRecentEventsDoNotReachBack: with the recent events
// trimmed past the history view's revision, the watcher gets what the
// history holds and stays unsynced, missing nothing, until a fresher view
// serves the rest.
func TestCatchUpWaitsWhenRecentEventsDoNotReachBack(t *testing.T) {
	a, _ := staleApplier(t, 10, 5)
	a.hub.recent = ring{from: a.store.Rev() + 1}
	s := a.hub.NewStream()
	if _, err := s.Watch(AutoWatchID, []byte("a"), []byte{}, 2); err != nil {
		t.Fatal(err)
	}
	if left, _, _ := a.hub.syncWatchers(); left != 1 {
		t.Fatalf("%d watchers left unsynced, want 1", left)
	}
	a.hub.source = func() Source { return a.view.Load() }
	if left, _, _ := a.hub.syncWatchers(); left != 0 {
		t.Fatalf("%d watchers left unsynced after a fresh view, want 0", left)
	}
	got, _ := drain(s)
	want := expected(a.log, []byte("a"), []byte{}, 2, false, false)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCatchUpInBatchesOfRevisions: a watcher far behind is caught up in
// responses of at most watchBatchMaxRevs revisions, none split.
func TestCatchUpInBatchesOfRevisions(t *testing.T) {
	a := newApplier()
	rng := rand.New(rand.NewSource(3))
	for range 2500 {
		a.batch(rng, 1)
	}
	s := a.hub.NewStream()
	if _, err := s.Watch(AutoWatchID, []byte{0}, []byte{}, 1); err != nil {
		t.Fatal(err)
	}
	var got []string
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("not caught up after 10 rounds")
		}
		left, _, _ := a.hub.syncWatchers()
		for {
			select {
			case r := <-s.Chan():
				revs := map[int64]bool{}
				for _, e := range r.Events {
					revs[e.Kv.ModRevision] = true
					got = append(got, evString(e))
				}
				if len(revs) > watchBatchMaxRevs {
					t.Fatalf("a response with %d revisions", len(revs))
				}
				continue
			default:
			}
			break
		}
		if left == 0 {
			break
		}
	}
	want := expected(a.log, []byte{0}, []byte{}, 1, false, false)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
}

// TestProgressOnlyWhenSynced: RequestProgressAll answers at the hub's
// revision only once every watcher of the stream is synced.
func TestProgressOnlyWhenSynced(t *testing.T) {
	a, _ := staleApplier(t, 5, 0)
	s := a.hub.NewStream()
	if _, err := s.Watch(AutoWatchID, []byte("a"), nil, 1); err != nil {
		t.Fatal(err)
	}
	if s.RequestProgressAll() {
		t.Fatal("progress sent for an unsynced watcher")
	}
	a.hub.syncWatchers()
	drain(s)
	if !s.RequestProgressAll() {
		t.Fatal("no progress for a synced watcher")
	}
	r := <-s.Chan()
	if r.WatchID != InvalidWatchID || r.Revision != a.store.Rev() || len(r.Events) != 0 {
		t.Fatalf("progress response %+v, want watch -1 at %d", r, a.store.Rev())
	}
}

// TestStreamIDs: automatic IDs take the lowest free ID; a duplicate ID and
// an empty range are refused with etcd's errors; cancel of an unknown ID
// fails.
func TestStreamIDs(t *testing.T) {
	a := newApplier()
	s := a.hub.NewStream()
	defer s.Close()
	if id, _ := s.Watch(5, []byte("a"), nil, 0); id != 5 {
		t.Fatalf("watch with ID 5 got %d", id)
	}
	if id, _ := s.Watch(AutoWatchID, []byte("a"), nil, 0); id != 0 {
		t.Fatalf("first automatic ID %d, want 0", id)
	}
	if _, err := s.Watch(5, []byte("a"), nil, 0); err != ErrWatcherDuplicateID {
		t.Fatalf("duplicate ID: %v", err)
	}
	if _, err := s.Watch(AutoWatchID, []byte("b"), []byte("a"), 0); err != ErrEmptyWatcherRange {
		t.Fatalf("empty range: %v", err)
	}
	if err := s.Cancel(7); err != ErrWatcherNotExist {
		t.Fatalf("cancel unknown: %v", err)
	}
	if err := s.Cancel(5); err != nil {
		t.Fatalf("cancel 5: %v", err)
	}
	if a.hub.all.size() != 1 || a.hub.nBehind != 0 {
		t.Fatalf("%d watchers (%d behind) after one cancel, want 1 synced", a.hub.all.size(), a.hub.nBehind)
	}
}

// TestPrevKVTravelsWithTheWatcher: a watcher created for prev_kv marks
// every response it gets, the catch-up's and Notify's, and one created
// without does not.
func TestPrevKVTravelsWithTheWatcher(t *testing.T) {
	a := newApplier()
	rng := rand.New(rand.NewSource(5))
	for range 5 {
		a.batch(rng, 2)
	}
	s := a.hub.NewStream()
	with, _ := s.WatchPrevKV(AutoWatchID, []byte{0}, []byte{}, 1, true)
	without, _ := s.Watch(AutoWatchID, []byte{0}, []byte{}, 1)
	a.hub.syncWatchers()
	a.batch(rng, 1)
	n := 0
	for {
		select {
		case r := <-s.Chan():
			n++
			if r.PrevKV != (r.WatchID == with) {
				t.Fatalf("response of watch %d (prev_kv watch %d, plain %d) has PrevKV %v", r.WatchID, with, without, r.PrevKV)
			}
			continue
		default:
		}
		break
	}
	if n != 4 {
		t.Fatalf("%d responses, want a catch-up and a notification for each watcher", n)
	}
}

// TestCatchUpSkipsFullStreamsAndSaysSo: a watcher whose stream has no free
// slot is not worked on (the round reports it blocked, so Run retries
// soon), and once the reader drains the stream the next round catches it
// up with nothing lost.
func TestCatchUpSkipsFullStreamsAndSaysSo(t *testing.T) {
	a, _ := staleApplier(t, 10, 5)
	a.hub.source = func() Source { return a.view.Load() }
	s := a.hub.NewStream()
	for len(s.ch) < cap(s.ch) {
		s.ch <- Response{WatchID: 99}
	}
	if _, err := s.Watch(AutoWatchID, []byte("a"), []byte{}, 2); err != nil {
		t.Fatal(err)
	}
	left, progressed, blocked := a.hub.syncWatchers()
	if left != 1 || progressed || !blocked {
		t.Fatalf("round with the stream full: left %d progressed %v blocked %v, want 1 false true", left, progressed, blocked)
	}
	for len(a.hub.kick) > 0 { // the Watch's own wake-up
		<-a.hub.kick
	}
	for len(s.ch) > 0 {
		<-s.ch
	}
	s.Drained()
	if len(a.hub.kick) != 1 {
		t.Fatal("Drained on a stream the hub found full did not wake the hub")
	}
	left, progressed, blocked = a.hub.syncWatchers()
	if left != 0 || !progressed || blocked {
		t.Fatalf("round after draining: left %d progressed %v blocked %v, want 0 true false", left, progressed, blocked)
	}
	got, _ := drain(s)
	want := expected(a.log, []byte("a"), []byte{}, 2, false, false)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
