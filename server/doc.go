// Package server is quorumd: an etcd v3 API compatible key-value server whose
// members replicate an MVCC keyspace with Raft (go.etcd.io/raft/v3).
//
// A member (Server) is assembled from owned parts, each with one goroutine
// that owns its state: the Raft node (raftnode.go: raft.Node, Raft's
// in-memory storage, the durable log and snapshots, the transport; its
// goroutine is the Raft loop, which persists, sends, hands committed entries
// on and calls Advance in a documented order), the applier (applier.go: the
// only writer of the MVCC store and the membership, and the snapshot
// policy), the read loop (read.go: batched ReadIndex) and the client front
// (front.go: every gRPC service and HTTP endpoint, served on the sockets of
// listeners.go). The parts meet at small interfaces — LogStorage and
// SnapshotStorage (storage.go), Transport (transport.go) — whose in-memory
// twins let the tests run the Ready loop, the applier and whole clusters in
// one process. The MVCC state machine lives in server/mvcc, the Raft log in
// server/wal and snapshot files in server/snap. docs/architecture.md
// describes the parts, the write and read paths and what is fsynced when.
package server
