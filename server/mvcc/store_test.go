package mvcc

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestRevisionAccounting(t *testing.T) {
	s := New()
	steps := []struct {
		name    string
		do      func() error
		wantRev int64
	}{
		{"fresh store", func() error { return nil }, 1},
		{"put", func() error { _, err := s.Put(&pb.PutRequest{Key: []byte("a")}); return err }, 2},
		{"put other key", func() error { _, err := s.Put(&pb.PutRequest{Key: []byte("b")}); return err }, 3},
		{"delete missing key", func() error {
			_, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("x")})
			return err
		}, 3},
		{"delete empty range", func() error {
			_, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("x"), RangeEnd: []byte("y")})
			return err
		}, 3},
		{"delete existing", func() error {
			_, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")})
			return err
		}, 4},
		{"delete already deleted", func() error {
			_, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")})
			return err
		}, 4},
		{"range", func() error { _, err := s.Range(&pb.RangeRequest{Key: []byte("b")}); return err }, 4},
		{"read-only txn", func() error { _, err := s.Txn(&pb.TxnRequest{Success: ops(opRange("b", ""))}); return err }, 4},
		{"empty txn", func() error { _, err := s.Txn(&pb.TxnRequest{}); return err }, 4},
		{"txn deleting nothing", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: ops(opDel("x", ""), opDel("a", "ab"))})
			return err
		}, 4},
		{"txn whose writes are on the branch not taken", func() error {
			_, err := s.Txn(&pb.TxnRequest{
				Compare: []*pb.Compare{cmpVersion("b", pb.Compare_EQUAL, 0)},
				Success: ops(opPut("c", "1")),
			})
			return err
		}, 4},
		{"txn with three writes: one revision", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: ops(opPut("c", "1"), opPut("d", "1"), opDel("b", ""))})
			return err
		}, 5},
		{"nested txn write", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Success: ops(opPut("e", "1"))}))})
			return err
		}, 6},
		{"nested txn deleting nothing", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Success: ops(opDel("zz", ""))}))})
			return err
		}, 6},
		{"failed txn", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: ops(opPut("f", "1"), opRangeReq(&pb.RangeRequest{Key: []byte("a"), Revision: 100}))})
			if !errors.Is(err, ErrFutureRev) {
				return errors.New("want ErrFutureRev")
			}
			return nil
		}, 6},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.Rev(); got != st.wantRev {
			t.Fatalf("%s: rev %d, want %d", st.name, got, st.wantRev)
		}
		if got := s.View().Rev(); got != st.wantRev {
			t.Fatalf("%s: view rev %d, want %d", st.name, got, st.wantRev)
		}
	}
	// The txn at revision 5 wrote c, d and deleted b as sub-revisions 0, 1, 2.
	for key, want := range map[string]rev{"c": {main: 5, sub: 0}, "d": {main: 5, sub: 1}, "b": {main: 5, sub: 2, tomb: true}} {
		it, _ := s.st.tree.Get(keyItem{key: []byte(key)})
		got := it.revs[len(it.revs)-1]
		if got.main != want.main || got.sub != want.sub || got.tomb != want.tomb {
			t.Errorf("%s: last revision %+v, want main %d sub %d tomb %v", key, got, want.main, want.sub, want.tomb)
		}
	}
	if got, want := all(t, s, 0), "c=1 c5 m5 v1, d=1 c5 m5 v1, e=1 c6 m6 v1"; got != want {
		t.Errorf("state %q, want %q", got, want)
	}
	if err := s.Compact(6); err != nil || s.Rev() != 6 {
		t.Errorf("compact: %v, rev %d, want 6", err, s.Rev())
	}
}

func TestVersionsAcrossDeleteAndRecreate(t *testing.T) {
	s := New()
	mustPut(t, s, "a", "1") // 2
	mustPut(t, s, "a", "2") // 3
	mustPut(t, s, "a", "3") // 4
	mustDel(t, s, "a", "")  // 5
	mustPut(t, s, "a", "4") // 6
	mustPut(t, s, "a", "5") // 7
	for _, tc := range []struct {
		rev  int64
		want string
	}{
		{1, ""},
		{2, "a=1 c2 m2 v1"},
		{3, "a=2 c2 m3 v2"},
		{4, "a=3 c2 m4 v3"},
		{5, ""},
		{6, "a=4 c6 m6 v1"},
		{7, "a=5 c6 m7 v2"},
		{0, "a=5 c6 m7 v2"},
	} {
		if got := all(t, s, tc.rev); got != tc.want {
			t.Errorf("at %d: %q, want %q", tc.rev, got, tc.want)
		}
	}
}

// rangeFixture: a=1 c2 m2 v1, ab=4 c5 m5 v1, b=22 c3 m6 v2, d=5 c8 m8 v1;
// c existed from 4 to 7.
func rangeFixture(t *testing.T) *Store {
	s := New()
	mustPut(t, s, "a", "1")  // 2
	mustPut(t, s, "b", "2")  // 3
	mustPut(t, s, "c", "3")  // 4
	mustPut(t, s, "ab", "4") // 5
	mustPut(t, s, "b", "22") // 6
	mustDel(t, s, "c", "")   // 7
	mustPut(t, s, "d", "5")  // 8
	return s
}

