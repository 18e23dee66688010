package mvcc

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestCheckTxnDuplicates(t *testing.T) {
	then := func(o ...*pb.RequestOp) *pb.RequestOp { return opTxn(&pb.TxnRequest{Success: o}) }
	els := func(o ...*pb.RequestOp) *pb.RequestOp { return opTxn(&pb.TxnRequest{Failure: o}) }
	both := func(s, f []*pb.RequestOp) *pb.RequestOp { return opTxn(&pb.TxnRequest{Success: s, Failure: f}) }
	for _, tc := range []struct {
		name string
		ops  []*pb.RequestOp
		dup  bool
	}{
		{"two keys", ops(opPut("a", ""), opPut("b", "")), false},
		{"put twice", ops(opPut("a", ""), opPut("a", "")), true},
		{"put and delete", ops(opPut("a", ""), opDel("a", "")), true},
		{"delete and put", ops(opDel("a", ""), opPut("a", "")), true},
		{"put inside a deleted range", ops(opDel("a", "c"), opPut("b", "")), true},
		{"put at a deleted range's start", ops(opDel("a", "c"), opPut("a", "")), true},
		{"put at a deleted range's end", ops(opDel("a", "c"), opPut("c", "")), false},
		{"put after a point delete", ops(opDel("a", ""), opPut("a\x00", "")), false},
		{"delete twice", ops(opDel("a", ""), opDel("a", "")), false},
		{"overlapping deletes", ops(opDel("a", "c"), opDel("b", "d")), false},
		{"range and put", ops(opRange("a", ""), opPut("a", "")), false},
		// etcd builds [key, "\x00") for range_end "\x00", an interval
		// containing nothing.
		{"put in a delete of all keys >= key (etcd quirk)", ops(opDel("a", "\x00"), opPut("b", "")), false},
		{"delete with range_end < key", ops(opDel("c", "a"), opPut("b", "")), false},
		{"nested then and else may share keys", ops(both(ops(opPut("a", "")), ops(opPut("a", "")))), false},
		{"nested put and outer put", ops(then(opPut("a", "")), opPut("a", "")), true},
		{"outer put before nested put", ops(opPut("a", ""), then(opPut("a", ""))), true},
		{"two nested thens", ops(then(opPut("a", "")), then(opPut("a", ""))), true},
		{"nested then and sibling's else", ops(then(opPut("a", "")), els(opPut("a", ""))), true},
		{"nested else and sibling's then", ops(els(opPut("a", "")), then(opPut("a", ""))), true},
		{"outer delete, nested put", ops(opDel("a", "b"), then(opPut("a", ""))), true},
		{"nested delete, outer put", ops(els(opDel("a", "")), opPut("a", "")), true},
		{"nested delete, later sibling's put", ops(then(opDel("a", "")), then(opPut("a", ""))), true},
		// etcd checks a nested txn's puts against earlier siblings' deletes only.
		{"nested put, later sibling's delete (etcd quirk)", ops(then(opPut("a", "")), then(opDel("a", ""))), false},
		{"nested delete and put in one branch", ops(then(opDel("a", ""), opPut("a", ""))), true},
		{"deep nesting", ops(then(then(then(opPut("a", "")))), opPut("a", "")), true},
		{"deep nesting, different keys", ops(then(then(then(opPut("a", "")))), opPut("b", "")), false},
		{"nested put into outer delete range", ops(opDel("a", "z"), els(then(opPut("q", "")))), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range []*pb.TxnRequest{{Success: tc.ops}, {Failure: tc.ops}} {
				err := CheckTxnDuplicates(req)
				if tc.dup && !errors.Is(err, ErrDuplicateKey) {
					t.Errorf("got %v, want ErrDuplicateKey", err)
				}
				if !tc.dup && err != nil {
					t.Errorf("got %v, want nil", err)
				}
			}
		})
	}
	// Success and failure are checked separately.
	if err := CheckTxnDuplicates(&pb.TxnRequest{Success: ops(opPut("a", "")), Failure: ops(opPut("a", ""), opDel("b", ""))}); err != nil {
		t.Errorf("same key in success and failure: %v", err)
	}
}
