package server

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// confRecorder is the applier's raft.Node for these tests: it applies conf
// changes to a ConfState of its own, as Raft would.
type confRecorder struct{ cs raftpb.ConfState }

func (c *confRecorder) ApplyConfChange(cc raftpb.ConfChangeI) *raftpb.ConfState {
	for _, ch := range cc.AsV2().Changes {
		switch ch.Type {
		case raftpb.ConfChangeAddNode:
			c.cs.Voters = append(c.cs.Voters, ch.NodeID)
		case raftpb.ConfChangeRemoveNode:
			var vs []uint64
			for _, v := range c.cs.Voters {
				if v != ch.NodeID {
					vs = append(vs, v)
				}
			}
			c.cs.Voters = vs
		}
	}
	out := c.cs
	out.Voters = append([]uint64(nil), c.cs.Voters...)
	return &out
}

// applierRig is an applier over the twins, not running: the tests call
// applyBatch themselves, as the applier goroutine would.
type applierRig struct {
	a        *applier
	conf     *confRecorder
	disk     *memDisk
	storage  *raft.MemoryStorage
	results  *waitRegistry
	mu       sync.Mutex
	released []uint64
}

func newApplierRig(t *testing.T, snapshotCount, catchUp uint64) *applierRig {
	cfg := DefaultConfig()
	r := &applierRig{conf: &confRecorder{}, disk: newMemDisk(), storage: raft.NewMemoryStorage(), results: newWaitRegistry()}
	stopc := make(chan struct{})
	t.Cleanup(func() { close(stopc) })
	ap, err := newAuthParts(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	as, authBe := newAuthStore(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ap, nil)
	r.a = newApplier(applierConfig{
		State: appliedState{store: mvcc.New(), membership: NewMembership(cfg.InitialCluster, cfg.InitialClusterToken)},
		Auth:  as, AuthBackend: authBe, ApplyWait: ap.applyWait,
		Raft: r.conf, RaftStorage: r.storage, Snapshots: memSnapshots{r.disk}, Lessor: newLessor(2, 0),
		ReleaseLog: func(i uint64) { r.mu.Lock(); r.released = append(r.released, i); r.mu.Unlock() },
		Results:    r.results, SnapshotCount: snapshotCount, CatchUpEntries: catchUp,
		Stop: stopc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: newServerMetrics(),
	})
	return r
}

// log makes entries 1.. of term 1 from the given payloads and appends them
// to Raft's storage, as the Raft loop would have before they commit.
func (r *applierRig) log(t *testing.T, first uint64, payloads ...any) []raftpb.Entry {
	t.Helper()
	var ents []raftpb.Entry
	for i, p := range payloads {
		e := raftpb.Entry{Term: 1, Index: first + uint64(i)}
		var err error
		switch p := p.(type) {
		case nil: // a new leader's empty entry
		case *pb.InternalRaftRequest:
			e.Data, err = p.Marshal()
		case raftpb.ConfChange:
			e.Type = raftpb.EntryConfChange
			e.Data, err = p.Marshal()
		default:
			t.Fatalf("payload %T", p)
		}
		if err != nil {
			t.Fatal(err)
		}
		ents = append(ents, e)
	}
	if err := r.storage.Append(ents); err != nil {
		t.Fatal(err)
	}
	return ents
}

func req(id uint64, r *pb.InternalRaftRequest) *pb.InternalRaftRequest {
	r.Header = &pb.RequestHeader{ID: id}
	return r
}

func put(id uint64, k, v string) *pb.InternalRaftRequest {
	return req(id, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}})
}

// keyspace lists every key of the view as key=value@modRevision.
func keyspace(t *testing.T, v *mvcc.View) string {
	t.Helper()
	resp, err := v.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, kv := range resp.Kvs {
		s = append(s, fmt.Sprintf("%s=%s@%d", kv.Key, kv.Value, kv.ModRevision))
	}
	return strings.Join(s, " ")
}

