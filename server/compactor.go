package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3compactor"
	etcdmvcc "go.etcd.io/etcd/server/v3/storage/mvcc"

	"github.com/quorum-kv/quorum/internal/etcdlog"
	"github.com/quorum-kv/quorum/server/mvcc"
)

// Auto compaction is etcd's own compactor (v3compactor, etcd 3.6):
// --auto-compaction-mode periodic keeps the revisions of the last
// retention (a duration), revision keeps the last retention revisions
// (checked every 5 minutes). It runs on the leader only, as etcd's does:
// resumed when this member becomes leader, paused when it stops being one
// (etcd's updateLeadership). Its compactions are proposed through Raft
// exactly as a client's Compact RPC is (front_kv.go), so every member
// compacts at the same revision of the log; it reads the revision from
// this member's applied store. Its log lines are etcd's ("starting auto
// periodic compaction", "completed auto revision compaction", ...),
// written by etcd's package through a zap logger over the member's
// output (etcdlog.Zap).
//
// quorumd reuses etcd's package rather than a compactor of its own so that
// the sliding window of periodic mode, the retry intervals, what counts as
// success (an already compacted revision does) and the log lines are
// etcd's by construction.

// validateAutoCompaction checks the auto compaction settings as etcd's
// v3compactor.New does; a retention of 0 turns it off (any mode).
func validateAutoCompaction(mode string, retention time.Duration) error {
	if retention == 0 {
		return nil
	}
	switch mode {
	case v3compactor.ModePeriodic, v3compactor.ModeRevision:
		return nil
	}
	return fmt.Errorf("--auto-compaction-mode is %q; want %s or %s", mode, v3compactor.ModePeriodic, v3compactor.ModeRevision)
}

// newAutoCompactor is etcd's compactor for cfg over s, or nil when auto
// compaction is off. cfg is validated.
func newAutoCompactor(s *Server, cfg *Config) (v3compactor.Compactor, error) {
	if cfg.AutoCompactionRetention == 0 {
		return nil, nil
	}
	return v3compactor.New(etcdlog.Zap(s.lg), cfg.AutoCompactionMode, cfg.AutoCompactionRetention, compactTarget{s}, compactTarget{s})
}

// autoCompact runs the compactor of --auto-compaction-* until the member
// stops; it returns at once when auto compaction is off.
func (s *Server) autoCompact() {
	c, err := newAutoCompactor(s, &s.cfg)
	if err != nil {
		s.lg.Error("failed to create auto compactor", "error", err)
		s.fatal(err)
		return
	}
	if c != nil {
		s.runCompactorWhileLeader(c)
	}
}

// runCompactorWhileLeader runs c, paused except while this member is the
// leader, until the member stops; then it stops c. etcd runs its compactor
// from the start and pauses it at the first soft state that shows another
// leader; starting paused is the same with no window before that.
func (s *Server) runCompactorWhileLeader(c v3compactor.Compactor) {
	c.Pause()
	c.Run()
	defer c.Stop()
	leader := false
	for {
		changed := s.status.leaderChanged()
		if now := s.status.isLeader(); now != leader {
			leader = now
			if leader {
				c.Resume()
			} else {
				c.Pause()
			}
		}
		select {
		case <-changed:
		case <-s.stopc:
			return
		}
	}
}

// compactTarget is the member as etcd's compactor sees it: its applied
// store revision (RevGetter) and Compact through Raft (Compactable).
type compactTarget struct{ s *Server }

var (
	_ v3compactor.RevGetter   = compactTarget{}
	_ v3compactor.Compactable = compactTarget{}
)

// Rev is the revision of this member's applied store.
func (t compactTarget) Rev() int64 { return t.s.readView().view.Rev() }

// Compact proposes r as the Compact RPC does and waits until this member
// applied it. An already compacted revision is etcd's mvcc.ErrCompacted,
// which the compactor counts as done, as etcd's server returns it.
func (t compactTarget) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	res, err := t.s.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		if errors.Is(res.err, mvcc.ErrCompacted) {
			return nil, etcdmvcc.ErrCompacted
		}
		return nil, res.err
	}
	resp := res.resp.(*pb.CompactionResponse)
	resp.Header = t.s.header(res.rev)
	return resp, nil
}
