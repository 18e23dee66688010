// Package server is quorumd: an etcd v3 API compatible key-value server whose
// members replicate an MVCC keyspace with Raft (go.etcd.io/raft/v3).
//
// The package wires the pieces together and owns the goroutines: the Raft
// loop (persist, send, hand committed entries to the applier, Advance), the
// applier (the only writer of the MVCC store), the linearizable read loop
// (batched ReadIndex), the peer transport and the gRPC/HTTP front end.
// The MVCC state machine lives in server/mvcc, the Raft log in server/wal
// and snapshots in server/snap. docs/architecture.md describes the write
// path, the read path and what is fsynced when.
package server
