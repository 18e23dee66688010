package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/auth"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/mvcc"
	"github.com/quorum-kv/quorum/server/watch"
)

// applier is a member's state machine: it owns the MVCC store, the
// membership, the conf state and the applied index, and decides when to
// snapshot. Its goroutine, run, is the only writer of all of them: it
// applies the jobs the Raft loop hands it, in log order, delivers each
// request's result to the proposer waiting on this member (by request ID,
// through the waitRegistry), and after every batch publishes an immutable
// read view (readView) and the applied index (waitApplied).
//
// Leases: LeaseGrant and LeaseRevoke requests are applied to the lessor,
// whose replicated part (leases, TTLs, attached keys) only the applier
// changes and the snapshot carries; expiry is the leader proposing
// LeaseRevoke, so it arrives here like any request. A write that changes a
// key's lease is reported by the store (TakeLeaseChanges) and attached or
// detached here.
//
// Watch: the store records every change as a watch event; at the end of
// each batch, once the view is published (so that a watcher's prev_kv
// lookup at an event's revision always finds it), the batch's events go to
// the watchable store (server/watch), which never blocks. A snapshot from
// the leader moves every watcher to catch up from the new store.
//
// Auth: the Auth* requests are applied to etcd's AuthStore over the
// member's authBackend, whose only writer is this goroutine; Put,
// DeleteRange, Txn, LeaseRevoke and the admin requests are checked against
// the user and auth revision in the request's header first (etcd's
// authApplierV3), so every member refuses the same requests. The snapshot
// carries the auth state.
//
// Membership: conf changes are validated against the membership and
// applied to Raft, the membership and the transport's peers in log order
// (membership_apply.go); a snapshot replaces the membership and the peers
// follow it.
type applier struct {
	lg *slog.Logger
	// warningApplyDuration: an apply that takes longer is logged.
	warningApplyDuration time.Duration
	metrics              *serverMetrics
	stopc                <-chan struct{}

	raft        confChanger
	raftStorage *raft.MemoryStorage
	snaps       SnapshotStorage
	releaseLog  func(index uint64)
	results     *waitRegistry
	watches     *watch.Hub // nil: nobody watches

	snapshotCount  uint64
	catchUpEntries uint64

	// Owned by the applier goroutine.
	store         *mvcc.Store
	lessor        *lessor
	auth          auth.AuthStore
	authBackend   *authBackend
	membership    *Membership
	confState     raftpb.ConfState
	appliedIndex  uint64
	applying      uint64          // the index of the entry being applied
	advanced      chan struct{}   // the current job's (applyJob.advanced)
	answers       []pendingAnswer // the current job's, until flushAnswers
	snapshotIndex uint64
	nextSnapshot  time.Time // no snapshot starts before (duty cycle)
	maintenance             // alarms, database size, defragment (alarm.go)

	// For conf changes (membership_apply.go): this member, the membership
	// it started with, the transport's peers, --max-learners, and what to
	// call when this member is removed.
	self        uint64
	bootstrap   *Membership
	peers       peerUpdater
	maxLearners int
	onRemoved   func()

	// The snapshotter: one goroutine at a time.
	snapshotting atomic.Bool
	snapshotDone chan time.Time // when the next snapshot may start
	snapWG       sync.WaitGroup
	// collectc serves collectState (Maintenance.Snapshot and Hash).
	collectc chan chan snapshotSet

	// Published for readers.
	state     atomic.Pointer[readState]
	applyWait *indexWaiter
}

// confChanger is the part of raft.Node the applier needs: a conf change
// takes effect in Raft when it is applied.
type confChanger interface {
	ApplyConfChange(cc raftpb.ConfChangeI) *raftpb.ConfState
}

var _ confChanger = raft.Node(nil)

// appliedState is the state machine as of an applied index: at bootstrap
// an empty store at 0, at restart what the newest snapshot holds.
type appliedState struct {
	store      *mvcc.Store
	membership *Membership
	leases     []leaseRecord
	auth       *authRecord // nil: auth disabled, no users or roles
	alarms     []alarmRecord
	confState  raftpb.ConfState
	index      uint64
}

// readState is what readers see: an immutable view of the keyspace at the
// applied index, and the membership then.
type readState struct {
	view       *mvcc.View
	membership *Membership
	applied    uint64
}

