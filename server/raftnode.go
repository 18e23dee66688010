package server

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/internal/etcdlog"
)

// raftNode is a member's Raft: the raft.Node, Raft's in-memory storage
// (raft.MemoryStorage), the durable log and snapshots, and the transport.
// Its goroutine, run, is the Raft loop, the only user of the LogStorage and
// of Transport.Send. It hands committed entries to the applier through
// apply() and read states to the read loop through readStates(), and
// publishes the leader, term and commit index in status.
type raftNode struct {
	lg        *slog.Logger
	id        uint64
	node      raft.Node
	storage   *raft.MemoryStorage
	log       LogStorage
	snaps     SnapshotStorage
	transport Transport
	status    *raftStatus
	metrics   *serverMetrics
	heartbeat time.Duration
	stopc     <-chan struct{}

	applyc     chan applyJob
	readStatec chan raft.ReadState
	releasec   chan uint64
}

// applyJob is one Ready's worth of work for the applier, in log order: a
// snapshot received from the leader (or an empty one), then the newly
// committed entries. The applier owns the slices.
//
// advanced, when not nil, is closed once Raft has been told (Advance) that
// the entries are applied. A job with a conf change carries one: Raft drops
// a conf change proposed while an earlier one is not yet applied as far as
// it knows, so the applier answers a conf change's proposer only after
// Advance, and the proposer's next change is not silently dropped (which
// etcd's leader risks, its proposer then timing out).
type applyJob struct {
	snapshot raftpb.Snapshot
	entries  []raftpb.Entry
	advanced chan struct{}
}

// hasConfChange reports whether ents hold a conf change.
func hasConfChange(ents []raftpb.Entry) bool {
	for i := range ents {
		if ents[i].Type == raftpb.EntryConfChange || ents[i].Type == raftpb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}

// raftNodeConfig is what a raftNode is built from; every field is required.
type raftNodeConfig struct {
	ID uint64
	// Node is the started raft.Node and Storage the MemoryStorage it was
	// configured with.
	Node      raft.Node
	Storage   *raft.MemoryStorage
	Log       LogStorage
	Snapshots SnapshotStorage
	// Transport delivers peers' messages to Node.
	Transport Transport
	// Heartbeat is the tick interval.
	Heartbeat time.Duration
	// Started is when the member started: leaderless since then.
	Started time.Time
	// Stop is closed when the member stops.
	Stop    <-chan struct{}
	Logger  *slog.Logger
	Metrics *serverMetrics
}

func newRaftNode(c raftNodeConfig) *raftNode {
	return &raftNode{
		lg: c.Logger, id: c.ID, node: c.Node, storage: c.Storage, log: c.Log, snaps: c.Snapshots,
		transport: c.Transport, status: newRaftStatus(c.ID, c.Started, c.Logger, c.Metrics),
		metrics: c.Metrics, heartbeat: c.Heartbeat, stopc: c.Stop,
		applyc:     make(chan applyJob, 64),
		readStatec: make(chan raft.ReadState, 1),
		releasec:   make(chan uint64, 4),
	}
}

// apply is where the applier takes committed entries, in log order.
func (r *raftNode) apply() <-chan applyJob { return r.applyc }

// readStates is where the read loop takes the answers to its ReadIndex
// requests. It holds the latest only: a stale state is dropped.
func (r *raftNode) readStates() <-chan raft.ReadState { return r.readStatec }

// releaseLogTo asks the Raft loop to let the log drop what only entries
// before index need (a snapshot covers them). It blocks until the loop
// takes it or the member stops.
func (r *raftNode) releaseLogTo(index uint64) {
	select {
	case r.releasec <- index:
	case <-r.stopc:
	}
}

// run is the Raft loop: it ticks the node every heartbeat and handles each
// Ready, until the member stops. A failure to persist is fatal: it is
// logged at zap's fatal level, as etcd's raftNode logs it (lg.Fatal "failed
// to save Raft hard state and entries", "failed to save Raft snapshot"),
// without exiting from inside the logger; it is reported to fatal and the
// loop waits for the stop.
func (r *raftNode) run(fatal func(error)) {
	ticker := time.NewTicker(r.heartbeat)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			r.node.Tick()
		case rd := <-r.node.Ready():
			if err := r.handleReady(rd); err != nil {
				r.lg.Log(context.Background(), etcdlog.LevelFatal, "raft loop failed; the member must stop", "error", err)
				fatal(err)
				<-r.stopc
				return
			}
		case idx := <-r.releasec:
			if err := r.log.ReleaseTo(idx); err != nil {
				r.lg.Warn("failed to release old wal segments", "error", err)
			}
		case <-r.stopc:
			return
		}
	}
}