func TestRange(t *testing.T) {
	const (
		a  = "a=1 c2 m2 v1"
		ab = "ab=4 c5 m5 v1"
		b  = "b=22 c3 m6 v2"
		d  = "d=5 c8 m8 v1"
	)
	allKeys := func(r *pb.RangeRequest) *pb.RangeRequest { r.Key, r.RangeEnd = []byte{0}, []byte{0}; return r }
	for _, tc := range []struct {
		name      string
		req       *pb.RangeRequest
		want      string
		count     int64
		more      bool
		err       error
		keysOnly  bool
		countOnly bool
	}{
		{name: "single key", req: &pb.RangeRequest{Key: []byte("a")}, want: a, count: 1},
		{name: "single missing key", req: &pb.RangeRequest{Key: []byte("aa")}},
		{name: "single deleted key", req: &pb.RangeRequest{Key: []byte("c")}},
		{name: "range", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("b")}, want: a + ", " + ab, count: 2},
		{name: "range end excluded", req: &pb.RangeRequest{Key: []byte("ab"), RangeEnd: []byte("d")}, want: ab + ", " + b, count: 2},
		{name: "range_end \\x00: all keys >= key", req: &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte{0}}, want: b + ", " + d, count: 2},
		{name: "key and range_end \\x00: everything", req: allKeys(&pb.RangeRequest{}), want: a + ", " + ab + ", " + b + ", " + d, count: 4},
		{name: "range_end < key: empty", req: &pb.RangeRequest{Key: []byte("d"), RangeEnd: []byte("a")}},
		{name: "range_end == key: empty", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("a")}},
		{name: "limit below count", req: allKeys(&pb.RangeRequest{Limit: 2}), want: a + ", " + ab, count: 4, more: true},
		{name: "limit equal to count", req: allKeys(&pb.RangeRequest{Limit: 4}), want: a + ", " + ab + ", " + b + ", " + d, count: 4},
		{name: "limit above count", req: allKeys(&pb.RangeRequest{Limit: 9}), want: a + ", " + ab + ", " + b + ", " + d, count: 4},
		{name: "negative limit: no limit", req: allKeys(&pb.RangeRequest{Limit: -1}), want: a + ", " + ab + ", " + b + ", " + d, count: 4},
		{name: "limit on single key", req: &pb.RangeRequest{Key: []byte("a"), Limit: 1}, want: a, count: 1},
		{name: "keys_only", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("b"), KeysOnly: true}, want: "a= c2 m2 v1, ab= c5 m5 v1", count: 2},
		{name: "count_only", req: allKeys(&pb.RangeRequest{CountOnly: true}), count: 4},
		{name: "count_only with limit", req: allKeys(&pb.RangeRequest{CountOnly: true, Limit: 1}), count: 4},
		{name: "count_only with filter counts before filtering", req: allKeys(&pb.RangeRequest{CountOnly: true, MinModRevision: 6}), count: 4},
		{name: "historical", req: allKeys(&pb.RangeRequest{Revision: 4}), want: "a=1 c2 m2 v1, b=2 c3 m3 v1, c=3 c4 m4 v1", count: 3},
		{name: "historical after delete", req: allKeys(&pb.RangeRequest{Revision: 7}), want: a + ", " + ab + ", " + b, count: 3},
		{name: "revision 1: empty", req: allKeys(&pb.RangeRequest{Revision: 1})},
		{name: "current revision", req: allKeys(&pb.RangeRequest{Revision: 8}), want: a + ", " + ab + ", " + b + ", " + d, count: 4},
		{name: "negative revision: current", req: allKeys(&pb.RangeRequest{Revision: -3}), want: a + ", " + ab + ", " + b + ", " + d, count: 4},
		{name: "future revision", req: allKeys(&pb.RangeRequest{Revision: 9}), err: ErrFutureRev},
		{name: "sort key ascend", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND}), want: a + ", " + ab + ", " + b + ", " + d, count: 4},
		{name: "sort key descend", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND}), want: d + ", " + b + ", " + ab + ", " + a, count: 4},
		{name: "sort none, target create: ascend", req: allKeys(&pb.RangeRequest{SortTarget: pb.RangeRequest_CREATE}), want: a + ", " + b + ", " + ab + ", " + d, count: 4},
		{name: "sort mod ascend", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_MOD}), want: a + ", " + ab + ", " + b + ", " + d, count: 4},
		{name: "sort mod descend", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD}), want: d + ", " + b + ", " + ab + ", " + a, count: 4},
		{name: "sort create descend", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_CREATE}), want: d + ", " + ab + ", " + b + ", " + a, count: 4},
		{name: "sort value ascend", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_VALUE}), want: a + ", " + b + ", " + ab + ", " + d, count: 4},
		{name: "sort version descend, ties in key order", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VERSION}), want: b + ", " + a + ", " + ab + ", " + d, count: 4},
		{name: "sort then limit", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD, Limit: 2}), want: d + ", " + b, count: 4, more: true},
		{name: "sort key descend then limit", req: allKeys(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, Limit: 1}), want: d, count: 4, more: true},
		{name: "min mod", req: allKeys(&pb.RangeRequest{MinModRevision: 5}), want: ab + ", " + b + ", " + d, count: 4},
		{name: "max mod", req: allKeys(&pb.RangeRequest{MaxModRevision: 5}), want: a + ", " + ab, count: 4},
		{name: "min create", req: allKeys(&pb.RangeRequest{MinCreateRevision: 3}), want: ab + ", " + b + ", " + d, count: 4},
		{name: "max create", req: allKeys(&pb.RangeRequest{MaxCreateRevision: 3}), want: a + ", " + b, count: 4},
		{name: "mod window", req: allKeys(&pb.RangeRequest{MinModRevision: 3, MaxModRevision: 6}), want: ab + ", " + b, count: 4},
		{name: "filter then limit: more", req: allKeys(&pb.RangeRequest{MinModRevision: 5, Limit: 1}), want: ab, count: 4, more: true},
		{name: "filter then limit: no more", req: allKeys(&pb.RangeRequest{MaxModRevision: 2, Limit: 1}), want: a, count: 4},
		{name: "filter, sort, limit", req: allKeys(&pb.RangeRequest{MinCreateRevision: 3, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD, Limit: 2}), want: d + ", " + b, count: 4, more: true},
		{name: "historical with filter", req: allKeys(&pb.RangeRequest{Revision: 4, MinCreateRevision: 3}), want: "b=2 c3 m3 v1, c=3 c4 m4 v1", count: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rangeFixture(t)
			for _, r := range []interface {
				Range(*pb.RangeRequest) (*pb.RangeResponse, error)
			}{s, s.View()} {
				resp, err := r.Range(tc.req)
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				if err != nil {
					continue
				}
				if got := kvsString(resp.Kvs); got != tc.want {
					t.Errorf("kvs %q, want %q", got, tc.want)
				}
				if resp.Count != tc.count || resp.More != tc.more {
					t.Errorf("count %d more %v, want %d %v", resp.Count, resp.More, tc.count, tc.more)
				}
				if resp.Header != nil {
					t.Errorf("top-level response has a header")
				}
			}
		})
	}
}

