package mvcc

import (
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// writer is one write transaction (etcd's storeTxnWrite): every change it
// makes gets main revision begin+1 and the next sub-revision.
type writer struct {
	st      *state
	begin   int64
	changes int32 // number of changes so far = next sub-revision
	// record keeps undo entries so that a Txn failing half-way can be
	// rolled back; Put and DeleteRange fail only before changing anything.
	record  bool
	undo    []undoEntry
	oldSize int64
	// leaseOK, when set, says whether a lease exists; a put with a lease
	// it refuses fails with ErrLeaseNotFound.
	leaseOK func(id int64) bool
	// leases records every change of a key's lease, for the store's
	// LeaseChanges once the write is complete.
	leases []LeaseChange
	// events, when set, is the store's event log: every change is
	// appended to it as a watch event, and a rollback truncates it back to
	// eventsFrom.
	events     *[]mvccpb.Event
	eventsFrom int
}

// LeaseChange is a key whose lease changed in a write: Old is the lease the
// key had (0 for none, or a key that did not exist), New the one it has
// now (0 for none, or a deleted key).
type LeaseChange struct {
	Key      []byte // shared with the store: do not modify
	Old, New int64
}

type undoEntry struct {
	old     keyItem // the item before the change; old.key is always set
	existed bool
}

func newWriter(st *state, record bool, leaseOK func(int64) bool) *writer {
	return &writer{st: st, begin: st.rev, record: record, oldSize: st.size, leaseOK: leaseOK}
}

// curRev is the revision reads in the txn see: the txn's own once it has
// written something.
func (w *writer) curRev() int64 {
	if w.changes > 0 {
		return w.begin + 1
	}
	return w.begin
}

// end publishes the txn's changes, if any, as the new revision.
func (w *writer) end() {
	if w.changes > 0 {
		w.st.rev = w.begin + 1
	}
}

// rollback undoes every change, newest first.
func (w *writer) rollback() {
	t := w.st.tree
	for i := len(w.undo) - 1; i >= 0; i-- {
		u := w.undo[i]
		if u.existed {
			t.ReplaceOrInsert(u.old)
		} else {
			t.Delete(u.old)
		}
	}
	w.undo = nil
	w.leases = nil
	if w.events != nil {
		*w.events = (*w.events)[:w.eventsFrom]
	}
	w.changes = 0
	w.st.size = w.oldSize
}

// store appends r to it (a copy of the tree's item, or a new one) and puts
// the result in the tree.
func (w *writer) store(it keyItem, existed bool, r rev) {
	if w.changes == math.MaxInt32 {
		panic("mvcc: too many changes in one transaction")
	}
	if w.record {
		w.undo = append(w.undo, undoEntry{old: it, existed: existed})
	}
	var old int64
	if existed && !it.revs[len(it.revs)-1].tomb {
		old = it.revs[len(it.revs)-1].lease
	}
	if old != r.lease {
		w.leases = append(w.leases, LeaseChange{Key: it.key, Old: old, New: r.lease})
	}
	r.main = w.begin + 1
	r.sub = w.changes
	w.changes++
	// Appending is safe even if a View shares it.revs' array: see keyItem.
	it.revs = append(it.revs, r)
	w.st.tree.ReplaceOrInsert(it)
	w.st.size += revSize(len(it.key), len(r.value))
	if w.events != nil {
		*w.events = append(*w.events, event(&it, &it.revs[len(it.revs)-1]))
	}
}

func revSize(keyLen, valueLen int) int64 { return int64(revOverhead + keyLen + valueLen) }

// put is etcd's txn.put plus storeTxnWrite.put.
func (w *writer) put(p *pb.PutRequest, nested bool) (*pb.PutResponse, error) {
	it, existed := w.st.tree.Get(keyItem{key: p.Key})
	var prev *rev
	if existed {
		if last := &it.revs[len(it.revs)-1]; !last.tomb {
			prev = last
		}
	}
	if (p.IgnoreValue || p.IgnoreLease) && prev == nil {
		return nil, ErrKeyNotFound
	}
	if p.Lease != 0 && w.leaseOK != nil && !w.leaseOK(p.Lease) {
		return nil, ErrLeaseNotFound
	}
	resp := &pb.PutResponse{}
	if p.PrevKv && prev != nil {
		kv := makeKV(&it, prev)
		resp.PrevKv = &kv
	}
	r := rev{create: w.begin + 1, version: 1, lease: p.Lease}
	if prev != nil {
		r.create = prev.create
		r.version = prev.version + 1
	}
	if p.IgnoreValue {
		r.value = prev.value
	} else if len(p.Value) > 0 {
		r.value = append(make([]byte, 0, len(p.Value)), p.Value...)
	}
	if p.IgnoreLease {
		r.lease = prev.lease
	}
	if !existed {
		it.key = append(make([]byte, 0, len(p.Key)), p.Key...)
	}
	w.store(it, existed, r)
	if nested {
		resp.Header = &pb.ResponseHeader{Revision: w.begin + 1}
	}
	return resp, nil
}

// deleteRange is etcd's txn.deleteRange plus storeTxnWrite.deleteRange.
func (w *writer) deleteRange(dr *pb.DeleteRangeRequest, nested bool) *pb.DeleteRangeResponse {
	cur := w.curRev()
	type victim struct {
		it keyItem
		r  *rev
	}
	var victims []victim
	w.st.visit(mkRange(dr.Key, dr.RangeEnd), func(it keyItem) bool {
		if r, ok := it.at(cur); ok {
			victims = append(victims, victim{it, r})
		}
		return true
	})
	resp := &pb.DeleteRangeResponse{Deleted: int64(len(victims))}
	if dr.PrevKv {
		kvs := make([]mvccpb.KeyValue, len(victims))
		resp.PrevKvs = make([]*mvccpb.KeyValue, len(victims))
		for i := range victims {
			kvs[i] = makeKV(&victims[i].it, victims[i].r)
			resp.PrevKvs[i] = &kvs[i]
		}
	}
	for _, v := range victims {
		w.store(v.it, true, rev{tomb: true})
	}
	if nested {
		resp.Header = &pb.ResponseHeader{Revision: w.curRev()}
	}
	return resp
}

// Put writes a key at a new revision. Errors: ErrKeyNotFound (ignore_value
// or ignore_lease on a missing key), in which case nothing changes. The
// request's slices are copied; the lease is stored as given.
func (s *Store) Put(req *pb.PutRequest) (*pb.PutResponse, error) {
	w := s.newWriter(false)
	resp, err := w.put(req, false)
	if err != nil {
		return nil, err
	}
	w.end()
	s.commit(w)
	s.view = nil
	return resp, nil
}

// newWriter starts a write on the store's live state.
func (s *Store) newWriter(record bool) *writer {
	w := newWriter(&s.st, record, s.leaseOK)
	if s.recordEvents {
		w.events, w.eventsFrom = &s.events, len(s.events)
	}
	return w
}

// commit keeps what a completed write reports besides its events, which
// it appended to the store's log itself: its lease changes.
func (s *Store) commit(w *writer) {
	s.leaseChanges = append(s.leaseChanges, w.leases...)
}

// DeleteRange deletes the keys of the request's range, at a new revision if
// it deletes at least one.
func (s *Store) DeleteRange(req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	w := s.newWriter(false)
	resp := w.deleteRange(req, false)
	if w.changes > 0 {
		s.view = nil
	}
	w.end()
	s.commit(w)
	return resp, nil
}

// Txn runs a transaction, reads and writes, as etcd's apply does: compares
// (of nested txns too) are evaluated on the state before the txn, the ops on
// the path taken are checked (see checkTxn), then run in order, later ops
// seeing earlier ones' writes. All writes share one new revision; a txn that
// changes nothing keeps the revision.
//
// Errors: ErrFutureRev, ErrCompacted, ErrKeyNotFound; the store is then
// unchanged. A txn can fail half-way, which makes etcd v3.6.16 panic: a put
// with ignore_value of a key that a delete with range_end "\x00" removed
// earlier in the txn (etcd's duplicate check lets that through); here the
// txn is rolled back. Duplicate keys are the caller's to reject, with
// CheckTxnDuplicates.
func (s *Store) Txn(req *pb.TxnRequest) (*pb.TxnResponse, error) {
	before := s.st.rev
	resp, err := s.st.txn(req, s.newWriter(true), s.commit)
	if s.st.rev != before {
		s.view = nil
	}
	return resp, err
}

// txn is etcd's txn.Txn on st, writing through w (nil for a read-only
// txn); commit, when set, gets w once the txn succeeded.
func (st *state) txn(req *pb.TxnRequest, w *writer, commit func(*writer)) (*pb.TxnResponse, error) {
	path := st.compareToPath(req, st.rev, make([]bool, 0, 1))
	if _, err := st.checkTxn(req, st.rev, path); err != nil {
		return nil, err
	}
	if w == nil {
		w = newWriter(st, true, nil)
	}
	resp, _, err := w.exec(req, path)
	if err != nil {
		w.rollback()
		return nil, err
	}
	w.end()
	if commit != nil {
		commit(w)
	}
	return resp, nil
}

// exec is etcd's executeTxn; it returns how many path entries nested txns
// consumed.
func (w *writer) exec(rt *pb.TxnRequest, path []bool) (*pb.TxnResponse, int, error) {
	rt = txnOrEmpty(rt)
	ops := rt.Success
	if !path[0] {
		ops = rt.Failure
	}
	resp := &pb.TxnResponse{Succeeded: path[0], Responses: make([]*pb.ResponseOp, len(ops))}
	n := 0
	for i, op := range ops {
		ro := &pb.ResponseOp{}
		switch tv := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := w.st.rangeReq(rangeOrEmpty(tv.RequestRange), w.curRev(), true)
			if err != nil {
				return nil, 0, err
			}
			ro.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			// A nil request (which gRPC decoding never produces) does nothing.
			pr := &pb.PutResponse{}
			if tv.RequestPut != nil {
				var err error
				if pr, err = w.put(tv.RequestPut, true); err != nil {
					return nil, 0, err
				}
			}
			ro.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case *pb.RequestOp_RequestDeleteRange:
			dr := &pb.DeleteRangeResponse{}
			if tv.RequestDeleteRange != nil {
				dr = w.deleteRange(tv.RequestDeleteRange, true)
			}
			ro.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case *pb.RequestOp_RequestTxn:
			tr, m, err := w.exec(tv.RequestTxn, path[1+n:])
			if err != nil {
				return nil, 0, err
			}
			tr.Header = &pb.ResponseHeader{}
			ro.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
			n += m + 1
		}
		resp.Responses[i] = ro
	}
	return resp, n, nil
}

