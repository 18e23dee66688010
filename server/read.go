package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"

	"github.com/quorum-kv/quorum/server/bugzoo"
)

// The read loop: linearizable reads in batches, one ReadIndex round per
// batch. Its state (readwaitc, readNotify) lives in the Server; the read
// states come from the Raft loop (raftNode.readStates) and the applied
// index from the applier (applier.waitApplied).

// linearizableReadNotify blocks until this member has applied everything
// committed before the call, established through a ReadIndex round with the
// leader. Concurrent callers share one round.
func (s *Server) linearizableReadNotify(ctx context.Context) error {
	if bugzoo.Enabled(bugzoo.StaleRead) {
		return nil
	}
	s.readMu.RLock()
	nc := s.readNotify
	s.readMu.RUnlock()
	select {
	case s.readwaitc <- struct{}{}:
	default:
	}
	select {
	case <-nc.c:
		return nc.err
	case <-ctx.Done():
		return clientContextError(ctx)
	case <-s.stopc:
		return rpctypes.ErrGRPCStopped
	}
}

// readLoop serves batches of linearizable reads: every read that arrives
// while a ReadIndex round is in flight waits for the next round.
func (s *Server) readLoop() {
	var seq uint64
	for {
		select {
		case <-s.readwaitc:
		case <-s.stopc:
			return
		}
		s.readMu.Lock()
		nr := s.readNotify
		s.readNotify = newNotifier()
		s.readMu.Unlock()

		seq++
		idx, err := s.requestReadIndex(seq)
		if err != nil {
			s.metrics.readIndexFailed.Inc()
			nr.notify(err)
			continue
		}
		if bugzoo.Enabled(bugzoo.ReadBeforeApply) {
			nr.notify(nil)
			continue
		}
		select {
		case <-s.app.waitApplied(idx):
			nr.notify(nil)
		case <-time.After(s.cfg.requestTimeout()):
			s.metrics.slowReadIndex.Inc()
			nr.notify(rpctypes.ErrGRPCTimeoutWaitAppliedIndex)
		case <-s.stopc:
			nr.notify(rpctypes.ErrGRPCStopped)
			return
		}
	}
}

const readIndexRetry = 500 * time.Millisecond

// requestReadIndex runs one ReadIndex round and returns the index to wait
// for. The request context is this member's ID and the round's sequence
// number: the leader keys pending read requests by context and ignores a
// duplicate, so contexts must be unique across the cluster, not just on
// this member.
func (s *Server) requestReadIndex(seq uint64) (uint64, error) {
	var rctx [16]byte
	binary.BigEndian.PutUint64(rctx[:8], s.id)
	binary.BigEndian.PutUint64(rctx[8:], seq)
	if err := s.waitLeader(context.Background()); err != nil {
		return 0, err
	}
	leaderChanged := s.status.leaderChanged()
	if s.status.leader() == 0 {
		return 0, rpctypes.ErrGRPCNoLeader // lost again in between
	}
	send := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.requestTimeout())
		defer cancel()
		return s.raft.node.ReadIndex(ctx, rctx[:])
	}
	if err := send(); err != nil {
		if errors.Is(err, raft.ErrStopped) {
			return 0, rpctypes.ErrGRPCStopped
		}
		return 0, rpctypes.ErrGRPCTimeout
	}
	retry := time.NewTicker(readIndexRetry)
	defer retry.Stop()
	deadline := time.NewTimer(s.cfg.requestTimeout())
	defer deadline.Stop()
	for {
		select {
		case rs := <-s.raft.readStates():
			if bytes.Equal(rs.RequestCtx, rctx[:]) {
				return rs.Index, nil
			}
			// An answer to an earlier round that gave up; keep waiting.
		case <-leaderChanged:
			return 0, rpctypes.ErrGRPCLeaderChanged
		case <-retry.C:
			if s.status.leader() == 0 {
				return 0, rpctypes.ErrGRPCNoLeader
			}
			s.metrics.slowReadIndex.Inc()
			if err := send(); err != nil {
				return 0, rpctypes.ErrGRPCTimeout
			}
		case <-deadline.C:
			return 0, rpctypes.ErrGRPCTimeout
		case <-s.stopc:
			return 0, rpctypes.ErrGRPCStopped
		}
	}
}
