package etcdbolt

import (
	"encoding/binary"
	"fmt"
)

// Revision keys of etcd's key bucket (storage/mvcc/revision.go): the main
// revision as 8 bytes big endian, '_', the sub revision as 8 bytes big
// endian, and for a deletion a trailing 't'. Ordered bytewise they are in
// revision order.
const (
	revKeyLen    = 17
	tombKeyLen   = 18
	markTombtone = 't'
)

// RevisionKey appends the key-bucket key of revision (main, sub), a
// deletion if tomb, to dst and returns it.
func RevisionKey(dst []byte, main, sub int64, tomb bool) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(main))
	dst = append(dst, '_')
	dst = binary.BigEndian.AppendUint64(dst, uint64(sub))
	if tomb {
		dst = append(dst, markTombtone)
	}
	return dst
}

// ParseRevisionKey is RevisionKey's inverse; a key of another shape is an
// error (where etcd panics).
func ParseRevisionKey(k []byte) (main, sub int64, tomb bool, err error) {
	if (len(k) != revKeyLen && len(k) != tombKeyLen) || k[8] != '_' || (len(k) == tombKeyLen && k[17] != markTombtone) {
		return 0, 0, false, fmt.Errorf("etcdbolt: %x is not a revision key (8-byte main revision, '_', 8-byte sub revision, optional 't')", k)
	}
	main = int64(binary.BigEndian.Uint64(k[:8]))
	sub = int64(binary.BigEndian.Uint64(k[9:17]))
	return main, sub, len(k) == tombKeyLen, nil
}