func TestRangeCompacted(t *testing.T) {
	s := rangeFixture(t)
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: 3}); !errors.Is(err, ErrCompacted) {
		t.Errorf("read below compaction: %v, want ErrCompacted", err)
	}
	if got, want := all(t, s, 4), "a=1 c2 m2 v1, b=2 c3 m3 v1, c=3 c4 m4 v1"; got != want {
		t.Errorf("read at the compaction revision: %q, want %q", got, want)
	}
	// A negative revision reads the current state at top level...
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: -1}); err != nil {
		t.Errorf("negative revision: %v", err)
	}
	// ...but counts as compacted inside a txn (etcd's checkRange).
	if _, err := s.Txn(&pb.TxnRequest{Success: ops(opRangeReq(&pb.RangeRequest{Key: []byte("a"), Revision: -1}))}); !errors.Is(err, ErrCompacted) {
		t.Errorf("negative revision in txn: %v, want ErrCompacted", err)
	}
}

func TestPut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req      *pb.PutRequest
		wantErr  error
		wantPrev string // prev_kv, "" if none
		wantA    string // key a afterwards
	}{
		{name: "overwrite", req: &pb.PutRequest{Key: []byte("a"), Value: []byte("2")}, wantA: "a=2 c2 m5 v2"},
		{name: "prev_kv", req: &pb.PutRequest{Key: []byte("a"), Value: []byte("2"), PrevKv: true}, wantPrev: "a=1 c2 m2 v1 l7", wantA: "a=2 c2 m5 v2"},
		{name: "lease stored as given", req: &pb.PutRequest{Key: []byte("a"), Value: []byte("2"), Lease: 12345}, wantA: "a=2 c2 m5 v2 l12345"},
		{name: "ignore_value keeps the value", req: &pb.PutRequest{Key: []byte("a"), IgnoreValue: true, Lease: 9}, wantA: "a=1 c2 m5 v2 l9"},
		{name: "ignore_lease keeps the lease", req: &pb.PutRequest{Key: []byte("a"), Value: []byte("3"), IgnoreLease: true}, wantA: "a=3 c2 m5 v2 l7"},
		{name: "ignore both", req: &pb.PutRequest{Key: []byte("a"), IgnoreValue: true, IgnoreLease: true, PrevKv: true}, wantPrev: "a=1 c2 m2 v1 l7", wantA: "a=1 c2 m5 v2 l7"},
		{name: "empty value", req: &pb.PutRequest{Key: []byte("a")}, wantA: "a= c2 m5 v2"},
		{name: "prev_kv on a new key", req: &pb.PutRequest{Key: []byte("n"), PrevKv: true}, wantA: "a=1 c2 m2 v1 l7"},
		{name: "prev_kv on a deleted key", req: &pb.PutRequest{Key: []byte("gone"), PrevKv: true}, wantA: "a=1 c2 m2 v1 l7"},
		{name: "ignore_value on a missing key", req: &pb.PutRequest{Key: []byte("n"), IgnoreValue: true}, wantErr: ErrKeyNotFound, wantA: "a=1 c2 m2 v1 l7"},
		{name: "ignore_lease on a missing key", req: &pb.PutRequest{Key: []byte("n"), IgnoreLease: true}, wantErr: ErrKeyNotFound, wantA: "a=1 c2 m2 v1 l7"},
		{name: "ignore_value on a deleted key", req: &pb.PutRequest{Key: []byte("gone"), IgnoreValue: true}, wantErr: ErrKeyNotFound, wantA: "a=1 c2 m2 v1 l7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if _, err := s.Put(&pb.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 7}); err != nil { // 2
				t.Fatal(err)
			}
			mustPut(t, s, "gone", "x") // 3
			mustDel(t, s, "gone", "")  // 4
			// The put under test is at revision 5.
			before := s.Rev()
			resp, err := s.Put(tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if s.Rev() != before {
					t.Errorf("failed put changed the revision")
				}
			} else {
				if s.Rev() != before+1 {
					t.Errorf("rev %d, want %d", s.Rev(), before+1)
				}
				got := ""
				if resp.PrevKv != nil {
					got = kvString(resp.PrevKv)
				}
				if got != tc.wantPrev {
					t.Errorf("prev_kv %q, want %q", got, tc.wantPrev)
				}
			}
			resp2, _ := s.Range(&pb.RangeRequest{Key: []byte("a")})
			if got := kvsString(resp2.Kvs); got != tc.wantA {
				t.Errorf("a = %q, want %q", got, tc.wantA)
			}
		})
	}
}