// TestApplierAppliesEntriesInOrderAndAnswersProposers applies one batch of
// every kind of entry and checks the store, the membership, the conf state,
// the applied index and the result each proposer gets.
func TestApplierAppliesEntriesInOrderAndAnswersProposers(t *testing.T) {
	r := newApplierRig(t, 1000, 5)
	me := r.a.membership.Members[0].ID
	ents := r.log(t, 1,
		nil,
		raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: me},
		put(101, "a", "1"),
		put(102, "b", "2"),
		req(103, &pb.InternalRaftRequest{Txn: &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
				TargetUnion: &pb.Compare_Value{Value: []byte("1")}}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Value: []byte("3")}}}},
		}}),
		req(0, &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID: me, MemberAttributes: &membershippb.Attributes{Name: "renamed", ClientUrls: []string{"http://127.0.0.1:9"}}}}),
		req(104, &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("b")}}),
		req(105, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 3}}),
		req(106, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 10}}),
		req(107, &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: []*pb.LeaseCheckpoint{{ID: 7, Remaining_TTL: 4}}}}),
		req(108, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{Enabled: true, Ver: "3.5.0"}}),
	)
	waits := map[uint64]<-chan applyResult{}
	for _, id := range []uint64{101, 102, 103, 104, 105, 106, 107, 108, 999} {
		waits[id] = r.results.register(id)
	}
	if err := r.a.applyBatch(applyJob{entries: ents}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		id      uint64
		rev     int64
		resp    string
		errText string
	}{
		{101, 2, "*etcdserverpb.PutResponse", ""},
		{102, 3, "*etcdserverpb.PutResponse", ""},
		{103, 4, "*etcdserverpb.TxnResponse", ""},
		{104, 5, "*etcdserverpb.DeleteRangeResponse", ""},
		{105, 5, "*etcdserverpb.CompactionResponse", ""},
		{106, 5, "*etcdserverpb.LeaseGrantResponse", ""},
		{107, 5, "*etcdserverpb.LeaseCheckpointResponse", ""},
		// No downgrades: the request fails on every member alike.
		{108, 5, "<nil>", "unsupported request"},
	}
	for _, tt := range tests {
		select {
		case res := <-waits[tt.id]:
			if res.rev != tt.rev || fmt.Sprintf("%T", res.resp) != tt.resp ||
				(tt.errText == "") != (res.err == nil) || (res.err != nil && !strings.Contains(res.err.Error(), tt.errText)) {
				t.Errorf("request %d: rev %d, %T, err %v; want rev %d, %s, err %q", tt.id, res.rev, res.resp, res.err, tt.rev, tt.resp, tt.errText)
			}
		default:
			t.Errorf("request %d: no result delivered", tt.id)
		}
	}
	select {
	case res := <-waits[999]:
		t.Errorf("a request that is not in the log got a result: %+v", res)
	default:
	}
	if txn := mustResult(t, r, 103); txn != nil {
		t.Errorf("txn result was delivered twice")
	}

	st := r.a.readView()
	if st.applied != 11 || r.a.appliedIndex != 11 {
		t.Errorf("applied index: published %d, applier %d; want 11", st.applied, r.a.appliedIndex)
	}
	if recs := r.a.lessor.records(); len(recs) != 1 || recs[0].RemainingTTL != 4 {
		t.Errorf("lease 7 after its checkpoint: %+v, want remaining TTL 4", recs)
	}
	if got, want := keyspace(t, st.view), "a=1@2 c=3@4"; got != want {
		t.Errorf("keyspace %q, want %q", got, want)
	}
	if m := st.membership.Member(me); m.Name != "renamed" || len(m.ClientURLs) != 1 {
		t.Errorf("member attributes not applied: %+v", m)
	}
	if len(r.a.confState.Voters) != 1 || r.a.confState.Voters[0] != me {
		t.Errorf("conf state %v, want voters [%x]", r.a.confState, me)
	}
	select {
	case <-r.a.waitApplied(9):
	default:
		t.Error("waitApplied(9) not released after index 9 was applied")
	}

	// Entries at or below the applied index (Raft re-delivers them after a
	// restart from a snapshot) change nothing and answer no one.
	again := r.results.register(101)
	if err := r.a.applyBatch(applyJob{entries: ents[2:4]}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-again:
		t.Errorf("a re-delivered entry answered its proposer again: %+v", res)
	default:
	}
	if got := keyspace(t, r.a.readView().view); got != "a=1@2 c=3@4" {
		t.Errorf("re-delivered entries changed the keyspace: %q", got)
	}
}

// mustResult returns a result still pending for id, or nil.
func mustResult(t *testing.T, r *applierRig, id uint64) *applyResult {
	select {
	case res := <-r.results.register(id):
		return &res
	default:
		r.results.cancel(id)
		return nil
	}
}

