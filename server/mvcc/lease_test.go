package mvcc

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func changesString(cs []LeaseChange) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("%s:%d>%d ", c.Key, c.Old, c.New)
	}
	return s
}

// The store reports every key whose lease changed, and only those; a
// refused lease writes nothing.
func TestStoreReportsLeaseChangesAndChecksLeases(t *testing.T) {
	s := New()
	s.SetLeaseCheck(func(id int64) bool { return id == 5 || id == 6 })
	put := func(p *pb.PutRequest) error { _, err := s.Put(p); return err }
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"put without lease", func() error { return put(&pb.PutRequest{Key: []byte("a"), Value: []byte("1")}) }, ""},
		{"attach", func() error { return put(&pb.PutRequest{Key: []byte("a"), Value: []byte("2"), Lease: 5}) }, "a:0>5 "},
		{"same lease", func() error { return put(&pb.PutRequest{Key: []byte("a"), Value: []byte("3"), Lease: 5}) }, ""},
		{"ignore_lease keeps it", func() error { return put(&pb.PutRequest{Key: []byte("a"), Value: []byte("4"), IgnoreLease: true}) }, ""},
		{"move", func() error { return put(&pb.PutRequest{Key: []byte("a"), Value: []byte("5"), Lease: 6}) }, "a:5>6 "},
		{"detach by put", func() error { return put(&pb.PutRequest{Key: []byte("a"), Value: []byte("6")}) }, "a:6>0 "},
		{"txn attach two", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Lease: 5}}},
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Lease: 5}}},
			}})
			return err
		}, "b:0>5 c:0>5 "},
		{"delete detaches", func() error {
			_, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("b"), RangeEnd: []byte("d")})
			return err
		}, "b:5>0 c:5>0 "},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := changesString(s.TakeLeaseChanges()); got != st.want {
			t.Errorf("%s: changes %q, want %q", st.name, got, st.want)
		}
	}
	rev := s.Rev()
	if err := put(&pb.PutRequest{Key: []byte("z"), Lease: 9}); !errors.Is(err, ErrLeaseNotFound) {
		t.Errorf("put with a missing lease: %v, want ErrLeaseNotFound", err)
	}
	_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("y"), Lease: 5}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("z"), Lease: 9}}},
	}})
	if !errors.Is(err, ErrLeaseNotFound) {
		t.Errorf("txn with a missing lease: %v, want ErrLeaseNotFound", err)
	}
	if s.Rev() != rev || s.TakeLeaseChanges() != nil {
		t.Errorf("refused writes changed the store: rev %d (was %d)", s.Rev(), rev)
	}
}
