package server

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/quorum-kv/quorum/server/mvcc"
	"github.com/quorum-kv/quorum/server/snap"
)

// RewriteNewestSnapshotValue rewrites the newest snapshot file of the
// member at dataDir (stopped) with every revision of key holding value
// instead, consistently: decoded with the snapshot codec, the store
// rebuilt at the same revisions, re-encoded with its sections and saved
// with valid checksums under the same name. It returns the snapshot's
// index and the store's revision. For the corruption-check tests.
func RewriteNewestSnapshotValue(dataDir string, key, value []byte) (index uint64, rev int64, err error) {
	dir := filepath.Join(dataDir, "member", "snap")
	sn, err := snap.LoadNewest(dir)
	if err != nil || sn == nil {
		return 0, 0, fmt.Errorf("load newest snapshot in %s: %v", dir, err)
	}
	c, err := decodeSnapshot(sn.Data)
	if err != nil {
		return 0, 0, err
	}
	v := c.store.View()
	b := mvcc.NewBuilder()
	found := false
	err = v.Revisions(func(r *mvcc.KeyRevision) error {
		if !r.Tombstone && bytes.Equal(r.KV.Key, key) {
			r.KV.Value = value // r is Revisions' scratch record
			found = true
		}
		return b.Add(r)
	})
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("snapshot at %d has no revision of %q", sn.Metadata.Index, key)
	}
	compactRev, _ := v.LastCompaction()
	store, err := b.Finish(compactRev)
	if err != nil {
		return 0, 0, err
	}
	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, store.View(), snapshotSections{membership: c.membership, leases: c.leases, auth: c.auth}); err != nil {
		return 0, 0, err
	}
	sn.Data = buf.Bytes()
	if err := snap.Save(dir, *sn); err != nil {
		return 0, 0, err
	}
	return sn.Metadata.Index, store.Rev(), nil
}
