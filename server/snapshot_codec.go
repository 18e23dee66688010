package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// The snapshot codec: what a snapshot's data (raftpb.Snapshot.Data, the
// body of a snap file) holds. Magic, the membership as JSON
// (length-prefixed, guarded by a CRC32-C), then the MVCC store's own
// checksummed serialization. The snap file around it carries the Raft
// metadata and a checksum of its own.
var snapMagic = []byte("QUORUMSNAP1\n")

// encodeSnapshot writes the keyspace view and the membership to w, streaming:
// no copy of the keyspace is built.
func encodeSnapshot(w io.Writer, view *mvcc.View, mem *Membership) error {
	mj, err := json.Marshal(mem)
	if err != nil {
		return err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(mj)))
	binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(mj, crc32.MakeTable(crc32.Castagnoli)))
	for _, b := range [][]byte{snapMagic, hdr[:], mj} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err = view.WriteTo(w)
	return err
}

// decodeSnapshot restores the store and the membership encodeSnapshot wrote;
// damage anywhere is an error.
func decodeSnapshot(data []byte) (*mvcc.Store, *Membership, error) {
	if !bytes.HasPrefix(data, snapMagic) || len(data) < len(snapMagic)+8 {
		return nil, nil, errors.New("snapshot data is not a quorumd snapshot")
	}
	rest := data[len(snapMagic):]
	n := binary.BigEndian.Uint32(rest[:4])
	sum := binary.BigEndian.Uint32(rest[4:8])
	rest = rest[8:]
	if uint64(n) > uint64(len(rest)) {
		return nil, nil, errors.New("snapshot membership section is truncated")
	}
	mj := rest[:n]
	if crc32.Checksum(mj, crc32.MakeTable(crc32.Castagnoli)) != sum {
		return nil, nil, errors.New("snapshot membership section checksum mismatch")
	}
	var mem Membership
	if err := json.Unmarshal(mj, &mem); err != nil {
		return nil, nil, fmt.Errorf("snapshot membership: %w", err)
	}
	store, err := mvcc.Restore(bytes.NewReader(rest[n:]))
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot keyspace: %w", err)
	}
	return store, &mem, nil
}

// snapshotOverhead is the size of a snapshot's envelope around the
// keyspace of st.
func (st *readState) snapshotOverhead() int64 {
	mj, _ := json.Marshal(st.membership)
	return int64(len(snapMagic) + 8 + len(mj))
}
