package server

import (
	"bytes"
	"reflect"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/quorum-kv/quorum/server/mvcc"
)

func alarmReq(action pb.AlarmRequest_AlarmAction, id uint64, t pb.AlarmType) *pb.AlarmRequest {
	return &pb.AlarmRequest{Action: action, MemberID: id, Alarm: t}
}

// alarmSet.apply answers as etcd's applierV3backend.Alarm: activating an
// alarm already active answers it once more and adds nothing; NONE is
// never activated; deactivating what is not active answers no alarms; GET
// filters by type (NONE: all); an unknown action answers nil.
func TestAlarmSetAppliesAsEtcd(t *testing.T) {
	var s alarmSet
	const act, deact, get = pb.AlarmRequest_ACTIVATE, pb.AlarmRequest_DEACTIVATE, pb.AlarmRequest_GET
	steps := []struct {
		req  *pb.AlarmRequest
		want []*pb.AlarmMember // the response's alarms
		list []*pb.AlarmMember // active afterwards
	}{
		{alarmReq(act, 2, pb.AlarmType_NOSPACE), []*pb.AlarmMember{{MemberID: 2, Alarm: pb.AlarmType_NOSPACE}},
			[]*pb.AlarmMember{{MemberID: 2, Alarm: pb.AlarmType_NOSPACE}}},
		{alarmReq(act, 2, pb.AlarmType_NOSPACE), []*pb.AlarmMember{{MemberID: 2, Alarm: pb.AlarmType_NOSPACE}},
			[]*pb.AlarmMember{{MemberID: 2, Alarm: pb.AlarmType_NOSPACE}}},
		{alarmReq(act, 1, pb.AlarmType_NONE), nil, []*pb.AlarmMember{{MemberID: 2, Alarm: pb.AlarmType_NOSPACE}}},
		{alarmReq(act, 1, pb.AlarmType_NOSPACE), []*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_NOSPACE}},
			[]*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 2, Alarm: pb.AlarmType_NOSPACE}}},
		{alarmReq(act, 3, pb.AlarmType_CORRUPT), []*pb.AlarmMember{{MemberID: 3, Alarm: pb.AlarmType_CORRUPT}},
			[]*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 2, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 3, Alarm: pb.AlarmType_CORRUPT}}},
		{alarmReq(get, 0, pb.AlarmType_CORRUPT), []*pb.AlarmMember{{MemberID: 3, Alarm: pb.AlarmType_CORRUPT}},
			[]*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 2, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 3, Alarm: pb.AlarmType_CORRUPT}}},
		{alarmReq(deact, 3, pb.AlarmType_NOSPACE), nil,
			[]*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 2, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 3, Alarm: pb.AlarmType_CORRUPT}}},
		{alarmReq(deact, 2, pb.AlarmType_NOSPACE), []*pb.AlarmMember{{MemberID: 2, Alarm: pb.AlarmType_NOSPACE}},
			[]*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 3, Alarm: pb.AlarmType_CORRUPT}}},
	}
	for i, st := range steps {
		resp := s.apply(st.req)
		if !reflect.DeepEqual(resp.Alarms, st.want) {
			t.Fatalf("step %d %v: answered %v, want %v", i, st.req, resp.Alarms, st.want)
		}
		if got := s.list(pb.AlarmType_NONE); !reflect.DeepEqual(got, st.list) {
			t.Fatalf("step %d %v: active %v, want %v", i, st.req, got, st.list)
		}
	}
	if s.apply(&pb.AlarmRequest{Action: 7}) != nil {
		t.Fatal("an unknown action answered something")
	}
	// The records a snapshot carries restore the same set.
	var r alarmSet
	if err := r.restore(s.records()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.list(pb.AlarmType_NONE), s.list(pb.AlarmType_NONE)) {
		t.Fatalf("restored %v from %v", r.list(pb.AlarmType_NONE), s.records())
	}
	if err := r.restore([]alarmRecord{{MemberID: 1, Alarm: "SOMETHING"}}); err == nil {
		t.Fatal("an unknown alarm type restored")
	}
}

