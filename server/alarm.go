package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/dustin/go-humanize"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/quorum-kv/quorum/server/etcdbolt"
)

// Alarms, as etcd's (etcdserver/api/v3alarm, etcdserver/apply): a set of
// (member ID, alarm type) pairs that is replicated state. Every change is
// an InternalRaftRequest.Alarm applied on every member (ACTIVATE adds the
// pair, DEACTIVATE removes it; GET goes through Raft too, as etcd's
// raftRequestOnce, so `etcdctl alarm list` is linearizable); the snapshot
// carries the set (alarmRecord). With a NOSPACE alarm active the applier
// refuses puts, txns with puts and lease grants (etcd's applierV3Capped);
// with CORRUPT active it refuses every KV and lease request (etcd's
// applierV3Corrupt). The set is the applier's; readers see the copy it
// publishes after each change.

// alarmRecord is one active alarm in a JSON-friendly form: what a
// snapshot must carry (as a JSON section, in the order records returns)
// for alarms to survive restarts and snapshots sent to followers.
type alarmRecord struct {
	MemberID uint64 `json:"member_id"`
	// Alarm is the alarm type's name (pb.AlarmType: "NOSPACE", "CORRUPT").
	Alarm string `json:"alarm"`
}

// alarmSet is the member's active alarms. Owned by the applier goroutine;
// any goroutine may call list.
type alarmSet struct {
	active []*pb.AlarmMember // sorted by (alarm, member ID); never modified in place
	pub    atomic.Pointer[[]*pb.AlarmMember]
}

// restore replaces the set with recs (a snapshot's). Unknown alarm names
// are an error: a snapshot from a newer quorumd.
func (s *alarmSet) restore(recs []alarmRecord) error {
	var ms []*pb.AlarmMember
	for _, r := range recs {
		t, ok := pb.AlarmType_value[r.Alarm]
		if !ok || pb.AlarmType(t) == pb.AlarmType_NONE {
			return fmt.Errorf("alarm record %+v: unknown alarm type %q", r, r.Alarm)
		}
		ms = insertAlarm(ms, &pb.AlarmMember{MemberID: r.MemberID, Alarm: pb.AlarmType(t)})
	}
	s.set(ms)
	return nil
}

// records is the set in the form a snapshot carries it.
func (s *alarmSet) records() []alarmRecord {
	recs := make([]alarmRecord, 0, len(s.active))
	for _, m := range s.active {
		recs = append(recs, alarmRecord{MemberID: m.MemberID, Alarm: m.Alarm.String()})
	}
	return recs
}

func (s *alarmSet) set(ms []*pb.AlarmMember) {
	s.active = ms
	s.pub.Store(&ms)
}

// list returns the active alarms of type t (every type for NONE), as
// etcd's AlarmStore.Get. The slice and its elements are shared: callers
// must not modify them. Any goroutine.
func (s *alarmSet) list(t pb.AlarmType) []*pb.AlarmMember {
	p := s.pub.Load()
	if p == nil {
		return nil
	}
	if t == pb.AlarmType_NONE {
		return *p
	}
	var out []*pb.AlarmMember
	for _, m := range *p {
		if m.Alarm == t {
			out = append(out, m)
		}
	}
	return out
}

// has reports whether an alarm of type t is active. Applier goroutine.
func (s *alarmSet) has(t pb.AlarmType) bool {
	for _, m := range s.active {
		if m.Alarm == t {
			return true
		}
	}
	return false
}

func alarmLess(a, b *pb.AlarmMember) int {
	if a.Alarm != b.Alarm {
		return int(a.Alarm) - int(b.Alarm)
	}
	switch {
	case a.MemberID < b.MemberID:
		return -1
	case a.MemberID > b.MemberID:
		return 1
	}
	return 0
}

