package mvcc

import (
	"bytes"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// keyRange is the set of keys a request's (key, range_end) names.
type keyRange struct {
	key, end []byte
	// single: range_end empty, only key. gte: range_end "\x00", all keys >= key.
	single, gte bool
}

// mkRange interprets key and range_end as etcd does on the wire: an empty
// range_end names the single key, "\x00" all keys >= key, anything else
// the half-open interval [key, range_end) (empty when range_end <= key).
//
// etcd's mvcc layer, called in-process, would read a non-nil empty range_end
// as ">= key"; gRPC cannot tell empty from absent, so here both mean the
// single key, identically on every replica however the request was decoded.
func mkRange(key, end []byte) keyRange {
	switch {
	case len(end) == 0:
		return keyRange{key: key, single: true}
	case len(end) == 1 && end[0] == 0:
		return keyRange{key: key, gte: true}
	}
	return keyRange{key: key, end: end}
}

// visit calls f, in key order, for every item whose key is in kr, until f
// returns false.
func (st *state) visit(kr keyRange, f func(it keyItem) bool) {
	probe := keyItem{key: kr.key}
	switch {
	case kr.single:
		if it, ok := st.tree.Get(probe); ok {
			f(it)
		}
	case kr.gte:
		st.tree.AscendGreaterOrEqual(probe, f)
	default:
		if bytes.Compare(kr.end, kr.key) <= 0 {
			return
		}
		st.tree.AscendRange(probe, keyItem{key: kr.end}, f)
	}
}

// checkRev validates a requested read revision against the current one, as
// etcd's rangeKeys does, and returns the revision to read at.
func (st *state) checkRev(atRev, curRev int64) (int64, error) {
	if atRev > curRev {
		return 0, ErrFutureRev
	}
	if atRev <= 0 {
		atRev = curRev
	}
	if atRev < st.compactRev {
		return 0, ErrCompacted
	}
	return atRev, nil
}

func makeKV(it *keyItem, r *rev) mvccpb.KeyValue {
	return mvccpb.KeyValue{
		Key:            it.key,
		CreateRevision: r.create,
		ModRevision:    r.main,
		Version:        r.version,
		Value:          r.value,
		Lease:          r.lease,
	}
}

// rangeKeys is etcd's storeTxnCommon.rangeKeys plus treeIndex.Revisions:
// the keys of kr alive at atRev (0 = curRev), at most limit of them when
// limit > 0, and the count of all of them.
func (st *state) rangeKeys(kr keyRange, atRev, curRev, limit int64, countOnly bool) ([]mvccpb.KeyValue, int64, error) {
	at, err := st.checkRev(atRev, curRev)
	if err != nil {
		return nil, 0, err
	}
	var kvs []mvccpb.KeyValue
	var count int64
	st.visit(kr, func(it keyItem) bool {
		r, ok := it.at(at)
		if !ok {
			return true
		}
		count++
		if !countOnly && (limit <= 0 || int64(len(kvs)) < limit) {
			kvs = append(kvs, makeKV(&it, r))
		}
		return true
	})
	return kvs, count, nil
}

// rangeReq is etcd's executeRange. curRev is the revision the read sees
// (inside a write txn, the txn's revision once it has written). nested
// selects the response Header etcd sets on responses inside a txn.
func (st *state) rangeReq(r *pb.RangeRequest, curRev int64, nested bool) (*pb.RangeResponse, error) {
	limit := r.Limit
	if r.SortOrder != pb.RangeRequest_NONE ||
		r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		// fetch everything; sort and truncate afterwards
		limit = 0
	}
	if limit > 0 {
		// fetch one extra for the 'more' flag
		limit++
	}
	kvs, count, err := st.rangeKeys(mkRange(r.Key, r.RangeEnd), r.Revision, curRev, limit, r.CountOnly)
	if err != nil {
		return nil, err
	}

	if r.MaxModRevision != 0 {
		kvs = pruneKVs(kvs, func(kv *mvccpb.KeyValue) bool { return kv.ModRevision > r.MaxModRevision })
	}
	if r.MinModRevision != 0 {
		kvs = pruneKVs(kvs, func(kv *mvccpb.KeyValue) bool { return kv.ModRevision < r.MinModRevision })
	}
	if r.MaxCreateRevision != 0 {
		kvs = pruneKVs(kvs, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision > r.MaxCreateRevision })
	}
	if r.MinCreateRevision != 0 {
		kvs = pruneKVs(kvs, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision < r.MinCreateRevision })
	}

	sortKVs(kvs, r.SortOrder, r.SortTarget)

	resp := &pb.RangeResponse{Count: count}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	resp.Kvs = make([]*mvccpb.KeyValue, len(kvs))
	for i := range kvs {
		if r.KeysOnly {
			kvs[i].Value = nil
		}
		resp.Kvs[i] = &kvs[i]
	}
	if nested {
		resp.Header = &pb.ResponseHeader{Revision: curRev}
	}
	return resp, nil
}