// applierConfig is what an applier is built from; every field is required.
type applierConfig struct {
	// State is where the applier starts; its index is also the last
	// snapshot's.
	State appliedState
	Raft  confChanger
	// RaftStorage is Raft's in-memory storage: the snapshotter registers
	// each snapshot there and compacts the log behind it.
	RaftStorage *raft.MemoryStorage
	Snapshots   SnapshotStorage
	// Lessor is the member's lease table; the applier restores State's
	// leases into it.
	Lessor *lessor
	// Auth is etcd's auth store over AuthBackend, which holds State's auth.
	Auth        auth.AuthStore
	AuthBackend *authBackend
	// ApplyWait is advanced to each applied index (the token provider
	// waits on it too).
	ApplyWait *indexWaiter
	// ReleaseLog lets the durable log drop what a snapshot covers; it may
	// block until the Raft loop takes it or the member stops.
	ReleaseLog func(index uint64)
	// Results receives each request's result, by request ID.
	Results *waitRegistry
	// Watches, if set, gets every batch's events.
	Watches *watch.Hub
	// SnapshotCount is the number of applied entries between snapshots;
	// CatchUpEntries how many the Raft log keeps behind one.
	SnapshotCount  uint64
	CatchUpEntries uint64
	// Self is this member's ID; Bootstrap the membership it started with
	// (for bootstrap conf changes without a context); Peers the transport
	// each applied conf change updates; MaxLearners is --max-learners;
	// OnRemoved is called on the applier goroutine when a conf change
	// (or a snapshot) removes this member; maybe more than once.
	Self        uint64
	Bootstrap   *Membership
	Peers       peerUpdater
	MaxLearners int
	OnRemoved   func()
	// QuotaBackendBytes is --quota-backend-bytes (quota.go); 0 or
	// negative: no quota.
	QuotaBackendBytes int64
	// Stop is closed when the member stops.
	Stop    <-chan struct{}
	Logger  *slog.Logger
	Metrics *serverMetrics
	// WarningApplyDuration is --warning-apply-duration (slowlog.go).
	WarningApplyDuration time.Duration
}

func newApplier(c applierConfig) *applier {
	a := &applier{
		lg: c.Logger, metrics: c.Metrics, stopc: c.Stop, warningApplyDuration: c.WarningApplyDuration,
		raft: c.Raft, raftStorage: c.RaftStorage, snaps: c.Snapshots, releaseLog: c.ReleaseLog, results: c.Results, watches: c.Watches,
		snapshotCount: c.SnapshotCount, catchUpEntries: c.CatchUpEntries,
		store: c.State.store, lessor: c.Lessor, auth: c.Auth, authBackend: c.AuthBackend,
		membership: c.State.membership, confState: c.State.confState,
		self: c.Self, bootstrap: c.Bootstrap, peers: c.Peers, maxLearners: c.MaxLearners, onRemoved: c.OnRemoved,
		appliedIndex: c.State.index, snapshotIndex: c.State.index,
		snapshotDone: make(chan time.Time, 1),
		collectc:     make(chan chan snapshotSet),
		applyWait:    c.ApplyWait,
	}
	a.applyWait.advance(c.State.index)
	a.lessor.restore(c.State.leases, time.Now())
	a.setStore(a.store)
	hs, _, _ := c.RaftStorage.InitialState()
	if err := a.initMaintenance(c.QuotaBackendBytes, c.State.alarms, hs.Commit); err != nil {
		a.lg.Warn("the snapshot's alarms do not load; starting with none", "error", err)
	}
	a.publish()
	return a
}

// setStore makes s the applier's store: leases checked by the lessor,
// events recorded when there are watches.
func (a *applier) setStore(s *mvcc.Store) {
	a.store = s
	s.SetLeaseCheck(a.lessor.exists)
	if a.watches != nil {
		s.RecordEvents()
	}
}

// readView is the latest published state. Any goroutine.
func (a *applier) readView() *readState { return a.state.Load() }

// waitApplied returns a channel closed once the applied index is >= idx.
// Any goroutine.
func (a *applier) waitApplied(idx uint64) <-chan struct{} { return a.applyWait.wait(idx) }

// run applies jobs until the member stops, then waits for a snapshot in
// progress. A snapshot from the leader that cannot be applied is fatal.
func (a *applier) run(jobs <-chan applyJob, fatal func(error)) {
	defer a.snapWG.Wait()
	for {
		select {
		case next := <-a.snapshotDone:
			a.nextSnapshot = next
		case req := <-a.defragc:
			req.done <- a.defragment()
		case reply := <-a.collectc:
			reply <- a.snapshotSet()
		case job := <-jobs:
			if err := a.applyBatch(job); err != nil {
				a.lg.Error("cannot apply snapshot received from the leader", "error", err)
				fatal(err)
				return
			}
		case <-a.stopc:
			return
		}
	}
}

