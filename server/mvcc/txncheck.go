package mvcc

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// IsReadOnlyTxn reports whether no operation in any branch of req, nested
// txns included, writes. (etcd's IsTxnReadonly counts any nested txn as a
// write; a nested txn of ranges only is read-only here.) Empty operations
// write nothing.
func IsReadOnlyTxn(req *pb.TxnRequest) bool {
	if req == nil {
		return true
	}
	return opsReadOnly(req.Success) && opsReadOnly(req.Failure)
}

func opsReadOnly(ops []*pb.RequestOp) bool {
	for _, op := range ops {
		switch tv := op.GetRequest().(type) {
		case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
			return false
		case *pb.RequestOp_RequestTxn:
			if !IsReadOnlyTxn(tv.RequestTxn) {
				return false
			}
		}
	}
	return true
}

// CheckTxnDuplicates returns ErrDuplicateKey if req's success or failure
// ops would write a key twice, as etcd's gRPC layer does (checkIntervals):
// within one branch, including the branches of nested txns it contains, a
// key may not be put twice nor be put and deleted. Puts in the success and
// failure branches of the same nested txn may share keys; deletes may
// overlap each other.
//
// Quirks of etcd kept for compatibility: a delete with range_end "\x00"
// (all keys >= key) conflicts with no put; a nested txn's puts are checked
// against the deletes of earlier sibling txns but not of later ones.
func CheckTxnDuplicates(req *pb.TxnRequest) error {
	if req == nil {
		return nil
	}
	if _, _, err := checkIntervals(req.Success); err != nil {
		return err
	}
	_, _, err := checkIntervals(req.Failure)
	return err
}

// delInterval is a delete's key interval [begin, end); end "" is +infinity
// (etcd's StringAffineInterval). A point delete of k is [k, k+"\x00").
type delInterval struct{ begin, end string }

// containsKey is adt's Interval.Compare against the point interval of k
// with "" ordered above all strings: true iff begin <= k < end. An interval
// whose end is not above its begin (range_end "\x00", or range_end < key)
// contains nothing; empty keys (rejected before this check) neither.
func (iv delInterval) containsKey(k string) bool {
	return k != "" && iv.begin != "" && iv.begin <= k && (iv.end == "" || k < iv.end)
}

type delSet []delInterval

func (d delSet) intersects(k string) bool {
	for _, iv := range d {
		if iv.containsKey(k) {
			return true
		}
	}
	return false
}

// checkIntervals is etcd's checkIntervals (api/v3rpc/key.go) with the
// interval tree replaced by a list: it returns the puts and deletes of reqs
// for the caller's level to check.
func checkIntervals(reqs []*pb.RequestOp) (map[string]struct{}, delSet, error) {
	var dels delSet
	// Deletes at this level first, to check lower-level puts against them.
	for _, req := range reqs {
		tv, ok := req.GetRequest().(*pb.RequestOp_RequestDeleteRange)
		if !ok || tv.RequestDeleteRange == nil {
			continue
		}
		dr := tv.RequestDeleteRange
		if len(dr.RangeEnd) != 0 {
			dels = append(dels, delInterval{string(dr.Key), string(dr.RangeEnd)})
		} else {
			dels = append(dels, delInterval{string(dr.Key), string(dr.Key) + "\x00"})
		}
	}

	// Children's puts and deletes.
	puts := make(map[string]struct{})
	for _, req := range reqs {
		tv, ok := req.GetRequest().(*pb.RequestOp_RequestTxn)
		if !ok || tv.RequestTxn == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(tv.RequestTxn.Success)
		if err != nil {
			return nil, dels, err
		}
		putsElse, delsElse, err := checkIntervals(tv.RequestTxn.Failure)
		if err != nil {
			return nil, dels, err
		}
		for k := range putsThen {
			if _, ok := puts[k]; ok {
				return nil, dels, ErrDuplicateKey
			}
			if dels.intersects(k) {
				return nil, dels, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, ok := puts[k]; ok {
				// then and else are mutually exclusive: a key from
				// putsThen is fine.
				if _, isSafe := putsThen[k]; !isSafe {
					return nil, dels, ErrDuplicateKey
				}
			}
			if dels.intersects(k) {
				return nil, dels, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		// etcd unions the children's intervals that intersect
		// ["\x00", +inf): every interval that can contain a key.
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}

	// This level's puts.
	for _, req := range reqs {
		tv, ok := req.GetRequest().(*pb.RequestOp_RequestPut)
		if !ok || tv.RequestPut == nil {
			continue
		}
		k := string(tv.RequestPut.Key)
		if _, ok := puts[k]; ok {
			return nil, dels, ErrDuplicateKey
		}
		if dels.intersects(k) {
			return nil, dels, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
