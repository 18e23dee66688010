package etcdbolt

import (
	"hash"
	"hash/crc32"

	"go.etcd.io/etcd/server/v3/storage/schema"
)

// Hash is etcd's Maintenance.Hash of b: CRC-32C over every bucket's name
// and its pairs, in bolt's order, skipping the pairs ignores reports
// (storage/backend.Hash). etcd's server passes schema.DefaultIgnores (the
// meta bucket's consistent index, term and storage version, which differ
// between members at the same state); with nil nothing is skipped, which
// is etcdutl snapshot status's hash of a file.
func Hash(b *Backend, ignores func(bucket, key []byte) bool) (uint32, error) {
	h := &hashSink{h: crc32.New(crc32.MakeTable(crc32.Castagnoli)), ignores: ignores}
	if err := b.Emit(h); err != nil {
		return 0, err
	}
	return h.h.Sum32(), nil
}

// DefaultIgnores is etcd's: what Maintenance.Hash skips.
func DefaultIgnores(bucket, key []byte) bool { return schema.DefaultIgnores(bucket, key) }

type hashSink struct {
	h       hash.Hash32
	ignores func(bucket, key []byte) bool
	bucket  []byte
}

func (s *hashSink) Bucket(name []byte) error {
	s.bucket = append(s.bucket[:0], name...)
	s.h.Write(name)
	return nil
}

func (s *hashSink) Put(k, v []byte) error {
	if s.ignores != nil && s.ignores(s.bucket, k) {
		return nil
	}
	s.h.Write(k)
	s.h.Write(v)
	return nil
}