// applyBatch applies one job, publishes the result to readers and starts a
// snapshot when one is due.
func (a *applier) applyBatch(job applyJob) error {
	a.advanced = job.advanced
	defer func() { a.advanced = nil }()
	if !raft.IsEmptySnap(job.snapshot) {
		if err := a.applySnapshot(job.snapshot); err != nil {
			return err
		}
	}
	for i := range job.entries {
		a.applyEntry(&job.entries[i])
	}
	a.publish()
	a.flushAnswers()
	if a.watches != nil {
		a.watches.Notify(a.store.Rev(), a.store.CompactRev(), a.store.TakeEvents())
	}
	a.applyWait.advance(a.appliedIndex)
	a.metrics.proposalsApplied.Set(float64(a.appliedIndex))
	a.metrics.proposalsPending.Set(float64(a.results.pending()))
	a.maybeSnapshot()
	return nil
}

// answer queues res for the proposer waiting on id. The proposers of a
// job's entries are answered together once the job is applied and
// published (flushAnswers), so that a client that has its answer reads its
// write on this member, serializable reads included, as with etcd.
func (a *applier) answer(id uint64, res applyResult) {
	a.answers = append(a.answers, pendingAnswer{id: id, res: res})
}

// pendingAnswer is a proposer's result held until its job is published.
type pendingAnswer struct {
	id  uint64
	res applyResult
}

// flushAnswers answers the current job's proposers: after publish, and, if
// the job holds a conf change, after Raft knows it is applied (see
// applyJob.advanced) or the member stops.
func (a *applier) flushAnswers() {
	if len(a.answers) == 0 {
		return
	}
	if a.advanced != nil {
		select {
		case <-a.advanced:
		case <-a.stopc:
		}
	}
	for i, x := range a.answers {
		a.results.trigger(x.id, x.res)
		a.answers[i] = pendingAnswer{}
	}
	a.answers = a.answers[:0]
}

// publish makes the applier's current state visible to readers.
func (a *applier) publish() {
	a.state.Store(&readState{view: a.store.View(), membership: a.membership.Clone(), applied: a.appliedIndex})
}

func (a *applier) applySnapshot(sn raftpb.Snapshot) error {
	if sn.Metadata.Index <= a.appliedIndex {
		return nil
	}
	c, err := decodeSnapshot(sn.Data)
	if err != nil {
		return fmt.Errorf("snapshot at index %d: %w", sn.Metadata.Index, err)
	}
	store := c.store
	a.membership = c.membership
	a.syncPeers()
	a.lessor.restore(c.leases, time.Now())
	a.authBackend = newAuthBackend(c.auth)
	a.auth.Recover(a.authBackend)
	if err := a.alarms.restore(c.alarms); err != nil {
		return fmt.Errorf("snapshot at index %d: %w", sn.Metadata.Index, err)
	}
	a.setStore(store)
	if a.watches != nil {
		a.watches.Restore(store.Rev(), store.CompactRev())
	}
	a.confState = sn.Metadata.ConfState
	a.appliedIndex, a.snapshotIndex = sn.Metadata.Index, sn.Metadata.Index
	a.lg.Info("restored the keyspace from a snapshot", "snapshot-index", sn.Metadata.Index, "current-rev", store.Rev())
	return nil
}

func (a *applier) applyEntry(e *raftpb.Entry) {
	if e.Index <= a.appliedIndex {
		return
	}
	defer func() { a.appliedIndex = e.Index }()
	switch e.Type {
	case raftpb.EntryNormal:
		if len(e.Data) == 0 { // a new leader's empty entry
			return
		}
		var r pb.InternalRaftRequest
		if err := r.Unmarshal(e.Data); err != nil {
			// Every member would fail the same way on this entry; stopping
			// is the only answer that does not diverge.
			panic(fmt.Sprintf("quorumd: committed entry %d does not decode: %v", e.Index, err))
		}
		a.applying = e.Index
		res := a.applyRequest(&r)
		if r.Header != nil {
			a.deliver(r.Header.ID, res)
		}
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			panic(fmt.Sprintf("quorumd: conf change entry %d does not decode: %v", e.Index, err))
		}
		a.applyConfChange(cc)
	case raftpb.EntryConfChangeV2:
		// quorumd and etcd propose only V1 conf changes; a V2 one changes
		// Raft's configuration and nothing else.
		var cc raftpb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			panic(fmt.Sprintf("quorumd: conf change entry %d does not decode: %v", e.Index, err))
		}
		a.confState = *a.raft.ApplyConfChange(cc)
	}
}

