package server

import (
	"io"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/snap"
	"github.com/quorum-kv/quorum/server/wal"
)

// LogStorage is a member's durable Raft log: entries, hard state and the
// markers of snapshots received from the leader. The Raft loop is its only
// caller. The real one is the WAL (*wal.WAL, server/wal); the in-memory
// twin is memLog (storage_mem_test.go).
type LogStorage interface {
	// Save appends ents and then hs (unless empty); with sync set, both
	// are durable when it returns. Entries that overlap earlier ones
	// replace them and everything after.
	Save(hs raftpb.HardState, ents []raftpb.Entry, sync bool) error
	// SaveSnapshotRestore durably records that the log was replaced by the
	// snapshot at (index, term): entries before it are obsolete.
	SaveSnapshotRestore(index, term uint64) error
	// ReleaseTo lets the log discard what only entries before index need.
	ReleaseTo(index uint64) error
	Close() error
}

var _ LogStorage = (*wal.WAL)(nil)

// SnapshotStorage keeps a member's snapshots. Save is called by the Raft
// loop, Create and Purge by the snapshotter, Load by the transport's
// goroutines; an implementation must allow them to run at once. The real
// one is a directory of snapshot files (snapDir, server/snap); the
// in-memory twin is memSnapshots (storage_mem_test.go).
type SnapshotStorage interface {
	// Save durably stores sn, a snapshot received from the leader.
	Save(sn raftpb.Snapshot) error
	// Create durably stores a snapshot at md whose data write streams into
	// it (no copy of the data is held), and returns the data's size.
	Create(md raftpb.SnapshotMetadata, write func(io.Writer) error) (int64, error)
	// Load returns the data of the snapshot at md, for a follower that
	// needs it; an error if a newer snapshot has replaced it meanwhile.
	Load(md raftpb.SnapshotMetadata) ([]byte, error)
	// Purge removes all but the newest snapshotsKept snapshots.
	Purge() error
}

// snapshotsKept is how many snapshots Purge leaves.
const snapshotsKept = 3

// snapDir is SnapshotStorage on disk: snapshot files in a directory.
type snapDir string

var _ SnapshotStorage = snapDir("")

func (d snapDir) Save(sn raftpb.Snapshot) error { return snap.Save(string(d), sn) }

func (d snapDir) Create(md raftpb.SnapshotMetadata, write func(io.Writer) error) (int64, error) {
	return snap.Create(string(d), md, write)
}

// Load reads the file of the snapshot at md back. The file may be gone if
// a newer snapshot replaced it meanwhile; Raft then retries with the newer
// one.
func (d snapDir) Load(md raftpb.SnapshotMetadata) ([]byte, error) {
	sn, err := snap.Load(filepath.Join(string(d), snap.Name(md.Term, md.Index)))
	if err != nil {
		return nil, err
	}
	return sn.Data, nil
}

func (d snapDir) Purge() error { return snap.Purge(string(d), snapshotsKept) }
