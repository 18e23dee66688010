package mvcc

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// KeyRevision is one stored revision of one key, as etcd's backend keeps
// it in its key bucket: the revision (Main, Sub), whether it is a deletion,
// and the KeyValue etcd stores for it. For a deletion (a tombstone) KV has
// only Key set, as etcd writes it.
type KeyRevision struct {
	Main, Sub int64
	Tombstone bool
	KV        mvccpb.KeyValue
}

// LastCompaction returns the last compaction revision of the snapshot and
// true, or (-1, false) if the store was never compacted (etcd's
// compactMainRev, which HashKV reports as is).
func (v *View) LastCompaction() (int64, bool) { return v.st.compactRev, v.st.compactRev >= 0 }

// Revisions calls fn with every revision the view holds, in revision order
// (Main, then Sub) — the order of etcd's key bucket — until fn returns an
// error, which Revisions then returns. The *KeyRevision passed to fn is
// reused between calls; its KV's Key and Value share the store's memory and
// must not be modified.
//
// It costs one pass over the tree and a sort of one small record per
// revision.
func (v *View) Revisions(fn func(r *KeyRevision) error) error {
	type ref struct {
		main int64
		sub  int32
		item int32
		ri   int32
	}
	items := make([]keyItem, 0, v.st.tree.Len())
	var refs []ref
	v.st.tree.Ascend(func(it keyItem) bool {
		i := int32(len(items))
		items = append(items, it)
		for j := range it.revs {
			refs = append(refs, ref{main: it.revs[j].main, sub: it.revs[j].sub, item: i, ri: int32(j)})
		}
		return true
	})
	slices.SortFunc(refs, func(a, b ref) int {
		if a.main != b.main {
			return cmp.Compare(a.main, b.main)
		}
		return int(a.sub) - int(b.sub)
	})
	var kr KeyRevision
	for _, rf := range refs {
		it := &items[rf.item]
		r := &it.revs[rf.ri]
		kr = KeyRevision{Main: r.main, Sub: int64(r.sub), Tombstone: r.tomb}
		if r.tomb {
			kr.KV = mvccpb.KeyValue{Key: it.key}
		} else {
			kr.KV = makeKV(it, r)
		}
		if err := fn(&kr); err != nil {
			return err
		}
	}
	return nil
}

// Builder rebuilds a Store from the revisions of an etcd key bucket (or of
// View.Revisions), given in revision order. It is not safe for concurrent
// use. Its errors wrap ErrCorruptSnapshot.
type Builder struct {
	keys      map[string]*keyItem
	last      KeyRevision
	n         int
	lastMain  int64
	finished  bool
	positions []string // keys in first-seen order, for deterministic errors
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{keys: make(map[string]*keyItem)} }

// Add adds the next revision. The revision must come after the previous
// one ((Main, Sub) strictly increasing); a put must carry a KeyValue
// consistent with it (ModRevision == Main, 1 <= CreateRevision <= Main,
// Version >= 1). r and its slices may be reused by the caller after Add
// returns: Add copies what it keeps.
func (b *Builder) Add(r *KeyRevision) error {
	if b.finished {
		return fmt.Errorf("mvcc: Builder.Add after Finish")
	}
	if r.Main < 1 || r.Sub < 0 || r.Sub > 1<<31-1 {
		return corrupt("revision %d_%d is out of range", r.Main, r.Sub)
	}
	if b.n > 0 && (r.Main < b.last.Main || (r.Main == b.last.Main && r.Sub <= b.last.Sub)) {
		return corrupt("revision %d_%d comes after %d_%d: revisions out of order", r.Main, r.Sub, b.last.Main, b.last.Sub)
	}
	if len(r.KV.Key) == 0 {
		return corrupt("revision %d_%d has an empty key", r.Main, r.Sub)
	}
	nr := rev{main: r.Main, sub: int32(r.Sub), tomb: r.Tombstone}
	if !r.Tombstone {
		kv := &r.KV
		if kv.ModRevision != r.Main || kv.CreateRevision < 1 || kv.CreateRevision > r.Main || kv.Version < 1 {
			return corrupt("revision %d_%d of key %q: inconsistent key value (create %d, mod %d, version %d)",
				r.Main, r.Sub, kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version)
		}
		nr.create, nr.version, nr.lease = kv.CreateRevision, kv.Version, kv.Lease
		nr.value = bytes.Clone(kv.Value)
		if nr.value == nil {
			nr.value = []byte{}
		}
	}
	it, ok := b.keys[string(r.KV.Key)]
	if !ok {
		it = &keyItem{key: bytes.Clone(r.KV.Key)}
		b.keys[string(it.key)] = it
		b.positions = append(b.positions, string(it.key))
	}
	it.revs = append(it.revs, nr)
	b.last = KeyRevision{Main: r.Main, Sub: r.Sub}
	b.n++
	return nil
}

