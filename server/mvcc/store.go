// Package mvcc is quorumd's in-memory multi-version key-value state machine.
// It gives etcd v3.6's keyspace semantics — revisions, per-key create/mod
// revisions and versions, historical reads, compaction, transactions — for the
// Raft applier to mutate and for request handlers to read.
//
// One goroutine (the applier) owns a Store and is the only caller of its
// mutating methods and of View. A View is an immutable O(1) snapshot of the
// store that any number of goroutines may read without locks while the owner
// keeps mutating the Store.
//
// Requests and responses are etcd's own protobuf types. Top-level responses
// carry no Header (the server fills it: its Revision is Rev() of the store or
// view that served the request); responses nested in a TxnResponse carry the
// Header etcd puts there (only Revision set for range, put and delete
// responses; an empty Header for nested txn responses).
//
// Slices inside returned KeyValues (Key, Value) are shared with the store and
// must not be modified by the caller.
package mvcc

import (
	"bytes"
	"errors"

	"github.com/google/btree"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Sentinel errors. The server maps them to etcd's rpctypes errors.
var (
	// ErrCompacted: a read below the compacted revision, or a compaction at or
	// below it (etcd's mvcc.ErrCompacted).
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: a read or a compaction above the current revision (etcd's
	// mvcc.ErrFutureRev).
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrKeyNotFound: a Put with ignore_value or ignore_lease on a key that
	// does not exist (etcd's errors.ErrKeyNotFound).
	ErrKeyNotFound = errors.New("mvcc: key not found")
	// ErrTxnHasWrites: a write transaction given to View.Txn.
	ErrTxnHasWrites = errors.New("mvcc: transaction with writes on a read-only view")
	// ErrDuplicateKey: a transaction puts a key twice, or puts and deletes it,
	// in the same path (etcd's rpctypes.ErrGRPCDuplicateKey).
	ErrDuplicateKey = errors.New("mvcc: duplicate key given in txn request")
	// ErrLeaseNotFound: a put attaches a key to a lease the store's lease
	// check (SetLeaseCheck) refuses (etcd's lease.ErrLeaseNotFound).
	ErrLeaseNotFound = errors.New("lease not found") // etcd's text, as its apply warnings log it
)

// btreeDegree is the degree of the key tree. Items are stored by value, so
// a copy-on-write node copy after a View costs up to 2*degree-1 items.
const btreeDegree = 16

// revOverhead approximates the per-revision bytes etcd's bolt backend spends
// besides key and value (revision key, KeyValue encoding, page overhead).
const revOverhead = 48

// rev is one revision of one key. It is never modified once it is in a slice
// that a tree holds.
type rev struct {
	main    int64
	create  int64 // create revision of the key's generation; 0 for a tombstone
	version int64 // 0 for a tombstone
	lease   int64
	value   []byte
	sub     int32
	tomb    bool
}

// keyItem is a tree item: a key and its revisions, oldest first, ordered by
// (main, sub). A keyItem is an immutable value: an update builds a new item
// and replaces the old one in the tree. Appending to revs is allowed because
// the live tree's item always holds the longest slice over its backing array:
// an append writes past the length of every item a View can see.
type keyItem struct {
	key  []byte
	revs []rev
}

func itemLess(a, b keyItem) bool { return bytes.Compare(a.key, b.key) < 0 }

// at returns the revision of it visible at main revision r, or false if the
// key does not exist at r (never written by then, or deleted).
func (it *keyItem) at(r int64) (*rev, bool) {
	n := len(it.revs)
	if n == 0 {
		return nil, false
	}
	i := n - 1
	if it.revs[i].main > r {
		// Binary search for the last revision with main <= r.
		lo, hi := 0, i // answer in [lo-1, hi-1]
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if it.revs[m].main <= r {
				lo = m + 1
			} else {
				hi = m
			}
		}
		i = lo - 1
		if i < 0 {
			return nil, false
		}
	}
	if it.revs[i].tomb {
		return nil, false
	}
	return &it.revs[i], true
}

// state is the data a Store and its Views share: the key tree and counters.
type state struct {
	tree *btree.BTreeG[keyItem]
	// rev is the current revision: the main revision of the last write.
	rev int64
	// compactRev is the last compaction revision, -1 before any (as etcd's
	// compactMainRev: Compact(0) on a fresh store succeeds once).
	compactRev int64
	// size is the estimate returned by Size.
	size int64
}

// Store is etcd's MVCC keyspace. Its mutating methods (Put, DeleteRange, Txn,
// Compact) and View must be called by one goroutine only; Range, Rev,
// CompactRev and Size by that goroutine too (other goroutines read Views).
type Store struct {
	st state
	// view caches the View of the current state until the next mutation, so
	// that repeated View calls between writes do not clone the tree again.
	view *View
	// leaseOK checks a put's lease; nil accepts every lease.
	leaseOK func(id int64) bool
	// leaseChanges accumulates the keys whose lease changed, until
	// TakeLeaseChanges.
	leaseChanges []LeaseChange
	// recordEvents (RecordEvents) makes writes accumulate their watch
	// events in events, until TakeEvents.
	recordEvents bool
	events       []mvccpb.Event
}

// SetLeaseCheck makes every later put with a lease fail with
// ErrLeaseNotFound (nothing written) unless ok(lease). ok is called on the
// goroutine that owns s, during the write.
func (s *Store) SetLeaseCheck(ok func(id int64) bool) { s.leaseOK = ok }

// TakeLeaseChanges returns the keys whose lease changed in the writes since
// the last call, in order, and forgets them; nil if none. A write that
// failed changed nothing. Keys that have no lease before nor after a write
// are not recorded, so a store without leases never allocates here.
func (s *Store) TakeLeaseChanges() []LeaseChange {
	c := s.leaseChanges
	s.leaseChanges = nil
	return c
}

// New returns an empty store at revision 1, like a fresh etcd.
func New() *Store {
	return &Store{st: state{
		tree:       btree.NewG[keyItem](btreeDegree, itemLess),
		rev:        1,
		compactRev: -1,
	}}
}

// Rev returns the current revision.
func (s *Store) Rev() int64 { return s.st.rev }

// CompactRev returns the last compacted revision, 0 if none.
func (s *Store) CompactRev() int64 { return max(s.st.compactRev, 0) }

// Size returns an estimate in bytes of all stored revisions (keys, values
// and per-revision overhead), for quota and status reporting. Unlike etcd's
// bolt file it shrinks when compaction drops revisions.
func (s *Store) Size() int64 { return s.st.size }

// View returns an immutable snapshot of the current state in O(1). The
// returned View may be read from any goroutine, concurrently with further
// mutations of s. View itself must be called by the goroutine owning s.
func (s *Store) View() *View {
	if s.view == nil {
		v := &View{st: s.st}
		v.st.tree = s.st.tree.Clone()
		s.view = v
	}
	return s.view
}

// Range reads the live state, as View().Range would.
func (s *Store) Range(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	return s.st.rangeReq(req, s.st.rev, false)
}

// View is an immutable snapshot of a Store. All its methods are safe for
// concurrent use.
type View struct {
	st state
}

// Rev returns the revision of the snapshot.
func (v *View) Rev() int64 { return v.st.rev }

// CompactRev returns the compacted revision of the snapshot, 0 if none.
func (v *View) CompactRev() int64 { return max(v.st.compactRev, 0) }

// Size returns the Store's Size at the time of the snapshot.
func (v *View) Size() int64 { return v.st.size }

// Range serves a RangeRequest at the snapshot. Errors: ErrCompacted,
// ErrFutureRev.
func (v *View) Range(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	return v.st.rangeReq(req, v.st.rev, false)
}

// Txn serves a read-only transaction at the snapshot. It returns
// ErrTxnHasWrites, without evaluating anything, if any operation in any
// branch (recursively) is a write: whether a request is read-only does not
// depend on the data. Other errors: ErrCompacted, ErrFutureRev from ranges
// on the path taken.
func (v *View) Txn(req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !IsReadOnlyTxn(req) {
		return nil, ErrTxnHasWrites
	}
	st := v.st // a copy, which the read-only txn leaves as it is
	return st.txn(req, nil, nil)
}