func pruneKVs(kvs []mvccpb.KeyValue, prunable func(*mvccpb.KeyValue) bool) []mvccpb.KeyValue {
	j := 0
	for i := range kvs {
		kvs[j] = kvs[i]
		if !prunable(&kvs[i]) {
			j++
		}
	}
	return kvs[:j]
}

// sortKVs applies etcd's sort rules: NONE with a target other than KEY means
// ASCEND; KEY ASCEND is the natural order. It sorts with sort.Sort and the
// same comparisons as etcd so that ties come out in the same order.
// Unknown targets (rejected by request validation) leave the order as is.
func sortKVs(kvs []mvccpb.KeyValue, order pb.RangeRequest_SortOrder, target pb.RangeRequest_SortTarget) {
	if target != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	} else if target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND {
		order = pb.RangeRequest_NONE
	}
	if order == pb.RangeRequest_NONE {
		return
	}
	var sorter sort.Interface
	switch target {
	case pb.RangeRequest_KEY:
		sorter = kvSortByKey{kvs}
	case pb.RangeRequest_VERSION:
		sorter = kvSortByVersion{kvs}
	case pb.RangeRequest_CREATE:
		sorter = kvSortByCreate{kvs}
	case pb.RangeRequest_MOD:
		sorter = kvSortByMod{kvs}
	case pb.RangeRequest_VALUE:
		sorter = kvSortByValue{kvs}
	default:
		return
	}
	switch order {
	case pb.RangeRequest_ASCEND:
		sort.Sort(sorter)
	case pb.RangeRequest_DESCEND:
		sort.Sort(sort.Reverse(sorter))
	}
}

type kvSort []mvccpb.KeyValue

func (s kvSort) Len() int      { return len(s) }
func (s kvSort) Swap(i, j int) { s[i], s[j] = s[j], s[i] }

type kvSortByKey struct{ kvSort }

func (s kvSortByKey) Less(i, j int) bool { return bytes.Compare(s.kvSort[i].Key, s.kvSort[j].Key) < 0 }

type kvSortByVersion struct{ kvSort }

func (s kvSortByVersion) Less(i, j int) bool { return s.kvSort[i].Version-s.kvSort[j].Version < 0 }

type kvSortByCreate struct{ kvSort }

func (s kvSortByCreate) Less(i, j int) bool {
	return s.kvSort[i].CreateRevision-s.kvSort[j].CreateRevision < 0
}

type kvSortByMod struct{ kvSort }

func (s kvSortByMod) Less(i, j int) bool { return s.kvSort[i].ModRevision-s.kvSort[j].ModRevision < 0 }

type kvSortByValue struct{ kvSort }

func (s kvSortByValue) Less(i, j int) bool {
	return bytes.Compare(s.kvSort[i].Value, s.kvSort[j].Value) < 0
}

// compareToPath evaluates, on the state before the txn runs, the compares of
// rt and of every nested txn on the path taken, in etcd's pre-order: one bool
// per txn on the path, rt's first.
func (st *state) compareToPath(rt *pb.TxnRequest, curRev int64, path []bool) []bool {
	rt = txnOrEmpty(rt)
	ok := st.applyCompares(rt.Compare, curRev)
	path = append(path, ok)
	ops := rt.Success
	if !ok {
		ops = rt.Failure
	}
	for _, op := range ops {
		if t, isTxn := op.GetRequest().(*pb.RequestOp_RequestTxn); isTxn {
			path = st.compareToPath(t.RequestTxn, curRev, path)
		}
	}
	return path
}

