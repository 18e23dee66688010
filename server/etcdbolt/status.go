package etcdbolt

import (
	"bytes"
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/server/v3/storage/schema"
)

// Status is what etcdutl snapshot status reports about a backend file.
type Status struct {
	// Hash is CRC-32C over every bucket's name and pairs as the file holds
	// them, nothing skipped.
	Hash uint32
	// Revision is the main revision of the key bucket's last key.
	Revision int64
	// TotalKey is the number of keys alive at Revision.
	TotalKey int
	// TotalSize is the size of the bbolt pages in use.
	TotalSize int64
	// Version is meta's storageVersion ("" if absent or not a version).
	Version string
}

// Status computes etcdutl snapshot status's figures from the file's raw
// buckets (etcdutl/snapshot v3Manager.Status).
func (f *File) Status() (Status, error) {
	var st Status
	h := &hashSink{h: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	seen := map[string]struct{}{}
	err := f.view(func(tx *bolt.Tx) error {
		st.TotalSize = tx.Size()
		if v := schema.ReadStorageVersionFromSnapshot(tx); v != nil {
			st.Version = v.String()
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Bucket(name)
			isKey := bytes.Equal(name, schema.Key.Name())
			return b.ForEach(func(k, v []byte) error {
				h.Put(k, v)
				if !isKey {
					return nil
				}
				main, _, tomb, err := ParseRevisionKey(k)
				if err != nil {
					return fmt.Errorf("key bucket: %w", err)
				}
				st.Revision = main
				var kv mvccpb.KeyValue
				if err := kv.Unmarshal(v); err != nil {
					return fmt.Errorf("key bucket revision %x: %w", k, err)
				}
				if tomb {
					delete(seen, string(kv.Key))
				} else {
					seen[string(kv.Key)] = struct{}{}
				}
				return nil
			})
		})
	})
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", f.path, err)
	}
	st.TotalKey = len(seen)
	st.Hash = h.h.Sum32()
	return st, nil
}