// insertAlarm returns ms with m added in order (a new slice), or ms itself
// if the pair is already there.
func insertAlarm(ms []*pb.AlarmMember, m *pb.AlarmMember) []*pb.AlarmMember {
	i, found := slices.BinarySearchFunc(ms, m, alarmLess)
	if found {
		return ms
	}
	return slices.Insert(slices.Clone(ms), i, m)
}

// apply is etcd's applierV3backend.Alarm: ACTIVATE of NONE and DEACTIVATE
// of an alarm that is not active change nothing and answer no alarms; an
// unknown action answers nothing at all. Applier goroutine.
func (s *alarmSet) apply(r *pb.AlarmRequest) *pb.AlarmResponse {
	resp := &pb.AlarmResponse{}
	switch r.Action {
	case pb.AlarmRequest_GET:
		resp.Alarms = s.list(r.Alarm)
	case pb.AlarmRequest_ACTIVATE:
		if r.Alarm == pb.AlarmType_NONE {
			break
		}
		m := &pb.AlarmMember{MemberID: r.MemberID, Alarm: r.Alarm}
		if i, found := slices.BinarySearchFunc(s.active, m, alarmLess); found {
			m = s.active[i] // etcd answers the alarm already there
		} else {
			s.set(insertAlarm(s.active, m))
		}
		resp.Alarms = append(resp.Alarms, m)
	case pb.AlarmRequest_DEACTIVATE:
		m := &pb.AlarmMember{MemberID: r.MemberID, Alarm: r.Alarm}
		i, found := slices.BinarySearchFunc(s.active, m, alarmLess)
		if !found {
			break
		}
		m = s.active[i]
		s.set(slices.Delete(slices.Clone(s.active), i, i+1))
		resp.Alarms = append(resp.Alarms, m)
	default:
		return nil
	}
	return resp
}

// refuse is etcd's applierV3Corrupt and applierV3Capped in front of the
// applier (CORRUPT checked first, as etcd's chain): the error r fails
// with on every member while the alarms are active, or nil; the errors
// are etcd's wire errors for its ErrCorrupt and ErrNoSpace. Applier
// goroutine.
func (s *alarmSet) refuse(r *pb.InternalRaftRequest) error {
	if len(s.active) == 0 {
		return nil
	}
	if s.has(pb.AlarmType_CORRUPT) {
		if r.Put != nil || r.Range != nil || r.DeleteRange != nil || r.Txn != nil ||
			r.Compaction != nil || r.LeaseGrant != nil || r.LeaseRevoke != nil {
			return rpctypes.ErrGRPCCorrupt
		}
	}
	if s.has(pb.AlarmType_NOSPACE) {
		if r.Put != nil || r.LeaseGrant != nil || (r.Txn != nil && quotaCost(r.Txn) > 0) {
			return rpctypes.ErrGRPCNoSpace
		}
	}
	return nil
}

// alarms are the member's active alarms, as etcd's Server.Alarms. Any
// goroutine; the slice is shared, not to be modified.
func (s *Server) alarms() []*pb.AlarmMember { return s.app.alarms.list(pb.AlarmType_NONE) }

// raiseAlarm proposes ACTIVATE of alarm t for member id through Raft and
// waits for it to be applied, as etcd's quotaAlarmer and
// triggerCorruptAlarm (which ignore the outcome: a failed proposal is
// retried by the next request or check that finds the condition again).
func (s *Server) raiseAlarm(ctx context.Context, id uint64, t pb.AlarmType) error {
	_, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
		MemberID: id, Action: pb.AlarmRequest_ACTIVATE, Alarm: t,
	}})
	if err != nil {
		s.lg.Warn("failed to raise alarm", "alarm", t.String(), "member-id", idString(id), "error", err)
	}
	return err
}

