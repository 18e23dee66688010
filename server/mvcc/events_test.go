package mvcc

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func eventString(e mvccpb.Event) string {
	if e.Type == mvccpb.DELETE {
		return fmt.Sprintf("DELETE %q m%d", e.Kv.Key, e.Kv.ModRevision)
	}
	return "PUT " + kvString(e.Kv)
}

func eventsString(evs []mvccpb.Event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = eventString(e)
	}
	return strings.Join(parts, "\n")
}

// replay applies one revision's events to a keyspace: a PUT sets the key,
// a DELETE removes a key that must exist.
func replay(ks map[string]string, evs []mvccpb.Event) error {
	for _, e := range evs {
		k := string(e.Kv.Key)
		if e.Type == mvccpb.DELETE {
			if _, ok := ks[k]; !ok {
				return fmt.Errorf("DELETE of %q, which does not exist", k)
			}
			delete(ks, k)
			continue
		}
		ks[k] = kvString(e.Kv)
	}
	return nil
}

func modelKeyspace(m *refStore, r int64) map[string]string {
	out := map[string]string{}
	for k, kv := range m.states[r] {
		out[k] = kvString(kv.pb(k))
	}
	return out
}

// TestEventsMatchModel drives random writes and compactions and requires
// (1) every revision's recorded events, applied in order to the keyspace
// before it, to give the reference model's keyspace at that revision, and (2) the
// history read back with View.Events, for random watch ranges and start
// revisions above the compaction, to be the recorded events in the same
// order.
func TestEventsMatchModel(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		if err := eventsRun(seed, 600); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

func eventsRun(seed int64, steps int) error {
	rng := rand.New(rand.NewSource(seed))
	s, m := New(), newRef()
	s.RecordEvents()
	g := &reqGen{r: rng}
	var live []mvccpb.Event
	keyspace := map[string]string{}
	for step := 0; step < steps; step++ {
		g.rev, g.compact = s.Rev(), s.CompactRev()
		switch x := rng.Intn(100); {
		case x < 35:
			req := g.putReq()
			_, err1 := s.Put(req)
			_, err2 := m.Put(req)
			if (err1 == nil) != (err2 == nil) {
				return fmt.Errorf("step %d put: %v vs model %v", step, err1, err2)
			}
		case x < 50:
			req := g.delReq()
			s.DeleteRange(req)
			m.DeleteRange(req)
		case x < 95:
			req := g.txnReq(0)
			if CheckTxnDuplicates(req) != nil {
				continue // the server refuses it before it reaches the store
			}
			_, err1 := s.Txn(req)
			_, err2 := m.Txn(req)
			if (err1 == nil) != (err2 == nil) {
				return fmt.Errorf("step %d txn: %v vs model %v", step, err1, err2)
			}
		default:
			r := g.compact + 1 + rng.Int63n((g.rev-g.compact)/2+1)
			if r <= g.rev {
				if err := s.Compact(r); err != nil {
					return fmt.Errorf("step %d compact %d: %v", step, r, err)
				}
				_ = m.Compact(r)
			}
		}
		evs := s.TakeEvents()
		if s.Rev() != m.rev() {
			return fmt.Errorf("step %d: rev %d, model %d", step, s.Rev(), m.rev())
		}
		// One write is one revision: its events, sorted by key, are the
		// model's changes.
		if len(evs) > 0 {
			if evs[0].Kv.ModRevision != s.Rev() {
				return fmt.Errorf("step %d: events at m%d, store at %d", step, evs[0].Kv.ModRevision, s.Rev())
			}
			for _, e := range evs {
				if e.Kv.ModRevision != s.Rev() {
					return fmt.Errorf("step %d: events of one write at several revisions:\n%s", step, eventsString(evs))
				}
			}
			if err := replay(keyspace, evs); err != nil {
				return fmt.Errorf("step %d: %v in\n%s", step, err, eventsString(evs))
			}
			if want := modelKeyspace(m, s.Rev()); !maps.Equal(keyspace, want) {
				return fmt.Errorf("step %d: events\n%s\ngive %v, model has %v", step, eventsString(evs), keyspace, want)
			}
		}
		if (len(evs) > 0) != (s.Rev() != g.rev) {
			return fmt.Errorf("step %d: revision %d -> %d with %d events", step, g.rev, s.Rev(), len(evs))
		}
		live = append(live, evs...)

		// History of a random range from a random revision above the
		// compaction.
		k := g.key()
		end := watchEnd(g, k)
		from := s.CompactRev() + 1 + rng.Int63n(s.Rev()-s.CompactRev()+1)
		maxRevs := rng.Intn(4)
		got, more := s.View().Events(k, end, from, s.Rev(), maxRevs)
		var want []mvccpb.Event
		revs := 0
		var wantMore int64
		for _, e := range live {
			if e.Kv.ModRevision < from || !InWatchRange(e.Kv.Key, k, end) {
				continue
			}
			if len(want) == 0 || want[len(want)-1].Kv.ModRevision != e.Kv.ModRevision {
				revs++
				if maxRevs > 0 && revs > maxRevs {
					wantMore = e.Kv.ModRevision
					break
				}
			}
			want = append(want, e)
		}
		if eventsString(got) != eventsString(want) || more != wantMore {
			return fmt.Errorf("step %d: Events(%q, %q, %d, max %d) =\n%s\nmore %d, want\n%s\nmore %d",
				step, k, end, from, maxRevs, eventsString(got), more, eventsString(want), wantMore)
		}
	}
	return nil
}

// watchEnd picks a watch range end in etcd's watch encoding.
func watchEnd(g *reqGen, k []byte) []byte {
	switch g.r.Intn(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		return append(bytes.Clone(k), 0)
	}
	e := g.key()
	if bytes.Compare(e, k) <= 0 {
		return nil
	}
	return e
}

// TestEventsNotRecordedByDefault: a store that was not asked records
// nothing, and a failed txn records nothing.
func TestEventsNotRecordedByDefault(t *testing.T) {
	s := New()
	mustPut(t, s, "a", "1")
	if evs := s.TakeEvents(); evs != nil {
		t.Fatalf("events without RecordEvents: %v", evs)
	}
	s.RecordEvents()
	_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), IgnoreValue: true}}},
	}})
	if err == nil {
		t.Fatal("txn that deletes then puts with ignore_value succeeded")
	}
	if evs := s.TakeEvents(); evs != nil {
		t.Fatalf("failed txn recorded events: %v", eventsString(evs))
	}
	mustDel(t, s, "a", "")
	if got, want := eventsString(s.TakeEvents()), `DELETE "a" m3`; got != want {
		t.Fatalf("delete events %q, want %q", got, want)
	}
}