func TestPutCopiesRequest(t *testing.T) {
	s := New()
	key, val := []byte("k"), []byte("v")
	s.Put(&pb.PutRequest{Key: key, Value: val})
	key[0], val[0] = 'x', 'x'
	if got := all(t, s, 0); got != "k=v c2 m2 v1" {
		t.Errorf("store aliased the request's slices: %q", got)
	}
}

func TestDeleteRange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		key, end    string
		prevKv      bool
		wantDeleted int64
		wantPrev    string
		wantLeft    string
		wantRev     int64
	}{
		{name: "single key", key: "b", wantDeleted: 1, wantLeft: "a=1 c2 m2 v1, ab=2 c3 m3 v1, c=4 c5 m5 v1", wantRev: 6},
		{name: "single key prev_kv", key: "b", prevKv: true, wantDeleted: 1, wantPrev: "b=3 c4 m4 v1", wantLeft: "a=1 c2 m2 v1, ab=2 c3 m3 v1, c=4 c5 m5 v1", wantRev: 6},
		{name: "missing key", key: "x", prevKv: true, wantLeft: "a=1 c2 m2 v1, ab=2 c3 m3 v1, b=3 c4 m4 v1, c=4 c5 m5 v1", wantRev: 5},
		{name: "range", key: "a", end: "b", prevKv: true, wantDeleted: 2, wantPrev: "a=1 c2 m2 v1, ab=2 c3 m3 v1", wantLeft: "b=3 c4 m4 v1, c=4 c5 m5 v1", wantRev: 6},
		{name: "all from key", key: "ab", end: "\x00", wantDeleted: 3, wantLeft: "a=1 c2 m2 v1", wantRev: 6},
		{name: "everything", key: "\x00", end: "\x00", wantDeleted: 4, wantRev: 6},
		{name: "range_end < key", key: "c", end: "a", wantLeft: "a=1 c2 m2 v1, ab=2 c3 m3 v1, b=3 c4 m4 v1, c=4 c5 m5 v1", wantRev: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustPut(t, s, "a", "1")
			mustPut(t, s, "ab", "2")
			mustPut(t, s, "b", "3")
			mustPut(t, s, "c", "4")
			resp, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(tc.key), RangeEnd: bytesOrNil(tc.end), PrevKv: tc.prevKv})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Deleted != tc.wantDeleted {
				t.Errorf("deleted %d, want %d", resp.Deleted, tc.wantDeleted)
			}
			if got := kvsString(resp.PrevKvs); got != tc.wantPrev {
				t.Errorf("prev_kvs %q, want %q", got, tc.wantPrev)
			}
			if !tc.prevKv && resp.PrevKvs != nil {
				t.Errorf("prev_kvs without prev_kv")
			}
			if got := all(t, s, 0); got != tc.wantLeft {
				t.Errorf("left %q, want %q", got, tc.wantLeft)
			}
			if s.Rev() != tc.wantRev {
				t.Errorf("rev %d, want %d", s.Rev(), tc.wantRev)
			}
		})
	}
}