// Finish returns the Store the revisions make, compacted at compactRev (-1:
// never compacted), as etcd's store restores itself from its backend: the
// current revision is the larger of the last revision added and compactRev
// (at least 1); for every key only the newest revision at or below
// compactRev survives, and not if it is a deletion. Finish may be called
// once.
func (b *Builder) Finish(compactRev int64) (*Store, error) {
	if b.finished {
		return nil, fmt.Errorf("mvcc: Builder.Finish called twice")
	}
	b.finished = true
	if compactRev < -1 {
		return nil, corrupt("compaction revision %d is out of range", compactRev)
	}
	s := New()
	s.st.rev = max(b.last.Main, compactRev, 1)
	s.st.compactRev = compactRev
	items := make([]keyItem, 0, len(b.keys))
	for _, k := range b.positions {
		it := b.keys[k]
		if compactRev >= 0 {
			i := len(it.revs) - 1
			for i >= 0 && it.revs[i].main > compactRev {
				i--
			}
			// i: the newest revision <= compactRev, or -1; a deletion
			// there goes with everything before it.
			if i >= 0 && it.revs[i].tomb {
				i++
			}
			if i > 0 {
				it.revs = slices.Clone(it.revs[i:])
			}
			if len(it.revs) == 0 {
				continue
			}
		}
		if err := checkGenerations(it, compactRev); err != nil {
			return nil, err
		}
		for j := range it.revs {
			s.st.size += revSize(len(it.key), len(it.revs[j].value))
		}
		items = append(items, *it)
	}
	slices.SortFunc(items, func(a, c keyItem) int { return bytes.Compare(a.key, c.key) })
	// Sorted input: a bulk load into a fresh tree.
	t := btree.NewG[keyItem](btreeDegree, itemLess)
	for _, it := range items {
		t.ReplaceOrInsert(it)
	}
	s.st.tree = t
	b.keys, b.positions = nil, nil
	return s, nil
}

// checkGenerations checks that the revisions of it (compacted at
// compactRev) make generations as etcd writes them: a generation starts
// with a creation (version 1, create revision = its own revision) unless
// it is the one compaction left (its first revision at or below
// compactRev), its versions count up by one with the same create
// revision, and a deletion ends it; nothing else begins with a deletion.
func checkGenerations(it *keyItem, compactRev int64) error {
	for j := range it.revs {
		r := &it.revs[j]
		start := j == 0 || it.revs[j-1].tomb
		var ok bool
		switch {
		case r.tomb:
			ok = !start
		case start && j == 0 && r.main <= compactRev:
			ok = true
		case start:
			ok = r.version == 1 && r.create == r.main
		default:
			p := &it.revs[j-1]
			ok = r.create == p.create && r.version == p.version+1
		}
		if !ok {
			return corrupt("key %q: revision %d_%d (create %d, version %d, deletion %v) does not continue the key's history",
				it.key, r.main, r.sub, r.create, r.version, r.tomb)
		}
	}
	return nil
}
