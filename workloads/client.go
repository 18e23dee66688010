// Package workloads drives an etcd-compatible cluster with Jepsen-style
// concurrent workloads and records every operation in a history.Recorder
// for package checker: the register workload (read, write and
// compare-and-set on a few keys) and the set workload (adds of unique
// elements, read back at the end) and the append workload (list-append
// transactions of reads and appends, checked by package checker/elle) and
// the watch workload (puts, deletes and write txns on a few keys while
// watchers on every member record every watch response, then a final
// watch from revision 1 reads the keyspace's history back, checked by
// package checker/watch) and the lock workload (clients take etcd's
// concurrency.Mutex and increment a register under it, checked by
// package checker/lock) and the lease workload (keys on short leases kept
// alive, abandoned or revoked while every member reads them, checked by
// package checker/lease). Run starts Config.Concurrency logical
// clients, each bound to one member and with one operation in flight;
// FinalReads then reads every key on every member once faults are healed.
//
// The seam to the server is the Client interface: one operation per call.
// EtcdDialer connects a Client to one member with go.etcd.io/etcd/client/v3;
// MemStore is an in-memory twin (linearizable, or with chosen bugs) for
// tests. Classify decides how an error is recorded: fail (definitely no
// effect) or info (unknown outcome).
package workloads

import (
	"context"
	"crypto/tls"
	"errors"

	"github.com/quorum-kv/quorum/history"
)

// Client performs one operation per call against the member it is bound
// to. A Client is used by one goroutine at a time (one logical client);
// it needn't be safe for concurrent use.
//
// Errors are classified by Classify: an operation that may have taken
// effect must not return an error Classify calls definite.
type Client interface {
	// Read returns the value of key (nil: absent) and its mod revision
	// (0 when absent). serializable: served from the member's local state
	// without a quorum round (may be stale); otherwise linearizable.
	Read(ctx context.Context, key string, serializable bool) (value *string, modRev int64, err error)
	// Write puts value at key and returns the revision of the write (the
	// response header revision).
	Write(ctx context.Context, key, value string) (rev int64, err error)
	// CAS sets key to value if its current value equals *expected (nil
	// expected: if key is absent). swapped is false when the server
	// evaluated the compare and it did not hold; rev is then the store's
	// revision at evaluation, and the key was not changed.
	CAS(ctx context.Context, key string, expected *string, value string) (swapped bool, rev int64, err error)
	// Add puts the element into set, as the key set+"/"+element.
	Add(ctx context.Context, set, element string) error
	// ReadSet returns the elements of set: the suffixes of every key under
	// set+"/", in key order. serializable as for Read.
	ReadSet(ctx context.Context, set string, serializable bool) ([]string, error)
	// Txn performs the list-append transaction ops (reads with nil lists)
	// atomically and returns them with every read's list filled in (a new
	// slice, the caller's). committed is false when the server evaluated
	// the transaction's guard and it did not hold (a key it appends to
	// changed since it was read): then nothing was applied. serializable
	// applies to a transaction that only reads, as for Read.
	Txn(ctx context.Context, ops []history.MicroOp, serializable bool) (done []history.MicroOp, committed bool, err error)
	// Close releases the connection. The Client must not be used after.
	Close() error
}

// Target is one member a Client can be bound to.
type Target struct {
	// Name is the member name recorded as Event.Node (e.g. "n1").
	Name string
	// Endpoint is the member's client URL (e.g. http://127.0.0.1:2379).
	Endpoint string
	// TLS is the client TLS configuration for an https Endpoint
	// (cluster.ClientTLS), nil for plaintext; dialers must not modify it.
	TLS *tls.Config
}

// Dialer returns a new Client bound to the member t, with a fresh
// connection. Run calls it once per logical process: again after every
// operation whose outcome is unknown.
type Dialer func(t Target) (Client, error)

// ErrNotSent is wrapped by a Client's error when it did not send the
// request at all (e.g. its connection to the member is known to be down):
// the operation definitely had no effect.
var ErrNotSent = errors.New("request not sent")