// applyResult is what the applier hands back to the member that proposed a
// request: the response (without header), the error the request failed with,
// and the store revision right after it was applied.
type applyResult struct {
	resp any
	err  error
	rev  int64
}

// applyRequest applies one request deterministically; every member computes
// the same result. One case per kind of InternalRaftRequest; a kind with no
// case fails on every member alike.
func (a *applier) applyRequest(r *pb.InternalRaftRequest) applyResult {
	var res applyResult
	start := time.Now()
	op := applyOpUnknown
	ai := &auth.AuthInfo{}
	if r.Header != nil {
		ai.Username, ai.Revision = r.Header.Username, r.Header.AuthRevision
	}
	fits := a.quotaCheck(r)
	switch {
	case a.alarms.refuse(r) != nil: // etcd's applierV3Corrupt, applierV3Capped
		op = refusedOp(r)
		res.err = a.alarms.refuse(r)
	case r.Alarm != nil:
		op = applyOpAlarm
		res.resp, res.err = a.applyAlarm(r.Alarm)
	case needAdminPermission(r) && a.auth.IsAdminPermitted(ai) != nil:
		op = applyOpAuth
		res.err = a.auth.IsAdminPermitted(ai)
	case r.Put != nil:
		op = applyOpPut
		if res.err = checkPutAuth(a.auth, ai, a.leaseKeys, r.Put); res.err == nil {
			res.resp, res.err = a.store.Put(r.Put)
		}
		a.metrics.putTotal.Inc()
	case r.DeleteRange != nil:
		op = applyOpDeleteRange
		if res.err = checkDeleteAuth(a.auth, ai, r.DeleteRange); res.err == nil {
			res.resp, res.err = a.store.DeleteRange(r.DeleteRange)
		}
		a.metrics.deleteTotal.Inc()
	case r.Txn != nil:
		op = applyOpTxn
		if res.err = checkTxnAuth(a.auth, ai, a.leaseKeys, r.Txn); res.err == nil {
			res.resp, res.err = a.store.Txn(r.Txn)
		}
		if res.err == nil {
			a.metrics.countTxn(res.resp.(*pb.TxnResponse))
		}
	case r.Compaction != nil:
		op = applyOpCompaction
		a.hashBeforeCompaction(r.Compaction.Revision)
		res.err = a.store.Compact(r.Compaction.Revision)
		res.resp = &pb.CompactionResponse{}
	case r.LeaseGrant != nil:
		op = applyOpLeaseGrant
		res.resp, res.err = a.applyLeaseGrant(r.LeaseGrant)
	case r.LeaseRevoke != nil:
		op = applyOpLeaseRevoke
		if res.err = checkLeasePuts(a.auth, ai, a.leaseKeys, r.LeaseRevoke.ID); res.err == nil {
			res.resp, res.err = a.applyLeaseRevoke(r.LeaseRevoke.ID)
		}
	case r.LeaseCheckpoint != nil:
		op = applyOpLeaseCheckpoint
		for _, c := range r.LeaseCheckpoint.Checkpoints {
			a.lessor.checkpoint(c.ID, c.Remaining_TTL, start)
		}
		res.resp = &pb.LeaseCheckpointResponse{}
	case r.ClusterMemberAttrSet != nil:
		op = applyOpMemberAttrSet
		a.applyMemberAttrs(r.ClusterMemberAttrSet)
		res.resp = &struct{}{}
	default:
		var ok bool
		if res.resp, res.err, ok = a.applyAuth(r, ai); ok {
			op = applyOpAuth
		} else {
			res.err = errors.New("quorumd: unsupported request in the log")
		}
	}
	if cs := a.store.TakeLeaseChanges(); cs != nil {
		a.lessor.applyChanges(cs)
	}
	if res.err == nil && !fits { // etcd's quotaApplierV3: applied, yet refused
		res.err = rpctypes.ErrGRPCNoSpace
	}
	a.growDB()
	res.rev = a.store.Rev()
	// etcd counts a compacted revision as success (apply/uber_applier.go).
	success := res.err == nil || errors.Is(res.err, mvcc.ErrCompacted)
	a.metrics.observeApply(op, success, time.Since(start).Seconds())
	a.warnApplied(r, start, res.resp, res.rev, res.err, !success)
	return res
}