// raiseLoop proposes the alarms the applier asks for (a request that
// failed with "database space exceeded" when no NOSPACE alarm was active:
// etcd's applyEntryNormal raises it from its own goroutine) until the
// member stops. Each request's result goes to its proposer once the alarm
// is applied, as etcd's, so that a client that saw the error finds the
// alarm in `etcdctl alarm list`.
func (s *Server) raiseLoop() {
	for {
		select {
		case rq := <-s.app.raisec:
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.requestTimeout())
			_ = s.raiseAlarm(ctx, s.id, rq.alarm)
			cancel()
			if rq.then != nil {
				rq.then()
			}
		case <-s.stopc:
			return
		}
	}
}

// raiseRequest is the applier asking for an alarm for this member; then
// (optional) runs once the proposal is done.
type raiseRequest struct {
	alarm pb.AlarmType
	then  func()
}

// maintenance is the applier's share of the maintenance service: the
// alarms, the database size model (quota.go), and the channels through
// which it asks for alarms (raisec, read by Server.raiseLoop) and takes
// Defragment requests (defragc, defrag.go).
type maintenance struct {
	alarms  alarmSet
	db      dbSize
	raisec  chan raiseRequest
	defragc chan defragRequest
	// replayedTo is the commit index the member restarted with: entries up
	// to it were applied before (etcd's consistent index keeps it from
	// applying them again), so their failures raise no alarm now.
	replayedTo uint64
	// compactionHashes are the hashes taken before the last compactions
	// (hashkv.go).
	compactionHashes etcdbolt.CompactionHashes
}

// initMaintenance sets the applier's maintenance state up for its store
// under quota (--quota-backend-bytes) with the alarms recs, for a member
// whose log was committed up to replayedTo when it started.
func (a *applier) initMaintenance(quota int64, recs []alarmRecord, replayedTo uint64) error {
	a.db.quota = quota
	a.replayedTo = replayedTo
	a.db.high.Store(0) // DbSize is what the store holds (dbSize's readers take the larger)
	a.raisec = make(chan raiseRequest, 64)
	a.defragc = make(chan defragRequest)
	return a.alarms.restore(recs)
}

// applyAlarm applies an Alarm request. Applier goroutine.
func (a *applier) applyAlarm(r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp := a.alarms.apply(r)
	if resp != nil && r.Action != pb.AlarmRequest_GET && len(resp.Alarms) > 0 {
		verb := "activated"
		if r.Action == pb.AlarmRequest_DEACTIVATE {
			verb = "deactivated"
		}
		a.lg.Warn("alarm "+verb, "alarm", r.Alarm.String(), "member-id", idString(r.MemberID))
	}
	return resp, nil
}

// quotaCheck is etcd's quotaApplierV3, before r is applied: whether r (a
// Put, Txn or LeaseGrant) fits this member's quota. Applier goroutine.
func (a *applier) quotaCheck(r *pb.InternalRaftRequest) bool {
	q := quotaRequest(r)
	return q == nil || a.db.available(q, a.store.Size())
}

// deliver hands res to the proposer of request id, as etcd's
// applyEntryNormal: a request that failed with "database space exceeded"
// while no NOSPACE alarm is active first has the alarm raised for this
// member, from raiseLoop, and its result follows once that is done. Every
// member does this for the requests it applies, but not for those it
// applies again at restart (up to replayedTo): a replayed failure would
// raise again an alarm that was raised and perhaps disarmed since.
// Applier goroutine.
func (a *applier) deliver(id uint64, res applyResult) {
	if !errors.Is(res.err, rpctypes.ErrGRPCNoSpace) || a.alarms.has(pb.AlarmType_NOSPACE) || a.applying <= a.replayedTo {
		a.answer(id, res)
		return
	}
	a.lg.Warn("message exceeded backend quota; raising alarm", "quota-size-bytes", a.db.quota,
		"quota-size", humanize.Bytes(uint64(max(a.db.quota, 0))), "error", res.err)
	select {
	case a.raisec <- raiseRequest{alarm: pb.AlarmType_NOSPACE, then: func() { a.results.trigger(id, res) }}:
	default: // raiseLoop is behind: the alarms it is raising will do
		a.answer(id, res)
	}
}
