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
// (length-prefixed, guarded by a CRC32-C), since version 2 the leases as
// JSON (the same framing), since version 3 the auth state as JSON (the
// same framing: enabled, auth revision, users with their password hashes,
// roles with their permissions), then the MVCC store's own checksummed
// serialization. Version 4 has the layout of version 3; its membership
// carries the learners and the removed member IDs (runtime
// reconfiguration). The snap file around it carries the Raft metadata and
// a checksum of its own. Version 5 adds, after the auth section, the
// active alarms as JSON (the same framing; alarmRecord, in the order
// alarmSet.records gives them), so a NOSPACE or CORRUPT alarm survives a
// restart and reaches a follower that catches up by snapshot. Older
// snapshots still load: version 4 with no alarms, version 3 also with no
// learners or removed members, version 2 also with auth disabled and no
// users or roles, version 1 also with no leases.
var (
	snapMagic   = []byte("QUORUMSNAP5\n")
	snapMagicV4 = []byte("QUORUMSNAP4\n")
	snapMagicV3 = []byte("QUORUMSNAP3\n")
	snapMagicV2 = []byte("QUORUMSNAP2\n")
	snapMagicV1 = []byte("QUORUMSNAP1\n")
)

// snapshotContents is what a snapshot restores besides the Raft metadata.
type snapshotContents struct {
	store      *mvcc.Store
	membership *Membership
	leases     []leaseRecord
	auth       *authRecord // nil in a snapshot older than version 3
	alarms     []alarmRecord
}

// snapshotSections are what a snapshot holds besides the keyspace.
type snapshotSections struct {
	membership *Membership
	leases     []leaseRecord
	auth       *authRecord // nil: auth disabled, no users or roles
	alarms     []alarmRecord
}

// encodeSnapshot writes the keyspace view and the sections to w,
// streaming: no copy of the keyspace is built.
func encodeSnapshot(w io.Writer, view *mvcc.View, sec snapshotSections) error {
	if _, err := w.Write(snapMagic); err != nil {
		return err
	}
	if err := writeJSONSection(w, sec.membership); err != nil {
		return err
	}
	leases := sec.leases
	if leases == nil {
		leases = []leaseRecord{}
	}
	if err := writeJSONSection(w, leases); err != nil {
		return err
	}
	ar := sec.auth
	if ar == nil {
		ar = &authRecord{}
	}
	if err := writeJSONSection(w, ar); err != nil {
		return err
	}
	alarms := sec.alarms
	if alarms == nil {
		alarms = []alarmRecord{}
	}
	if err := writeJSONSection(w, alarms); err != nil {
		return err
	}
	_, err := view.WriteTo(w)
	return err
}

func writeJSONSection(w io.Writer, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(j)))
	binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(j, crc32.MakeTable(crc32.Castagnoli)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err = w.Write(j)
	return err
}

// readJSONSection decodes the section at the start of data into v and
// returns what follows it.
func readJSONSection(data []byte, name string, v any) ([]byte, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("snapshot %s section is truncated", name)
	}
	n := binary.BigEndian.Uint32(data[:4])
	sum := binary.BigEndian.Uint32(data[4:8])
	data = data[8:]
	if uint64(n) > uint64(len(data)) {
		return nil, fmt.Errorf("snapshot %s section is truncated", name)
	}
	j := data[:n]
	if crc32.Checksum(j, crc32.MakeTable(crc32.Castagnoli)) != sum {
		return nil, fmt.Errorf("snapshot %s section checksum mismatch", name)
	}
	if err := json.Unmarshal(j, v); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return data[n:], nil
}

// decodeSnapshot restores what encodeSnapshot wrote (or a version 1 to 4
// snapshot); damage anywhere is an error.
func decodeSnapshot(data []byte) (snapshotContents, error) {
	var c snapshotContents
	v5 := bytes.HasPrefix(data, snapMagic)
	v3 := v5 || bytes.HasPrefix(data, snapMagicV4) || bytes.HasPrefix(data, snapMagicV3)
	v2 := v3 || bytes.HasPrefix(data, snapMagicV2)
	if !v2 && !bytes.HasPrefix(data, snapMagicV1) {
		return c, errors.New("snapshot data is not a quorumd snapshot")
	}
	rest := data[len(snapMagic):]
	var mem Membership
	rest, err := readJSONSection(rest, "membership", &mem)
	if err != nil {
		return c, err
	}
	if v2 {
		if rest, err = readJSONSection(rest, "lease", &c.leases); err != nil {
			return c, err
		}
	}
	if v3 {
		c.auth = &authRecord{}
		if rest, err = readJSONSection(rest, "auth", c.auth); err != nil {
			return c, err
		}
	}
	if v5 {
		if rest, err = readJSONSection(rest, "alarm", &c.alarms); err != nil {
			return c, err
		}
	}
	store, err := mvcc.Restore(bytes.NewReader(rest))
	if err != nil {
		return c, fmt.Errorf("snapshot keyspace: %w", err)
	}
	c.store, c.membership = store, &mem
	return c, nil
}

// snapshotOverhead is the size of a snapshot's envelope around the
// keyspace of st (the lease, auth and alarm sections counted as empty).
func (st *readState) snapshotOverhead() int64 {
	mj, _ := json.Marshal(st.membership)
	aj, _ := json.Marshal(&authRecord{})
	return int64(len(snapMagic) + 8 + len(mj) + 8 + 2 + 8 + len(aj) + 8 + 2)
}