// leaseKeys are the keys attached to lease id (none if it does not exist).
func (a *applier) leaseKeys(id int64) []string {
	keys, _ := a.lessor.keys(id)
	return keys
}

// applyAuth applies one of the Auth* requests to the auth store, as etcd's
// applierV3backend with its authApplierV3 checks for UserGet and RoleGet
// (a user may read itself and the roles it has); ok is false for any
// other request. The admin requests were checked by the caller.
func (a *applier) applyAuth(r *pb.InternalRaftRequest, ai *auth.AuthInfo) (resp any, err error, ok bool) {
	as := a.auth
	switch {
	case r.Authenticate != nil:
		// The token's index is this entry's (etcd's consistent index).
		ctx := context.WithValue(context.WithValue(context.Background(),
			auth.AuthenticateParamIndex{}, a.applying), auth.AuthenticateParamSimpleTokenPrefix{}, r.Authenticate.SimpleToken)
		resp, err = as.Authenticate(ctx, r.Authenticate.Name, r.Authenticate.Password)
	case r.AuthEnable != nil:
		if err = as.AuthEnable(); err == nil {
			resp = &pb.AuthEnableResponse{}
		}
	case r.AuthDisable != nil:
		as.AuthDisable()
		resp = &pb.AuthDisableResponse{}
	case r.AuthStatus != nil:
		resp = &pb.AuthStatusResponse{Enabled: as.IsAuthEnabled(), AuthRevision: as.Revision()}
	case r.AuthUserAdd != nil:
		resp, err = as.UserAdd(r.AuthUserAdd)
	case r.AuthUserDelete != nil:
		resp, err = as.UserDelete(r.AuthUserDelete)
	case r.AuthUserChangePassword != nil:
		resp, err = as.UserChangePassword(r.AuthUserChangePassword)
	case r.AuthUserGrantRole != nil:
		resp, err = as.UserGrantRole(r.AuthUserGrantRole)
	case r.AuthUserGet != nil:
		if perr := as.IsAdminPermitted(ai); perr != nil && r.AuthUserGet.Name != ai.Username {
			return nil, perr, true
		}
		resp, err = as.UserGet(r.AuthUserGet)
	case r.AuthUserRevokeRole != nil:
		resp, err = as.UserRevokeRole(r.AuthUserRevokeRole)
	case r.AuthRoleAdd != nil:
		resp, err = as.RoleAdd(r.AuthRoleAdd)
	case r.AuthRoleGrantPermission != nil:
		resp, err = as.RoleGrantPermission(r.AuthRoleGrantPermission)
	case r.AuthRoleGet != nil:
		if perr := as.IsAdminPermitted(ai); perr != nil && !as.HasRole(ai.Username, r.AuthRoleGet.Role) {
			return nil, perr, true
		}
		resp, err = as.RoleGet(r.AuthRoleGet)
	case r.AuthRoleRevokePermission != nil:
		resp, err = as.RoleRevokePermission(r.AuthRoleRevokePermission)
	case r.AuthRoleDelete != nil:
		resp, err = as.RoleDelete(r.AuthRoleDelete)
	case r.AuthUserList != nil:
		resp, err = as.UserList(r.AuthUserList)
	case r.AuthRoleList != nil:
		resp, err = as.RoleList(r.AuthRoleList)
	default:
		return nil, nil, false
	}
	return resp, err, true
}

func (a *applier) applyLeaseGrant(r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	ttl, err := a.lessor.grant(r.ID, r.TTL, time.Now())
	if err != nil {
		return nil, err
	}
	a.metrics.leaseTTLs.Observe(float64(ttl))
	a.metrics.leaseGranted.Inc()
	return &pb.LeaseGrantResponse{ID: r.ID, TTL: ttl}, nil
}

// applyLeaseRevoke deletes every key attached to lease id in one revision
// (one txn, the keys in sorted order on every member, as etcd's Revoke) and
// then the lease.
func (a *applier) applyLeaseRevoke(id int64) (*pb.LeaseRevokeResponse, error) {
	keys, err := a.lessor.keys(id)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		txn := &pb.TxnRequest{Success: make([]*pb.RequestOp, len(keys))}
		for i, k := range keys {
			txn.Success[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{
				RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k)}}}
		}
		if _, err := a.store.Txn(txn); err != nil {
			// Deletes of existing keys without compares cannot fail.
			panic(fmt.Sprintf("quorumd: revoking lease %x: %v", id, err))
		}
	}
	a.lessor.remove(id)
	a.metrics.leaseRevoked.Inc()
	return &pb.LeaseRevokeResponse{}, nil
}