// TestApplierSnapshotsEverySnapshotCountEntries pins the snapshot policy:
// after SnapshotCount entries the applier snapshots its view in the
// background, registers it with Raft's storage, compacts Raft's log to
// CatchUpEntries behind it and releases the durable log up to there.
func TestApplierSnapshotsEverySnapshotCountEntries(t *testing.T) {
	r := newApplierRig(t, 4, 2)
	if err := r.a.applyBatch(applyJob{entries: r.log(t, 1, put(1, "a", "1"), put(2, "b", "2"), put(3, "c", "3"))}); err != nil {
		t.Fatal(err)
	}
	r.a.snapWG.Wait()
	if sn, _, _ := r.disk.contents(); sn != nil {
		t.Fatalf("snapshot at %d after 3 of 4 entries", sn.Metadata.Index)
	}
	if err := r.a.applyBatch(applyJob{entries: r.log(t, 4, put(4, "d", "4"), put(5, "e", "5"))}); err != nil {
		t.Fatal(err)
	}
	r.a.snapWG.Wait()
	sn, _, _ := r.disk.contents()
	if sn == nil || sn.Metadata.Index != 5 || sn.Metadata.Term != 1 {
		t.Fatalf("snapshot %+v, want one at 1/5", sn)
	}
	c, err := decodeSnapshot(sn.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keyspace(t, c.store.View()), keyspace(t, r.a.readView().view); got != want || c.membership.ClusterID != r.a.membership.ClusterID {
		t.Errorf("snapshot holds %q, the applier %q", got, want)
	}
	if rs, _ := r.storage.Snapshot(); rs.Metadata.Index != 5 || len(rs.Data) != 0 {
		t.Errorf("Raft's storage has snapshot %d with %d bytes of data; want 5 with none (metadata only)", rs.Metadata.Index, len(rs.Data))
	}
	if first, _ := r.storage.FirstIndex(); first != 4 {
		t.Errorf("Raft's log starts at %d, want 4 (compacted to 5-2=3)", first)
	}
	r.mu.Lock()
	released := fmt.Sprint(r.released)
	r.mu.Unlock()
	if released != "[3]" {
		t.Errorf("released the durable log to %s, want [3]", released)
	}
	select {
	case <-r.a.snapshotDone: // the duty cycle's next start, for the loop
	default:
		t.Error("the snapshotter did not report when the next snapshot may start")
	}
}

// TestApplierRestoresSnapshotFromLeader hands the applier a snapshot
// received from the leader and the entries after it: the keyspace,
// membership and conf state are replaced, and a stale snapshot is ignored.
func TestApplierRestoresSnapshotFromLeader(t *testing.T) {
	r := newApplierRig(t, 1000, 5)
	if err := r.a.applyBatch(applyJob{entries: r.log(t, 1, put(1, "old", "1"))}); err != nil {
		t.Fatal(err)
	}
	leader := mvcc.New()
	for _, k := range []string{"x", "y"} {
		if _, err := leader.Put(&pb.PutRequest{Key: []byte(k), Value: []byte("L")}); err != nil {
			t.Fatal(err)
		}
	}
	mem := r.a.membership.Clone()
	mem.Members[0].Name = "from-leader"
	var data bytes.Buffer
	if err := encodeSnapshot(&data, leader.View(), snapshotSections{membership: mem}); err != nil {
		t.Fatal(err)
	}
	sn := raftpb.Snapshot{Data: data.Bytes(), Metadata: raftpb.SnapshotMetadata{
		Term: 2, Index: 20, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	after := []raftpb.Entry{{Term: 2, Index: 21}}
	after[0].Data, _ = put(7, "z", "after").Marshal()
	w := r.results.register(7)
	if err := r.a.applyBatch(applyJob{snapshot: sn, entries: after}); err != nil {
		t.Fatal(err)
	}
	st := r.a.readView()
	if got, want := keyspace(t, st.view), "x=L@2 y=L@3 z=after@4"; got != want {
		t.Errorf("keyspace %q, want %q", got, want)
	}
	if st.applied != 21 || st.membership.Members[0].Name != "from-leader" || len(r.a.confState.Voters) != 3 {
		t.Errorf("applied %d, member %q, conf state %v", st.applied, st.membership.Members[0].Name, r.a.confState)
	}
	if res := <-w; res.rev != 4 {
		t.Errorf("request after the snapshot: rev %d, want 4", res.rev)
	}
	stale := sn
	stale.Metadata.Index = 15
	stale.Data = []byte("not even a snapshot")
	if err := r.a.applyBatch(applyJob{snapshot: stale}); err != nil {
		t.Errorf("a snapshot older than the applied index: %v, want it ignored", err)
	}
	bad := sn
	bad.Metadata.Index = 30
	bad.Data = []byte("not even a snapshot")
	if err := r.a.applyBatch(applyJob{snapshot: bad}); err == nil {
		t.Error("a damaged snapshot from the leader was applied")
	}
}