// refuse is etcd's applierV3Corrupt over applierV3Capped: CORRUPT refuses
// every KV and lease request; NOSPACE refuses puts, txns that may put and
// lease grants, not deletes, read-only txns, compaction or revocations.
func TestAlarmRefusesAsEtcdsCappedAndCorruptAppliers(t *testing.T) {
	put := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k")}}
	del := &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}
	txnPut := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{
		RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k")}}}}}}}}}}
	txnDel := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{
		RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}}}}}
	compact := &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 1}}
	grant := &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 1, TTL: 5}}
	revoke := &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 1}}
	alarm := &pb.InternalRaftRequest{Alarm: alarmReq(pb.AlarmRequest_DEACTIVATE, 1, pb.AlarmType_NOSPACE)}
	auth := &pb.InternalRaftRequest{AuthStatus: &pb.AuthStatusRequest{}}
	for _, tc := range []struct {
		name   string
		alarms []pb.AlarmType
		want   map[*pb.InternalRaftRequest]error
	}{
		{"none", nil, map[*pb.InternalRaftRequest]error{}},
		{"NOSPACE", []pb.AlarmType{pb.AlarmType_NOSPACE}, map[*pb.InternalRaftRequest]error{
			put: rpctypes.ErrGRPCNoSpace, txnPut: rpctypes.ErrGRPCNoSpace, grant: rpctypes.ErrGRPCNoSpace}},
		{"CORRUPT", []pb.AlarmType{pb.AlarmType_CORRUPT}, map[*pb.InternalRaftRequest]error{
			put: rpctypes.ErrGRPCCorrupt, del: rpctypes.ErrGRPCCorrupt, txnPut: rpctypes.ErrGRPCCorrupt, txnDel: rpctypes.ErrGRPCCorrupt,
			compact: rpctypes.ErrGRPCCorrupt, grant: rpctypes.ErrGRPCCorrupt, revoke: rpctypes.ErrGRPCCorrupt}},
		{"both", []pb.AlarmType{pb.AlarmType_NOSPACE, pb.AlarmType_CORRUPT}, map[*pb.InternalRaftRequest]error{
			put: rpctypes.ErrGRPCCorrupt, del: rpctypes.ErrGRPCCorrupt, txnPut: rpctypes.ErrGRPCCorrupt, txnDel: rpctypes.ErrGRPCCorrupt,
			compact: rpctypes.ErrGRPCCorrupt, grant: rpctypes.ErrGRPCCorrupt, revoke: rpctypes.ErrGRPCCorrupt}},
	} {
		var s alarmSet
		for _, a := range tc.alarms {
			s.apply(alarmReq(pb.AlarmRequest_ACTIVATE, 9, a))
		}
		for _, r := range []*pb.InternalRaftRequest{put, del, txnPut, txnDel, compact, grant, revoke, alarm, auth} {
			if got := s.refuse(r); got != tc.want[r] {
				t.Errorf("%s: %v refused with %v, want %v", tc.name, r, got, tc.want[r])
			}
		}
	}
}

// The snapshot carries the active alarms (version 5), in records' order;
// a version 4 snapshot (no alarm section) loads with none.
func TestSnapshotCarriesAlarms(t *testing.T) {
	var s alarmSet
	s.apply(alarmReq(pb.AlarmRequest_ACTIVATE, 7, pb.AlarmType_CORRUPT))
	s.apply(alarmReq(pb.AlarmRequest_ACTIVATE, 3, pb.AlarmType_NOSPACE))
	mem := NewMembership(DefaultConfig().InitialCluster, "t")
	var b bytes.Buffer
	if err := encodeSnapshot(&b, mvcc.New().View(), snapshotSections{membership: mem, alarms: s.records()}); err != nil {
		t.Fatal(err)
	}
	c, err := decodeSnapshot(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var r alarmSet
	if err := r.restore(c.alarms); err != nil {
		t.Fatal(err)
	}
	if got, want := r.list(pb.AlarmType_NONE), s.list(pb.AlarmType_NONE); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored alarms %v, want %v", got, want)
	}

	// Version 4: the same layout without the alarm section.
	var v4 bytes.Buffer
	v4.Write(snapMagicV4)
	for _, sec := range []any{mem, []leaseRecord{}, &authRecord{}} {
		if err := writeJSONSection(&v4, sec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mvcc.New().View().WriteTo(&v4); err != nil {
		t.Fatal(err)
	}
	c4, err := decodeSnapshot(v4.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(c4.alarms) != 0 || c4.store == nil {
		t.Fatalf("version 4 snapshot: alarms %v store %v", c4.alarms, c4.store)
	}

	// An alarm type this quorumd does not know is an error, not dropped.
	if err := r.restore([]alarmRecord{{MemberID: 1, Alarm: "FLOOD"}}); err == nil {
		t.Fatal("restore of an unknown alarm type succeeded")
	}
}