// handleReady does one Ready's I/O, in this order:
//
//  1. record the leader (soft state) and hand read states to the read loop;
//  2. as leader, send the messages: a leader may send before it persists
//     (Raft thesis §10.2.1), it counts itself in a quorum only once its
//     own entries are durable;
//  3. save a received snapshot: the file, then the restore marker in the
//     log;
//  4. append the entries and the hard state to the log, fsynced when
//     Ready.MustSync;
//  5. apply the received snapshot (metadata only) and append the entries
//     to Raft's in-memory storage;
//  6. as follower, send the messages now: a follower must persist before
//     it answers an append or grants a vote;
//  7. hand the received snapshot and the committed entries to the applier
//     (which applies them on its own goroutine, so the next Ready's I/O
//     overlaps this one's apply);
//  8. Advance (and then tell the applier, when the entries hold a conf
//     change: see applyJob).
func (r *raftNode) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		r.status.setLeader(rd.SoftState.Lead)
	}
	for _, rs := range rd.ReadStates {
		select {
		case r.readStatec <- rs:
		default:
			// The read loop waits for one request at a time; a stale state
			// it no longer wants is dropped.
			select {
			case <-r.readStatec:
			default:
			}
			r.readStatec <- rs
		}
	}
	isLeader := r.status.isLeader()
	if isLeader {
		r.transport.Send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		start := time.Now()
		if err := r.snaps.Save(rd.Snapshot); err != nil {
			return fmt.Errorf("save received snapshot: %w", err)
		}
		if err := r.log.SaveSnapshotRestore(rd.Snapshot.Metadata.Index, rd.Snapshot.Metadata.Term); err != nil {
			return fmt.Errorf("record snapshot in wal: %w", err)
		}
		r.metrics.snapshotSave.Observe(time.Since(start).Seconds())
	}
	if !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 {
		start := time.Now()
		if err := r.log.Save(rd.HardState, rd.Entries, rd.MustSync); err != nil {
			return fmt.Errorf("write wal: %w", err)
		}
		if rd.MustSync {
			// The batch is durable: quorumd's equivalent of etcd's backend
			// commit (the fdatasync alone is etcd_disk_wal_fsync_duration_seconds,
			// observed by the WAL).
			r.metrics.backendCommit.Observe(time.Since(start).Seconds())
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		r.status.setHardState(rd.HardState)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := r.storage.ApplySnapshot(withoutData(rd.Snapshot)); err != nil {
			return fmt.Errorf("apply snapshot to raft storage: %w", err)
		}
	}
	if err := r.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append to raft storage: %w", err)
	}
	if !isLeader {
		r.transport.Send(rd.Messages)
	}
	var advanced chan struct{}
	if len(rd.CommittedEntries) > 0 || !raft.IsEmptySnap(rd.Snapshot) {
		job := applyJob{snapshot: rd.Snapshot, entries: rd.CommittedEntries}
		if hasConfChange(rd.CommittedEntries) {
			advanced = make(chan struct{})
			job.advanced = advanced
		}
		select {
		case r.applyc <- job:
		case <-r.stopc:
			return nil
		}
	}
	r.node.Advance()
	if advanced != nil {
		close(advanced)
	}
	return nil
}

// withoutData is sn with its data dropped, as Raft's in-memory storage
// keeps it: the data lives in the SnapshotStorage, from which the transport
// reads it when a follower needs it.
func withoutData(sn raftpb.Snapshot) raftpb.Snapshot {
	sn.Data = nil
	return sn
}

// transferLeadership hands leadership, if this member has it, to the most
// up-to-date voting follower, and waits at most timeout for the handover.
// Called while stopping, before the Raft loop stops.
func (r *raftNode) transferLeadership(timeout time.Duration) {
	if !r.status.isLeader() {
		r.lg.Info("skipped leadership transfer; local server is not leader",
			"local-member-id", idString(r.id), "current-leader-member-id", idString(r.status.leader()))
		return
	}
	st := r.node.Status()
	var best uint64
	var bestMatch uint64
	ids := make([]uint64, 0, len(st.Progress))
	for id := range st.Progress {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		pr := st.Progress[id]
		if id == r.id || pr.IsLearner {
			continue
		}
		if best == 0 || pr.Match > bestMatch {
			best, bestMatch = id, pr.Match
		}
	}
	if best == 0 {
		r.lg.Info("skipped leadership transfer for single voting member cluster",
			"local-member-id", idString(r.id), "current-leader-member-id", idString(r.id))
		return
	}
	start := time.Now()
	r.lg.Info("leadership transfer starting", "local-member-id", idString(r.id),
		"current-leader-member-id", idString(r.id), "transferee-member-id", idString(best))
	r.node.TransferLeadership(context.Background(), r.id, best)
	deadline := time.After(timeout)
	for {
		if l := r.status.leader(); l != r.id && l != 0 {
			r.lg.Info("leadership transfer finished", "local-member-id", idString(r.id),
				"old-leader-member-id", idString(r.id), "new-leader-member-id", idString(l), "took", time.Since(start))
			return
		}
		select {
		case <-deadline:
			r.lg.Warn("leadership transfer failed", "local-member-id", idString(r.id),
				"error", "etcdserver: request timed out, leader transfer took too long")
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