func TestTxnCompare(t *testing.T) {
	// a=2 c2 m3 v2; b=x c4 m4 v1 lease 7; c deleted at 6.
	setup := func(t *testing.T) *Store {
		s := New()
		mustPut(t, s, "a", "1") // 2
		mustPut(t, s, "a", "2") // 3
		// 4:
		if _, err := s.Put(&pb.PutRequest{Key: []byte("b"), Value: []byte("x"), Lease: 7}); err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, "c", "y") // 5
		mustDel(t, s, "c", "")  // 6
		return s
	}
	for _, tc := range []struct {
		name string
		cmps []*pb.Compare
		want bool
	}{
		{"no compares", nil, true},
		{"version equal", []*pb.Compare{cmpVersion("a", EQ, 2)}, true},
		{"version greater", []*pb.Compare{cmpVersion("a", GT, 1)}, true},
		{"version less fails", []*pb.Compare{cmpVersion("a", LT, 2)}, false},
		{"version not equal fails", []*pb.Compare{cmpVersion("a", NE, 2)}, false},
		{"value equal", []*pb.Compare{cmpValue("a", EQ, "2")}, true},
		{"value greater", []*pb.Compare{cmpValue("a", GT, "1")}, true},
		{"value less", []*pb.Compare{cmpValue("a", LT, "3")}, true},
		{"value not equal fails", []*pb.Compare{cmpValue("a", NE, "2")}, false},
		{"create", []*pb.Compare{cmpCreate("a", EQ, 2)}, true},
		{"mod", []*pb.Compare{cmpMod("a", EQ, 3)}, true},
		{"mod less", []*pb.Compare{cmpMod("a", LT, 4)}, true},
		{"lease", []*pb.Compare{cmpLease("b", EQ, 7)}, true},
		{"no lease is 0", []*pb.Compare{cmpLease("a", EQ, 0)}, true},
		{"missing key: version 0", []*pb.Compare{cmpVersion("zz", EQ, 0)}, true},
		{"missing key: create 0", []*pb.Compare{cmpCreate("zz", EQ, 0)}, true},
		{"missing key: mod 0", []*pb.Compare{cmpMod("zz", EQ, 0)}, true},
		{"missing key: lease 0", []*pb.Compare{cmpLease("zz", EQ, 0)}, true},
		{"missing key: version > 0 fails", []*pb.Compare{cmpVersion("zz", GT, 0)}, false},
		{"missing key: value equal to empty fails", []*pb.Compare{cmpValue("zz", EQ, "")}, false},
		{"missing key: value not equal fails", []*pb.Compare{cmpValue("zz", NE, "x")}, false},
		{"deleted key: version 0", []*pb.Compare{cmpVersion("c", EQ, 0)}, true},
		{"deleted key: value fails", []*pb.Compare{cmpValue("c", EQ, "y")}, false},
		{"range: every key satisfies", []*pb.Compare{withRangeEnd(cmpVersion("a", GT, 0), "c")}, true},
		{"range: one key fails", []*pb.Compare{withRangeEnd(cmpValue("a", EQ, "2"), "c")}, false},
		{"range: deleted keys are not in it", []*pb.Compare{withRangeEnd(cmpMod("a", GT, 2), "\x00")}, true},
		{"range: mod of all keys", []*pb.Compare{withRangeEnd(cmpMod("a", LT, 4), "\x00")}, false},
		{"empty range: like a missing key", []*pb.Compare{withRangeEnd(cmpVersion("x", EQ, 0), "y")}, true},
		{"empty range: value fails", []*pb.Compare{withRangeEnd(cmpValue("x", NE, "q"), "y")}, false},
		{"all compares must hold", []*pb.Compare{cmpVersion("a", EQ, 2), cmpVersion("b", EQ, 2)}, false},
		{"target/union mismatch compares against 0", []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VERSION, Result: EQ, TargetUnion: &pb.Compare_Value{Value: []byte("2")}}}, false},
		{"target/union mismatch on missing key", []*pb.Compare{{Key: []byte("zz"), Target: pb.Compare_MOD, Result: EQ, TargetUnion: &pb.Compare_Value{Value: []byte("2")}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			req := &pb.TxnRequest{Compare: tc.cmps, Success: ops(opRange("a", "")), Failure: ops(opRange("b", ""))}
			for _, txn := range []func(*pb.TxnRequest) (*pb.TxnResponse, error){s.Txn, s.View().Txn} {
				resp, err := txn(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Succeeded != tc.want {
					t.Errorf("succeeded %v, want %v", resp.Succeeded, tc.want)
				}
				key := string(resp.Responses[0].GetResponseRange().Kvs[0].Key)
				if want := map[bool]string{true: "a", false: "b"}[tc.want]; key != want {
					t.Errorf("ran the branch reading %q, want %q", key, want)
				}
			}
		})
	}
}