// Compact discards history: reads below at then fail with ErrCompacted,
// and for every key only the newest revision <= at (unless it is a
// deletion) and later ones are kept, so reads at revision at still work.
// Errors: ErrCompacted if at <= the last compaction revision, ErrFutureRev if
// at is above the current revision. The work is done at once, in O(keys).
func (s *Store) Compact(at int64) error {
	if at <= s.st.compactRev {
		return ErrCompacted
	}
	if at > s.st.rev {
		return ErrFutureRev
	}
	s.st.compactRev = at
	s.view = nil

	type change struct {
		it   keyItem
		drop bool
	}
	var changes []change
	s.st.tree.Ascend(func(it keyItem) bool {
		if it.revs[0].main > at {
			return true
		}
		// i: last revision <= at; keep from there, or after it if it is a
		// deletion.
		i := len(it.revs) - 1
		for it.revs[i].main > at {
			i--
		}
		if it.revs[i].tomb {
			i++
		}
		if i == 0 {
			return true
		}
		for _, r := range it.revs[:i] {
			s.st.size -= revSize(len(it.key), len(r.value))
		}
		if i == len(it.revs) {
			changes = append(changes, change{it: it, drop: true})
			return true
		}
		it.revs = append([]rev(nil), it.revs[i:]...)
		changes = append(changes, change{it: it})
		return true
	})
	for _, c := range changes {
		if c.drop {
			s.st.tree.Delete(c.it)
		} else {
			s.st.tree.ReplaceOrInsert(c.it)
		}
	}
	return nil
}
