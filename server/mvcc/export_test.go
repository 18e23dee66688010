package mvcc

import (
	"bytes"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// rebuild feeds v's revisions to a Builder, compacted where v is.
func rebuild(t *testing.T, v *View) *Store {
	t.Helper()
	b := NewBuilder()
	var prev KeyRevision
	n := 0
	err := v.Revisions(func(r *KeyRevision) error {
		if n > 0 && (r.Main < prev.Main || (r.Main == prev.Main && r.Sub <= prev.Sub)) {
			t.Fatalf("Revisions: %d_%d after %d_%d", r.Main, r.Sub, prev.Main, prev.Sub)
		}
		if r.Tombstone && (r.KV.Value != nil || r.KV.ModRevision != 0) {
			t.Fatalf("tombstone %d_%d carries more than its key: %+v", r.Main, r.Sub, r.KV)
		}
		prev = KeyRevision{Main: r.Main, Sub: r.Sub}
		n++
		return b.Add(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := v.LastCompaction()
	s, err := b.Finish(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRevisionsRebuildTheStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Store
	}{
		{"empty", New()},
		{"compacted at 0", func() *Store { s := New(); s.Compact(0); return s }()},
		{"random", randomStore(t, 1, 2000)},
		{"random 2", randomStore(t, 7, 3000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rebuild(t, tc.s.View())
			sameState(t, tc.s.View(), r.View())
			if !bytes.Equal(snapshot(t, tc.s.View()), snapshot(t, r.View())) {
				t.Fatal("the rebuilt store's snapshot differs from the original's")
			}
		})
	}
}

// A backend as etcd 3.6 leaves it after compacting: older revisions still
// there (a compaction not finished) and the tombstone at the compaction
// revision kept. Finish compacts as the store would have.
func TestBuilderCompactsAsTheStore(t *testing.T) {
	orig := New()
	mustPut(t, orig, "a", "1") // 2
	mustPut(t, orig, "a", "2") // 3
	mustPut(t, orig, "b", "1") // 4
	mustDel(t, orig, "b", "")  // 5
	mustPut(t, orig, "c", "1") // 6
	b := NewBuilder()
	if err := orig.View().Revisions(b.Add); err != nil {
		t.Fatal(err)
	}
	got, err := b.Finish(5)
	if err != nil {
		t.Fatal(err)
	}
	if err := orig.Compact(5); err != nil {
		t.Fatal(err)
	}
	sameState(t, orig.View(), got.View())
}

func TestBuilderRefusesBadHistory(t *testing.T) {
	kv := func(k string, create, mod, ver int64) mvccpb.KeyValue {
		return mvccpb.KeyValue{Key: []byte(k), CreateRevision: create, ModRevision: mod, Version: ver, Value: []byte("v")}
	}
	for _, tc := range []struct {
		name string
		revs []KeyRevision
	}{
		{"out of order", []KeyRevision{{Main: 3, KV: kv("a", 3, 3, 1)}, {Main: 2, KV: kv("b", 2, 2, 1)}}},
		{"same revision twice", []KeyRevision{{Main: 2, KV: kv("a", 2, 2, 1)}, {Main: 2, KV: kv("b", 2, 2, 1)}}},
		{"mod revision differs", []KeyRevision{{Main: 2, KV: kv("a", 2, 3, 1)}}},
		{"version gap", []KeyRevision{{Main: 2, KV: kv("a", 2, 2, 1)}, {Main: 3, KV: kv("a", 2, 3, 3)}}},
		{"starts with a deletion", []KeyRevision{{Main: 2, Tombstone: true, KV: mvccpb.KeyValue{Key: []byte("a")}}}},
		{"empty key", []KeyRevision{{Main: 2, KV: kv("", 2, 2, 1)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder()
			var err error
			for i := range tc.revs {
				if err = b.Add(&tc.revs[i]); err != nil {
					break
				}
			}
			if err == nil {
				_, err = b.Finish(-1)
			}
			if !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("got %v, want an error wrapping ErrCorruptSnapshot", err)
			}
		})
	}
}