func TestTxnOps(t *testing.T) {
	s := New()
	mustPut(t, s, "a", "1") // 2
	mustPut(t, s, "b", "1") // 3

	// Later ops see earlier writes; responses nested in a txn carry the
	// header etcd gives them.
	resp := mustTxn(t, s, &pb.TxnRequest{
		Compare: []*pb.Compare{cmpVersion("a", EQ, 1)},
		Success: ops(
			opRange("a", ""),
			opPut("a", "2"),
			opRange("a", ""),
			opRangeReq(&pb.RangeRequest{Key: []byte("a"), Revision: 3}),
			opDel("b", ""),
			opDel("zz", ""),
			opTxn(&pb.TxnRequest{Success: ops(opRange("b", ""))}),
		),
		Failure: ops(opPut("failure", "1")),
	})
	if !resp.Succeeded || len(resp.Responses) != 7 || resp.Header != nil {
		t.Fatalf("response %v", resp)
	}
	r0 := resp.Responses[0].GetResponseRange()
	if got := kvsString(r0.Kvs); got != "a=1 c2 m2 v1" || r0.Header.Revision != 3 {
		t.Errorf("range before the put: %q header rev %d", got, r0.Header.Revision)
	}
	if h := resp.Responses[1].GetResponsePut().Header; h == nil || h.Revision != 4 {
		t.Errorf("put header %v, want revision 4", h)
	}
	r2 := resp.Responses[2].GetResponseRange()
	if got := kvsString(r2.Kvs); got != "a=2 c2 m4 v2" || r2.Header.Revision != 4 {
		t.Errorf("range after the put: %q header rev %d", got, r2.Header.Revision)
	}
	if got := kvsString(resp.Responses[3].GetResponseRange().Kvs); got != "a=1 c2 m2 v1" {
		t.Errorf("range at the revision before the txn: %q", got)
	}
	if d := resp.Responses[4].GetResponseDeleteRange(); d.Deleted != 1 || d.Header.Revision != 4 {
		t.Errorf("delete %v", d)
	}
	if d := resp.Responses[5].GetResponseDeleteRange(); d.Deleted != 0 || d.Header.Revision != 4 {
		t.Errorf("delete of a missing key after writes: %v, want header revision 4", d)
	}
	nested := resp.Responses[6].GetResponseTxn()
	if nested.Header == nil || nested.Header.Revision != 0 || !nested.Succeeded {
		t.Errorf("nested txn response %v, want an empty header", nested)
	}
	if got := kvsString(nested.Responses[0].GetResponseRange().Kvs); got != "" {
		t.Errorf("nested range sees b deleted earlier in the txn: %q", got)
	}
	if s.Rev() != 4 {
		t.Errorf("rev %d, want 4", s.Rev())
	}

	// A delete of nothing before any write reports the old revision.
	resp = mustTxn(t, s, &pb.TxnRequest{Success: ops(opDel("zz", ""), opPut("c", "1"))})
	if d := resp.Responses[0].GetResponseDeleteRange(); d.Header.Revision != 4 {
		t.Errorf("delete before writes: header revision %d, want 4", d.Header.Revision)
	}

	// The failure branch.
	resp = mustTxn(t, s, &pb.TxnRequest{Compare: []*pb.Compare{cmpValue("a", EQ, "nope")}, Success: ops(opPut("s", "1")), Failure: ops(opPut("f", "1"))})
	if resp.Succeeded || resp.Responses[0].GetResponsePut() == nil {
		t.Errorf("failure branch: %v", resp)
	}
	if got := all(t, s, 0); got != "a=2 c2 m4 v2, c=1 c5 m5 v1, f=1 c6 m6 v1" {
		t.Errorf("state %q", got)
	}
}

const (
	EQ = pb.Compare_EQUAL
	NE = pb.Compare_NOT_EQUAL
	GT = pb.Compare_GREATER
	LT = pb.Compare_LESS
)

func TestNestedTxn(t *testing.T) {
	s := New()
	mustPut(t, s, "x", "1") // 2
	// Nested compares are evaluated on the state before the txn: n is
	// missing then, although the outer txn has put it by the time the
	// nested one runs.
	resp := mustTxn(t, s, &pb.TxnRequest{Success: ops(
		opPut("n", "1"),
		opTxn(&pb.TxnRequest{
			Compare: []*pb.Compare{cmpVersion("n", EQ, 0)},
			Success: ops(opPut("m", "then"), opRange("n", "")),
			Failure: ops(opPut("m", "else")),
		}),
		opTxn(&pb.TxnRequest{
			Compare: []*pb.Compare{cmpValue("x", EQ, "other")},
			Success: ops(opPut("k", "then")),
			Failure: ops(opTxn(&pb.TxnRequest{Success: ops(opPut("k", "deep"))})),
		}),
	)})
	n1 := resp.Responses[1].GetResponseTxn()
	if !n1.Succeeded {
		t.Errorf("first nested txn: compare should see the state before the txn")
	}
	if got := kvsString(n1.Responses[1].GetResponseRange().Kvs); got != "n=1 c3 m3 v1" {
		t.Errorf("nested range: %q", got)
	}
	n2 := resp.Responses[2].GetResponseTxn()
	if n2.Succeeded || n2.Responses[0].GetResponseTxn() == nil || !n2.Responses[0].GetResponseTxn().Succeeded {
		t.Errorf("second nested txn: %v", n2)
	}
	if got := all(t, s, 0); got != "k=deep c3 m3 v1, m=then c3 m3 v1, n=1 c3 m3 v1, x=1 c2 m2 v1" {
		t.Errorf("state %q", got)
	}
	if s.Rev() != 3 {
		t.Errorf("rev %d, want 3", s.Rev())
	}
}

func TestTxnErrorsChangeNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  *pb.TxnRequest
		err  error
	}{
		{"range at a future revision", &pb.TxnRequest{Success: ops(opPut("a", "2"), opRangeReq(&pb.RangeRequest{Key: []byte("a"), Revision: 5}))}, ErrFutureRev},
		{"range at the revision the txn would create", &pb.TxnRequest{Success: ops(opPut("a", "2"), opRangeReq(&pb.RangeRequest{Key: []byte("a"), Revision: 4}))}, ErrFutureRev},
		{"range at a compacted revision", &pb.TxnRequest{Success: ops(opPut("a", "2"), opRangeReq(&pb.RangeRequest{Key: []byte("a"), Revision: 1}))}, ErrCompacted},
		{"nested range at a future revision", &pb.TxnRequest{Success: ops(opPut("a", "2"), opTxn(&pb.TxnRequest{Failure: ops(opRangeReq(&pb.RangeRequest{Key: []byte("a"), Revision: 9}))}))}, nil},
		{"nested range at a future revision on the path", &pb.TxnRequest{Success: ops(opPut("a", "2"), opTxn(&pb.TxnRequest{Success: ops(opRangeReq(&pb.RangeRequest{Key: []byte("a"), Revision: 9}))}))}, ErrFutureRev},
		{"ignore_value on a missing key", &pb.TxnRequest{Success: ops(opPut("a", "2"), &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("zz"), IgnoreValue: true}}})}, ErrKeyNotFound},
		// etcd checks ignore_value against the state before the txn, then
		// panics when the key was deleted earlier in the txn (a delete with
		// range_end "\x00" passes its duplicate check); here the txn fails
		// and is rolled back.
		{"ignore_value on a key the txn deleted", &pb.TxnRequest{Success: ops(opPut("c", "1"), opDel("a", "\x00"), &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), IgnoreValue: true}}})}, ErrKeyNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustPut(t, s, "a", "1") // 2
			mustPut(t, s, "b", "1") // 3
			if err := s.Compact(2); err != nil {
				t.Fatal(err)
			}
			before := all(t, s, 0)
			v := s.View()
			_, err := s.Txn(tc.req)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil {
				return
			}
			if s.Rev() != 3 || all(t, s, 0) != before || s.Size() != v.Size() {
				t.Errorf("failed txn changed the store: rev %d, %q, size %d (was %d)", s.Rev(), all(t, s, 0), s.Size(), v.Size())
			}
			if s.View() != v {
				t.Errorf("failed txn invalidated the cached view")
			}
			// The store keeps working after a rollback.
			mustPut(t, s, "a", "3")
			if got := all(t, s, 0); got != "a=3 c2 m4 v2, b=1 c3 m3 v1" {
				t.Errorf("after rollback and put: %q", got)
			}
		})
	}
}

func TestIsReadOnlyTxn(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  *pb.TxnRequest
		want bool
	}{
		{"empty", &pb.TxnRequest{}, true},
		{"ranges", &pb.TxnRequest{Success: ops(opRange("a", "")), Failure: ops(opRange("b", ""))}, true},
		{"put in success", &pb.TxnRequest{Success: ops(opPut("a", ""))}, false},
		{"delete in failure", &pb.TxnRequest{Failure: ops(opDel("a", ""))}, false},
		{"nested ranges", &pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Failure: ops(opRange("a", ""))}))}, true},
		{"nested put", &pb.TxnRequest{Failure: ops(opTxn(&pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Failure: ops(opPut("a", ""))}))}))}, false},
		{"empty op", &pb.TxnRequest{Success: ops(&pb.RequestOp{})}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsReadOnlyTxn(tc.req); got != tc.want {
				t.Errorf("IsReadOnlyTxn = %v, want %v", got, tc.want)
			}
			s := New()
			mustPut(t, s, "a", "1")
			_, err := s.View().Txn(tc.req)
			if tc.want && err != nil {
				t.Errorf("View.Txn: %v", err)
			}
			if !tc.want && !errors.Is(err, ErrTxnHasWrites) {
				t.Errorf("View.Txn: %v, want ErrTxnHasWrites", err)
			}
		})
	}
}

func TestCompact(t *testing.T) {
	s := New()
	mustPut(t, s, "a", "1") // 2
	mustPut(t, s, "a", "2") // 3
	mustPut(t, s, "b", "1") // 4
	mustDel(t, s, "b", "")  // 5
	mustPut(t, s, "c", "1") // 6
	mustPut(t, s, "a", "3") // 7
	mustPut(t, s, "d", "1") // 8
	mustDel(t, s, "d", "")  // 9
	size := s.Size()

	if err := s.Compact(10); !errors.Is(err, ErrFutureRev) {
		t.Errorf("compact above current: %v, want ErrFutureRev", err)
	}
	if err := s.Compact(5); err != nil {
		t.Fatal(err)
	}
	if s.CompactRev() != 5 || s.Rev() != 9 {
		t.Errorf("compact rev %d rev %d", s.CompactRev(), s.Rev())
	}
	if s.Size() >= size {
		t.Errorf("size %d did not shrink from %d", s.Size(), size)
	}
	for _, r := range []int64{5, 4} {
		if err := s.Compact(r); !errors.Is(err, ErrCompacted) {
			t.Errorf("compact %d again: %v, want ErrCompacted", r, err)
		}
	}
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: 4}); !errors.Is(err, ErrCompacted) {
		t.Errorf("read below compaction: %v", err)
	}
	for _, tc := range []struct {
		rev  int64
		want string
	}{
		{5, "a=2 c2 m3 v2"},
		{6, "a=2 c2 m3 v2, c=1 c6 m6 v1"},
		{8, "a=3 c2 m7 v3, c=1 c6 m6 v1, d=1 c8 m8 v1"},
		{9, "a=3 c2 m7 v3, c=1 c6 m6 v1"},
	} {
		if got := all(t, s, tc.rev); got != tc.want {
			t.Errorf("at %d: %q, want %q", tc.rev, got, tc.want)
		}
	}
	revsOf := func(key string) []int64 {
		it, ok := s.st.tree.Get(keyItem{key: []byte(key)})
		if !ok {
			return nil
		}
		var mains []int64
		for _, r := range it.revs {
			mains = append(mains, r.main)
		}
		return mains
	}
	// What survives: the newest revision <= 5 unless it is a deletion.
	for key, want := range map[string][]int64{"a": {3, 7}, "b": nil, "c": {6}, "d": {8, 9}} {
		if got := revsOf(key); !equalInts(got, want) {
			t.Errorf("%s keeps revisions %v, want %v", key, got, want)
		}
	}
	if err := s.Compact(9); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]int64{"a": {7}, "c": {6}, "d": nil} {
		if got := revsOf(key); !equalInts(got, want) {
			t.Errorf("after compact 9: %s keeps revisions %v, want %v", key, got, want)
		}
	}
	if got := all(t, s, 9); got != "a=3 c2 m7 v3, c=1 c6 m6 v1" {
		t.Errorf("at 9: %q", got)
	}
	// Versions continue after compaction.
	mustPut(t, s, "a", "4")
	if got := all(t, s, 0); got != "a=4 c2 m10 v4, c=1 c6 m6 v1" {
		t.Errorf("put after compaction: %q", got)
	}
}

