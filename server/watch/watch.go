// Package watch is quorumd's watchable store: it delivers the keyspace's
// changes to watchers with etcd v3.6's semantics (etcd's
// storage/mvcc/watchable_store.go, watcher.go and watcher_group.go, whose
// names it keeps), over quorumd's in-memory MVCC store.
//
// A Hub holds every watcher of a member in one of two groups:
//
//   - synced: the watcher has been sent every matching event up to the
//     hub's revision. The applier's Notify, after each applied batch, hands
//     the batch's events straight to these watchers' streams, without
//     blocking: a stream whose buffer is full loses nothing, its watcher
//     just moves to unsynced at the first revision it was not sent.
//   - unsynced: the watcher is behind — it started from a past revision, it
//     was too slow, or the member restored a snapshot. The hub's sync loop
//     (Run) catches it up from the store's history (Source.Events, read
//     outside the hub's lock, so a slow catch-up never delays Notify), then
//     closes the last gap from a small ring of recent events under the
//     lock, and moves it to synced.
//
// Memory is bounded: a slow watcher holds no queue of its own (etcd's
// victims hold one batch each; here the batch is dropped and re-read from
// the store), the ring keeps a fixed number of recent events, and a
// stream's channel has etcd's 128 slots. Writes never wait for a watcher.
//
// A watcher whose next revision was compacted gets etcd's response
// (CompactRevision set) and is removed, as in etcd.
package watch

import (
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Errors, with etcd's texts (etcd's mvcc package): the watch server sends
// them to clients as cancel reasons.
var (
	ErrWatcherNotExist    = errors.New("mvcc: watcher does not exist")
	ErrEmptyWatcherRange  = errors.New("mvcc: watcher range is empty")
	ErrWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
)

// WatchID identifies a watcher within its stream.
type WatchID int64

// AutoWatchID asks the stream to choose the watcher's ID (clientv3's
// AutoWatchID); InvalidWatchID is the ID of a response on behalf of every
// watcher of a stream (a progress notification for all of them).
const (
	AutoWatchID    WatchID = 0
	InvalidWatchID WatchID = -1
)

// FilterFunc returns true for an event the watcher does not want.
type FilterFunc func(e mvccpb.Event) bool

// FilterNoPut and FilterNoDelete are etcd's NOPUT and NODELETE filters.
func FilterNoPut(e mvccpb.Event) bool    { return e.Type == mvccpb.PUT }
func FilterNoDelete(e mvccpb.Event) bool { return e.Type == mvccpb.DELETE }

// Response is what a stream's channel carries: a watcher's events (all
// events of each revision in it, in revision order), a progress
// notification (no events), or, with CompactRevision set, the news that
// the watcher's next revision was compacted (the watcher is then gone).
// Revision is the store revision the watcher has observed up to.
type Response struct {
	WatchID         WatchID
	Events          []mvccpb.Event
	Revision        int64
	CompactRevision int64
	// PrevKV: the watcher asked for each event's previous key-value.
	PrevKV bool
}

// Source is the keyspace history watchers catch up from: a consistent
// snapshot of the store (quorumd's *mvcc.View).
type Source interface {
	// Events returns the events of the keys in the watch range whose
	// revisions are in [from, to], in revision order; at most maxRevs
	// revisions, more being the first one left out (0 if none).
	Events(key, end []byte, from, to int64, maxRevs int) (evs []mvccpb.Event, more int64)
	Rev() int64
	CompactRev() int64
}
