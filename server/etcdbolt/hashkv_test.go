package etcdbolt

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/pkg/v3/traceutil"
	"go.etcd.io/etcd/server/v3/lease"
	"go.etcd.io/etcd/server/v3/storage/backend"
	betesting "go.etcd.io/etcd/server/v3/storage/backend/testing"
	etcdmvcc "go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/server/mvcc"
)

func TestRevisionKeyMatchesEtcd(t *testing.T) {
	for _, c := range []struct {
		main, sub int64
		tomb      bool
	}{{1, 0, false}, {2, 3, true}, {1 << 40, 1<<31 - 1, false}} {
		k := RevisionKey(nil, c.main, c.sub, c.tomb)
		bk := etcdmvcc.BytesToBucketKey(k)
		if bk.Main != c.main || bk.Sub != c.sub || etcdmvcc.IsTombstone(k) != c.tomb {
			t.Errorf("RevisionKey(%d, %d, %v) = %x; etcd reads it as %+v tombstone %v", c.main, c.sub, c.tomb, k, bk.Revision, etcdmvcc.IsTombstone(k))
		}
		main, sub, tomb, err := ParseRevisionKey(k)
		if err != nil || main != c.main || sub != c.sub || tomb != c.tomb {
			t.Errorf("ParseRevisionKey(%x) = %d %d %v %v", k, main, sub, tomb, err)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 16), append(RevisionKey(nil, 1, 1, false), 'x'), []byte("0123456789abcdefgh")} {
		if _, _, _, err := ParseRevisionKey(bad); err == nil {
			t.Errorf("ParseRevisionKey(%x) accepted a malformed key", bad)
		}
	}
}

// TestHashKVEqualsEtcd applies the same random writes and compactions to
// quorumd's store and to etcd's own mvcc store (over its bbolt backend) and
// compares HashKV at every revision after each compaction, and at random
// revisions, including the errors. At a compaction revision etcd answers
// from the hash it stored while compacting (CompactionHashes), so the
// test keeps the same cache. A deviation in any rule of etcd's
// kvHasher (the keep set, the tombstone at the compaction revision, the
// KeyValue encoding) changes some hash.
func TestHashKVEqualsEtcd(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { hashKVDiff(t, seed) })
	}
}

func hashKVDiff(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	bcfg := backend.DefaultBackendConfig(zap.NewNop())
	be, _ := betesting.NewTmpBackendFromCfg(t, bcfg)
	es := etcdmvcc.NewStore(zap.NewNop(), be, &lease.FakeLessor{}, etcdmvcc.StoreConfig{})
	t.Cleanup(func() { es.Close(); be.Close() })
	qs := mvcc.New()
	var cache CompactionHashes
	key := func() string { return fmt.Sprintf("k%02d", rng.IntN(12)) }
	compared := 0
	check := func(rev int64) {
		t.Helper()
		want, _, werr := es.HashStorage().HashByRev(rev)
		got, gerr := HashKV(qs.View(), rev)
		if h, ok := cache.Lookup(rev); ok {
			got, gerr = h, nil
		}
		if !errors.Is(gerr, werr) && !(werr != nil && gerr != nil && werr.Error() == gerr.Error()) {
			t.Fatalf("HashKV(%d): quorumd error %v, etcd error %v", rev, gerr, werr)
		}
		if werr != nil {
			return
		}
		if got.Hash != want.Hash || got.CompactRevision != want.CompactRevision || got.Revision != want.Revision {
			t.Fatalf("HashKV(%d) after %d revisions: quorumd %+v, etcd %+v", rev, qs.Rev(), got, want)
		}
		compared++
	}
	for step := 0; step < 300; step++ {
		switch p := rng.IntN(100); {
		case p < 55: // a txn of distinct puts
			n := 1 + rng.IntN(3)
			seen := map[string]bool{}
			tw := es.Write(traceutil.TODO())
			var ops []*pb.RequestOp
			for range n {
				k := key()
				if seen[k] {
					continue
				}
				seen[k] = true
				v := fmt.Sprintf("v%d", rng.IntN(1000))
				tw.Put([]byte(k), []byte(v), lease.NoLease)
				ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}})
			}
			tw.End()
			if _, err := qs.Txn(&pb.TxnRequest{Success: ops}); err != nil {
				t.Fatal(err)
			}
		case p < 80: // a delete of a key or a range
			k := key()
			var end []byte
			if rng.IntN(3) == 0 {
				end = []byte(key())
			}
			tw := es.Write(traceutil.TODO())
			tw.DeleteRange([]byte(k), end)
			tw.End()
			if _, err := qs.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: end}); err != nil {
				t.Fatal(err)
			}
		case p < 88: // compaction at a random revision above the last
			lo, _ := qs.View().LastCompaction()
			if qs.Rev() <= lo+1 {
				continue
			}
			at := lo + 1 + rng.Int64N(qs.Rev()-lo)
			done, err := es.Compact(traceutil.TODO(), at)
			if err != nil {
				t.Fatalf("etcd compact %d: %v", at, err)
			}
			<-done
			h, err := HashKV(qs.View(), at)
			if err != nil {
				t.Fatalf("quorumd HashKV(%d) before compacting there: %v", at, err)
			}
			cache.Store(h)
			if err := qs.Compact(at); err != nil {
				t.Fatalf("quorumd compact %d: %v", at, err)
			}
			for r := at - 1; r <= qs.Rev()+1; r++ {
				check(r)
			}
		default:
			check(rng.Int64N(qs.Rev() + 2))
		}
	}
	check(0)
	if compared < 20 {
		t.Fatalf("only %d hashes compared", compared)
	}
}