func TestCompactFreshStore(t *testing.T) {
	// etcd starts with compaction revision -1: compacting at 0 succeeds
	// once, at -1 never.
	s := New()
	if err := s.Compact(-1); !errors.Is(err, ErrCompacted) {
		t.Errorf("compact -1: %v, want ErrCompacted", err)
	}
	if err := s.Compact(2); !errors.Is(err, ErrFutureRev) {
		t.Errorf("compact 2: %v, want ErrFutureRev", err)
	}
	if err := s.Compact(0); err != nil {
		t.Errorf("compact 0: %v", err)
	}
	if err := s.Compact(0); !errors.Is(err, ErrCompacted) {
		t.Errorf("compact 0 again: %v, want ErrCompacted", err)
	}
	if err := s.Compact(1); err != nil {
		t.Errorf("compact 1: %v", err)
	}
	if s.CompactRev() != 1 {
		t.Errorf("compact rev %d", s.CompactRev())
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestViewIsolation(t *testing.T) {
	s := New()
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "1")
	v := s.View()
	if s.View() != v {
		t.Errorf("View without mutation in between should be reused")
	}
	want := all(t, v, 0)
	mustPut(t, s, "a", "2")
	mustDel(t, s, "b", "")
	mustPut(t, s, "c", "1")
	mustTxn(t, s, &pb.TxnRequest{Success: ops(opPut("d", "1"), opDel("a", ""))})
	if err := s.Compact(s.Rev()); err != nil {
		t.Fatal(err)
	}
	if got := all(t, v, 0); got != want {
		t.Errorf("view changed: %q, want %q", got, want)
	}
	if v.Rev() != 3 || v.CompactRev() != 0 {
		t.Errorf("view rev %d compact %d", v.Rev(), v.CompactRev())
	}
	if got := all(t, v, 2); got != "a=1 c2 m2 v1" {
		t.Errorf("view's history: %q", got)
	}
	if s.View() == v {
		t.Errorf("View after mutation returned the old view")
	}
}

// etcd resets the limit before fetching only when a sort order is given (or
// a filter): a sort target alone, which implies ascending order, sorts just
// the first limit+1 keys.
func TestRangeSortTargetWithoutOrderAndLimit(t *testing.T) {
	s := New()
	mustPut(t, s, "z", "") // 2
	mustPut(t, s, "y", "") // 3
	mustPut(t, s, "x", "") // 4
	for _, tc := range []struct {
		order pb.RangeRequest_SortOrder
		want  string
	}{
		{pb.RangeRequest_NONE, "y= c3 m3 v1"},
		{pb.RangeRequest_ASCEND, "z= c2 m2 v1"},
	} {
		resp, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, SortTarget: pb.RangeRequest_MOD, SortOrder: tc.order, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got := kvsString(resp.Kvs); got != tc.want || !resp.More || resp.Count != 3 {
			t.Errorf("order %v: %q more %v count %d, want %q more count 3", tc.order, got, resp.More, resp.Count, tc.want)
		}
	}
}

// A txn may delete a key and put it again in one revision: a delete with
// range_end "\x00" passes etcd's duplicate check. The key is then a new
// generation, and compaction at that revision keeps it. (etcd v3.6.16's
// compaction drops its value and a later read of the key is fatal.)
func TestDeleteAndRecreateInOneTxn(t *testing.T) {
	s := New()
	mustPut(t, s, "z", "1") // 2
	req := &pb.TxnRequest{Success: ops(opDel("a", "\x00"), opPut("z", "2"))}
	if err := CheckTxnDuplicates(req); err != nil {
		t.Fatal(err)
	}
	mustTxn(t, s, req) // 3
	if got := all(t, s, 0); got != "z=2 c3 m3 v1" {
		t.Errorf("after txn: %q", got)
	}
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	if got := all(t, s, 3); got != "z=2 c3 m3 v1" {
		t.Errorf("after compaction: %q", got)
	}

	// The other order: put, then a later sibling txn deletes it.
	req = &pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Success: ops(opPut("y", "1"))}), opTxn(&pb.TxnRequest{Success: ops(opDel("y", ""))}))}
	if err := CheckTxnDuplicates(req); err != nil {
		t.Fatal(err)
	}
	mustTxn(t, s, req) // 4
	if got := all(t, s, 4); got != "z=2 c3 m3 v1" {
		t.Errorf("put then delete in one txn: %q", got)
	}
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	if it, ok := s.st.tree.Get(keyItem{key: []byte("y")}); ok {
		t.Errorf("y kept after compaction: %+v", it.revs)
	}
}
