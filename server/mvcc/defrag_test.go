package mvcc

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// revisionsOf lists v's revisions with their KeyValues copied.
func revisionsOf(t *testing.T, v *View) []KeyRevision {
	t.Helper()
	var out []KeyRevision
	if err := v.Revisions(func(r *KeyRevision) error {
		c := *r
		c.KV.Key = append([]byte(nil), r.KV.Key...)
		if r.KV.Value != nil {
			c.KV.Value = append([]byte(nil), r.KV.Value...)
		}
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Defragment changes nothing a reader can see (revisions, their
// KeyValues, the revision, the compaction, Size), keeps an older View
// intact, and leaves no key or value shared with the old tree, so what
// the old tree alone held can be collected.
func TestDefragmentKeepsTheKeyspaceInFreshMemory(t *testing.T) {
	s := New()
	for i := 0; i < 50; i++ {
		for j := 0; j < 4; j++ {
			mustPut(t, s, fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d-%d", i, j))
		}
	}
	// A put with ignore_value shares its value with the revision before.
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k00"), IgnoreValue: true, Lease: 0}); err != nil {
		t.Fatal(err)
	}
	mustDel(t, s, "k10", "k20")
	if err := s.Compact(s.Rev() - 20); err != nil {
		t.Fatal(err)
	}
	old := s.View()
	wantRevs, wantSize, wantRev, wantCompact := revisionsOf(t, old), s.Size(), s.Rev(), s.CompactRev()
	shared := map[*byte]bool{}
	old.st.tree.Ascend(func(it keyItem) bool {
		shared[&it.key[0]] = true
		for _, r := range it.revs {
			if len(r.value) > 0 {
				shared[&r.value[0]] = true
			}
		}
		return true
	})

	s.Defragment()

	v := s.View()
	if v == old {
		t.Fatal("Defragment left the cached view of the old tree")
	}
	if got := revisionsOf(t, v); !reflect.DeepEqual(got, wantRevs) {
		t.Fatalf("revisions changed:\n got %v\nwant %v", got, wantRevs)
	}
	if got := revisionsOf(t, old); !reflect.DeepEqual(got, wantRevs) {
		t.Fatal("the view taken before Defragment changed")
	}
	if s.Size() != wantSize || s.Rev() != wantRev || s.CompactRev() != wantCompact {
		t.Fatalf("size %d rev %d compact %d, want %d %d %d", s.Size(), s.Rev(), s.CompactRev(), wantSize, wantRev, wantCompact)
	}
	v.st.tree.Ascend(func(it keyItem) bool {
		if shared[&it.key[0]] {
			t.Errorf("key %q shares memory with the old tree", it.key)
		}
		for i, r := range it.revs {
			if len(r.value) > 0 && shared[&r.value[0]] {
				t.Errorf("value of %q at %d shares memory with the old tree", it.key, r.main)
			}
			if i > 0 && len(r.value) > 0 && len(it.revs[i-1].value) == len(r.value) && it.key[1] == '0' && it.key[2] == '0' &&
				r.main == wantRev && &it.revs[i-1].value[0] != &r.value[0] {
				t.Errorf("the ignore_value put of %q no longer shares its value", it.key)
			}
		}
		if cap(it.revs) != len(it.revs) {
			t.Errorf("revisions of %q: cap %d for %d", it.key, cap(it.revs), len(it.revs))
		}
		return true
	})
	// Writes go on over the new tree.
	mustPut(t, s, "k00", "after")
	if r, err := s.Range(&pb.RangeRequest{Key: []byte("k00")}); err != nil || string(r.Kvs[0].Value) != "after" {
		t.Fatalf("range after a put: %v %v", r, err)
	}
}

// What Defragment gives back, measured: a keyspace restored from a
// snapshot, overwritten and compacted, then defragmented. The figures are
// logged (the heap moves with the rest of the process); the assertion is
// only that the heap in use does not grow.
func TestDefragmentReleasesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates tens of megabytes")
	}
	s := New()
	val := make([]byte, 4096)
	for i := 0; i < 4000; i++ {
		mustPut(t, s, fmt.Sprintf("key%05d", i%1000), string(val))
	}
	if err := s.Compact(s.Rev()); err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	s.Defragment()
	after := heap()
	t.Logf("heap in use after compaction %d bytes, after Defragment %d bytes (keyspace Size %d)", before, after, s.Size())
	if after > before+before/10 {
		t.Fatalf("heap grew from %d to %d", before, after)
	}
	runtime.KeepAlive(s)
}
