package server

import (
	"context"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Transport carries a member's Raft messages to its peers and steps the
// peers' messages into the Raft it was built with. The real one is the HTTP
// stream transport (streamTransport, transport_stream.go); the in-memory
// twin routes messages between the members of one process
// (memNetwork, transport_mem_test.go).
type Transport interface {
	// Send queues msgs for their peers. Only the Raft loop calls it, and it
	// must not block: a message that cannot be queued is dropped and
	// reported to Raft (ReportUnreachable, or ReportSnapshot with
	// SnapshotFailure for a MsgSnap); Raft retransmits. A MsgSnap may come
	// without its data (Raft's storage keeps only the metadata); the
	// transport then reads it from its snapshotSource. Send keeps no
	// reference to msgs itself, only to the messages.
	Send(msgs []raftpb.Message)
	// Start starts delivering; Stop stops and waits for the transport's
	// goroutines, after which it steps nothing more.
	Start()
	Stop()
	// AddPeer, RemovePeer and UpdatePeer change the peers as the applier
	// applies conf changes (the applier goroutine calls them, any time
	// after Start). AddPeer of a known peer and RemovePeer of an unknown
	// one do nothing; a removed peer's messages are refused from then on
	// (etcd answers 410 Gone, and the removed member stops).
	AddPeer(id uint64, urls []string)
	RemovePeer(id uint64)
	UpdatePeer(id uint64, urls []string)
	// Removed is closed once a peer answered that this member was
	// removed from the cluster.
	Removed() <-chan struct{}
}

// peerActivity is an optional capability of a Transport: since when the
// stream to peer id has been up (zero: it is down), for
// --strict-reconfig-check (etcd's rafthttp ActiveSince).
type peerActivity interface {
	ActiveSince(id uint64) time.Time
}

// Raft is what a transport delivers to: the part of raft.Node it needs.
type Raft interface {
	Step(ctx context.Context, m raftpb.Message) error
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

var _ Raft = raft.Node(nil)

// snapshotSource returns the data of the snapshot at md, for a MsgSnap
// that came without it; SnapshotStorage.Load is one.
type snapshotSource func(md raftpb.SnapshotMetadata) ([]byte, error)