func (a *applier) applyMemberAttrs(r *membershippb.ClusterMemberAttrSetRequest) {
	m := a.membership.Member(r.Member_ID)
	if m == nil || r.MemberAttributes == nil {
		return
	}
	m.Name = r.MemberAttributes.Name
	m.ClientURLs = append([]string(nil), r.MemberAttributes.ClientUrls...)
}

// maybeSnapshot starts a snapshot in the background once --snapshot-count
// entries were applied since the last one. The store's view is an O(1)
// copy-on-write clone, so the applier goes on while it is serialized.
//
// A snapshot costs time proportional to the whole keyspace (etcd's bolt
// file makes its snapshots incremental; ours re-serializes), so under a
// heavy write load the snapshotter is held to a duty cycle: after a
// snapshot that took d, the next starts no sooner than snapshotDutyFactor*d
// after it finished. --snapshot-count still triggers snapshots; a busy
// member just truncates its log a little later.
func (a *applier) maybeSnapshot() {
	if a.appliedIndex-a.snapshotIndex < a.snapshotCount || a.snapshotting.Load() {
		return
	}
	if time.Now().Before(a.nextSnapshot) {
		return
	}
	a.snapshotting.Store(true)
	set := a.snapshotSet()
	idx := set.index
	a.snapshotIndex = idx
	a.snapWG.Add(1)
	go func() {
		defer a.snapWG.Done()
		start := time.Now()
		err := a.saveSnapshot(set.view, set.sections, set.confState, idx)
		took := time.Since(start)
		select {
		case a.snapshotDone <- time.Now().Add(snapshotDutyFactor * took):
		case <-a.stopc:
		}
		a.snapshotting.Store(false)
		if err != nil {
			a.lg.Warn("snapshot failed; will retry after more entries", "applied-index", idx, "error", err)
		}
	}()
}

// snapshotDutyFactor bounds the snapshotter to about one tenth of a core.
const snapshotDutyFactor = 9

// saveSnapshot writes the view to a snapshot at idx, streaming it straight
// into the SnapshotStorage (Create): no copy of the keyspace is built in
// memory, where encoding into a buffer cost four times the encoding itself
// (allocating and faulting in the pages) and kept a whole extra keyspace on
// the heap until the next snapshot. Raft's storage gets the snapshot's
// metadata only; the transport reads the data back when a follower needs
// it. Then Raft's log is compacted to catchUpEntries behind the snapshot
// and the durable log released up to there.
func (a *applier) saveSnapshot(view *mvcc.View, sec snapshotSections, cs raftpb.ConfState, idx uint64) error {
	start := time.Now()
	term, err := a.raftStorage.Term(idx)
	if errors.Is(err, raft.ErrCompacted) || errors.Is(err, raft.ErrUnavailable) {
		return nil // a newer snapshot arrived from the leader meanwhile
	}
	if err != nil {
		return fmt.Errorf("snapshot at %d: term: %w", idx, err)
	}
	n, err := a.snaps.Create(raftpb.SnapshotMetadata{ConfState: cs, Index: idx, Term: term},
		func(w io.Writer) error { return encodeSnapshot(w, view, sec) })
	if err != nil {
		return err
	}
	if _, err := a.raftStorage.CreateSnapshot(idx, &cs, nil); errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil // a newer snapshot arrived from the leader meanwhile
	} else if err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	compactTo := uint64(1)
	if idx > a.catchUpEntries {
		compactTo = idx - a.catchUpEntries
	}
	if first, _ := a.raftStorage.FirstIndex(); compactTo > first {
		if err := a.raftStorage.Compact(compactTo); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("compact raft log: %w", err)
		}
	}
	a.releaseLog(compactTo)
	if err := a.snaps.Purge(); err != nil {
		a.lg.Warn("failed to purge old snapshots", "error", err)
	}
	a.metrics.snapshotSave.Observe(time.Since(start).Seconds())
	a.lg.Info("saved snapshot", "snapshot-index", idx, "bytes", n, "took", time.Since(start))
	return nil
}
