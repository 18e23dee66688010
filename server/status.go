package server

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// raftStatus is what the Raft loop publishes for every other goroutine: the
// leader this member knows (with a channel closed on every change, and when
// it was last lost), the term and the commit index. Only the Raft loop
// writes it (setLeader, setHardState); any goroutine may read it.
type raftStatus struct {
	lg      *slog.Logger
	self    uint64
	metrics *serverMetrics

	lead atomic.Uint64
	// leaderlessSince is when this member last lost its leader (or
	// started), in Unix nanoseconds; see Server.waitLeader.
	leaderlessSince atomic.Int64
	term            atomic.Uint64
	committed       atomic.Uint64

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every leader change
}

// newRaftStatus is the status of member self, leaderless since now.
func newRaftStatus(self uint64, now time.Time, lg *slog.Logger, m *serverMetrics) *raftStatus {
	st := &raftStatus{lg: lg, self: self, metrics: m, changed: make(chan struct{})}
	st.leaderlessSince.Store(now.UnixNano())
	return st
}

// leader is the leader's ID, 0 when none is known.
func (st *raftStatus) leader() uint64 { return st.lead.Load() }

// isLeader reports whether this member is the leader.
func (st *raftStatus) isLeader() bool { return st.lead.Load() == st.self }

// leaderChanged returns a channel closed at the next leader change.
func (st *raftStatus) leaderChanged() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.changed
}

// setLeader records the leader of a Ready's soft state. Raft loop only.
func (st *raftStatus) setLeader(lead uint64) {
	if lead == 0 && st.lead.Load() != 0 {
		// Before the swap: a caller that sees no leader must not see an
		// older leaderless period's start.
		st.leaderlessSince.Store(time.Now().UnixNano())
	}
	old := st.lead.Swap(lead)
	if old == lead {
		return
	}
	// At info and warn the raft library's own lines say this, as in etcd's
	// log ("raft.node: … elected leader … at term …", "… lost leader …").
	if lead == 0 {
		st.lg.Debug("lost the leader", "local-member-id", idString(st.self), "previous-leader-member-id", idString(old))
		st.metrics.hasLeader.Set(0)
	} else {
		st.lg.Debug("leader changed", "local-member-id", idString(st.self), "leader-member-id", idString(lead),
			"previous-leader-member-id", idString(old))
		st.metrics.hasLeader.Set(1)
	}
	if lead == st.self {
		st.metrics.isLeader.Set(1)
	} else {
		st.metrics.isLeader.Set(0)
	}
	if old != 0 && lead != 0 {
		st.metrics.leaderChanges.Inc()
	}
	st.mu.Lock()
	close(st.changed)
	st.changed = make(chan struct{})
	st.mu.Unlock()
}

// setHardState records a Ready's (non-empty) hard state. Raft loop only.
func (st *raftStatus) setHardState(hs raftpb.HardState) {
	st.term.Store(hs.Term)
	st.committed.Store(hs.Commit)
	st.metrics.proposalsCommitted.Set(float64(hs.Commit))
}
