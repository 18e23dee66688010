package server

import (
	"bytes"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/quorum-kv/quorum/server/mvcc"
)

func encodeForTest(t *testing.T, mem *Membership) []byte {
	t.Helper()
	s := mvcc.New()
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := encodeSnapshot(&b, s.View(), snapshotSections{membership: mem}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
