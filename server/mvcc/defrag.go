package mvcc

import "github.com/google/btree"

// Defragment rebuilds the store's tree from fresh allocations: new tree
// nodes, and for every key a new key, a new revision slice of exactly its
// length and new values. What compaction dropped can then be collected
// even where it still shared memory with what survives: tree nodes that
// deletions left half empty (and the tree's free list), and the backing
// arrays of keys, values and revision slices that a snapshot restore or
// an append had allocated together. The keyspace, its revisions and Size
// do not change. Views taken before keep the old tree, which is freed
// once the last of them is dropped. Must be called by the goroutine that
// owns s; it costs one copy of the keyspace while it runs.
func (s *Store) Defragment() {
	tree := btree.NewG[keyItem](btreeDegree, itemLess)
	s.st.tree.Ascend(func(it keyItem) bool {
		n := keyItem{key: append([]byte(nil), it.key...), revs: make([]rev, len(it.revs))}
		var oldV, newV []byte // the last value copied, before and after
		for i, r := range it.revs {
			switch {
			case r.value == nil:
			case len(r.value) > 0 && len(r.value) == len(oldV) && &r.value[0] == &oldV[0]:
				r.value = newV // a put with ignore_value shares its value
			default:
				oldV = r.value
				r.value = append(make([]byte, 0, len(r.value)), r.value...)
				newV = r.value
			}
			n.revs[i] = r
		}
		tree.ReplaceOrInsert(n)
		return true
	})
	s.st.tree = tree
	s.view = nil
}
