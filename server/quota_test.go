package server

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/storage"
)

// quotaCost is etcd's BackendQuota.Cost, compared on random puts, lease
// grants and nested txns (seed printed).
func TestQuotaCostIsEtcds(t *testing.T) {
	seed := rand.Int63()
	rng := rand.New(rand.NewSource(seed))
	etcd := &storage.BackendQuota{}
	var randTxn func(depth int) *pb.TxnRequest
	randOps := func(depth int) []*pb.RequestOp {
		var ops []*pb.RequestOp
		for i := rng.Intn(4); i > 0; i-- {
			switch rng.Intn(4) {
			case 0:
				ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{
					Key: make([]byte, 1+rng.Intn(30)), Value: make([]byte, rng.Intn(300))}}})
			case 1:
				ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}})
			case 2:
				ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}})
			default:
				if depth < 3 {
					ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: randTxn(depth + 1)}})
				}
			}
		}
		return ops
	}
	randTxn = func(depth int) *pb.TxnRequest {
		return &pb.TxnRequest{Success: randOps(depth), Failure: randOps(depth)}
	}
	for i := 0; i < 500; i++ {
		var r any
		switch rng.Intn(3) {
		case 0:
			r = &pb.PutRequest{Key: make([]byte, 1+rng.Intn(30)), Value: make([]byte, rng.Intn(3000))}
		case 1:
			r = &pb.LeaseGrantRequest{TTL: 5}
		default:
			r = randTxn(0)
		}
		if got, want := quotaCost(r), etcd.Cost(r); got != want {
			t.Fatalf("seed %d: cost of %v is %d, etcd's %d", seed, r, got, want)
		}
	}
}

// On the applier, as etcd's quotaApplierV3 and applierV3Capped: a put
// that does not fit this member's quota is applied but answers "database
// space exceeded" and asks for the NOSPACE alarm; the proposer's result
// waits for it. Once NOSPACE is applied, puts and lease grants are
// refused without being applied, deletes and compaction go on; DbSize
// keeps its high-water mark through the compaction until Defragment
// brings it down to what is in use.
func TestApplierQuotaAndNoSpaceAsEtcd(t *testing.T) {
	r := newApplierRig(t, 1000, 5)
	value := string(make([]byte, 1000))
	const quota = 12_000 + dbBaseBytes
	r.a.db.quota = quota
	idx := uint64(1)
	apply := func(id uint64, rq *pb.InternalRaftRequest) {
		t.Helper()
		ents := r.log(t, idx, req(id, rq))
		idx++
		if err := r.a.applyBatch(applyJob{entries: ents}); err != nil {
			t.Fatal(err)
		}
	}
	var full uint64
	for i := uint64(1); i <= 20 && full == 0; i++ {
		wait := r.results.register(i)
		apply(i, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(fmt.Sprintf("k%02d", i)), Value: []byte(value)}})
		select {
		case res := <-wait:
			if res.err != nil {
				t.Fatalf("put %d: %v", i, res.err)
			}
		default:
			full = i // held back until the alarm is raised
		}
	}
	if full == 0 {
		t.Fatalf("20 puts of 1000 bytes fit a quota of %d", quota)
	}
	// The put was applied; its result comes once the alarm is proposed.
	if v := keyspace(t, r.a.readView().view); !strings.Contains(v, fmt.Sprintf("k%02d=", full)) {
		t.Fatalf("the put over quota was not applied, as etcd applies it: %s", v)
	}
	var rq raiseRequest
	select {
	case rq = <-r.a.raisec:
	default:
		t.Fatal("no NOSPACE alarm asked for")
	}
	wait := r.results.register(full)
	if rq.alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("asked for %v", rq.alarm)
	}
	rq.then()
	if res := <-wait; res.err != rpctypes.ErrGRPCNoSpace {
		t.Fatalf("the put over quota answered %v", res.err)
	}

	apply(100, &pb.InternalRaftRequest{Alarm: alarmReq(pb.AlarmRequest_ACTIVATE, 1, pb.AlarmType_NOSPACE)})
	rev := r.a.store.Rev()
	for id, rq := range map[uint64]*pb.InternalRaftRequest{
		101: {Put: &pb.PutRequest{Key: []byte("small"), Value: []byte("x")}},
		102: {LeaseGrant: &pb.LeaseGrantRequest{ID: 5, TTL: 60}},
	} {
		wait := r.results.register(id)
		apply(id, rq)
		if res := <-wait; res.err != rpctypes.ErrGRPCNoSpace {
			t.Fatalf("request %d with NOSPACE active: %v", id, res.err)
		}
	}
	if r.a.store.Rev() != rev || r.a.lessor.exists(5) {
		t.Fatal("a refused request was applied")
	}
	select {
	case rq := <-r.a.raisec:
		t.Fatalf("asked for %v again with NOSPACE active", rq.alarm)
	default:
	}
	high := r.a.db.total()
	wait = r.results.register(103)
	apply(103, &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k"), RangeEnd: []byte("l")}})
	if res := <-wait; res.err != nil {
		t.Fatalf("delete with NOSPACE active: %v", res.err)
	}
	wait = r.results.register(104)
	apply(104, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: r.a.store.Rev()}})
	if res := <-wait; res.err != nil {
		t.Fatalf("compaction with NOSPACE active: %v", res.err)
	}
	if r.a.db.total() < high || r.a.db.available(&pb.PutRequest{Key: make([]byte, 5000)}, r.a.store.Size()) {
		t.Fatalf("DbSize %d after compaction, was %d: the file does not shrink before a defrag", r.a.db.total(), high)
	}
	d := r.a.defragment()
	t.Logf("defragment: DbSize %d -> %d, in use %d -> %d", d.size1, d.size2, d.inUse1, d.inUse2)
	if d.size1 < high || d.size2 != d.inUse2 || d.size2 != dbBaseBytes+r.a.store.Size() || d.size2 >= d.size1 {
		t.Fatalf("defragment %+v (high-water %d, store %d)", d, high, r.a.store.Size())
	}
	if !r.a.db.available(&pb.PutRequest{Key: make([]byte, 5000)}, r.a.store.Size()) {
		t.Fatal("after defragment a put of 5000 bytes does not fit")
	}
}