func (st *state) applyCompares(cmps []*pb.Compare, curRev int64) bool {
	for _, c := range cmps {
		if !st.applyCompare(c, curRev) {
			return false
		}
	}
	return true
}

// applyCompare is etcd's: every key in the compare's range must satisfy it;
// with no key, a VALUE compare fails and the others compare a zero KeyValue
// (version, create, mod and lease 0).
func (st *state) applyCompare(c *pb.Compare, curRev int64) bool {
	if c == nil {
		return true
	}
	ok, found := true, false
	st.visit(mkRange(c.Key, c.RangeEnd), func(it keyItem) bool {
		r, alive := it.at(curRev)
		if !alive {
			return true
		}
		found = true
		kv := makeKV(&it, r)
		ok = compareKV(c, &kv)
		return ok
	})
	if !found {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	return ok
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	var v int64
	switch c.Target {
	case pb.Compare_VALUE:
		var want []byte
		if tv, _ := c.TargetUnion.(*pb.Compare_Value); tv != nil {
			want = tv.Value
		}
		result = bytes.Compare(kv.Value, want)
	case pb.Compare_CREATE:
		if tv, _ := c.TargetUnion.(*pb.Compare_CreateRevision); tv != nil {
			v = tv.CreateRevision
		}
		result = compareInt64(kv.CreateRevision, v)
	case pb.Compare_MOD:
		if tv, _ := c.TargetUnion.(*pb.Compare_ModRevision); tv != nil {
			v = tv.ModRevision
		}
		result = compareInt64(kv.ModRevision, v)
	case pb.Compare_VERSION:
		if tv, _ := c.TargetUnion.(*pb.Compare_Version); tv != nil {
			v = tv.Version
		}
		result = compareInt64(kv.Version, v)
	case pb.Compare_LEASE:
		if tv, _ := c.TargetUnion.(*pb.Compare_Lease); tv != nil {
			v = tv.Lease
		}
		result = compareInt64(kv.Lease, v)
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var emptyTxn = &pb.TxnRequest{}

// txnOrEmpty treats a nil nested txn (which gRPC decoding never produces and
// etcd would crash on) as an empty one.
func txnOrEmpty(rt *pb.TxnRequest) *pb.TxnRequest {
	if rt == nil {
		return emptyTxn
	}
	return rt
}

// checkTxn is etcd's checkTxn: before anything runs, validate the ops on the
// path against the state before the txn. Ranges at a revision above curRev
// or below the compaction fail; a put with ignore_value/ignore_lease on a
// key missing before the txn fails. It returns how many path entries the
// nested txns consumed.
func (st *state) checkTxn(rt *pb.TxnRequest, curRev int64, path []bool) (int, error) {
	rt = txnOrEmpty(rt)
	n := 0
	ops := rt.Success
	if !path[0] {
		ops = rt.Failure
	}
	for _, op := range ops {
		switch tv := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			if tv.RequestRange == nil {
				continue
			}
			// etcd's checkRange: unlike a top-level range, a negative
			// revision below the compaction revision is "compacted".
			switch r := tv.RequestRange.Revision; {
			case r == 0:
			case r > curRev:
				return 0, ErrFutureRev
			case r < st.compactRev:
				return 0, ErrCompacted
			}
		case *pb.RequestOp_RequestPut:
			p := tv.RequestPut
			if p != nil && (p.IgnoreValue || p.IgnoreLease) {
				if _, ok := st.get(p.Key, curRev); !ok {
					return 0, ErrKeyNotFound
				}
			}
		case *pb.RequestOp_RequestTxn:
			m, err := st.checkTxn(tv.RequestTxn, curRev, path[1+n:])
			if err != nil {
				return 0, err
			}
			n += m + 1
		}
	}
	return n, nil
}

// get returns key's revision alive at r.
func (st *state) get(key []byte, r int64) (*rev, bool) {
	it, ok := st.tree.Get(keyItem{key: key})
	if !ok {
		return nil, false
	}
	return it.at(r)
}

var emptyRange = &pb.RangeRequest{}

func rangeOrEmpty(r *pb.RangeRequest) *pb.RangeRequest {
	if r == nil {
		return emptyRange
	}
	return r
}
