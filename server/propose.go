package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// propose replicates r through Raft and waits until this member has applied
// it. A follower's proposal is forwarded to the leader by Raft itself. It
// fails at once with etcd's "no leader" when there is none (the request was
// not proposed, so it definitely did not happen); once proposed, it waits up
// to the request timeout, after which the outcome is unknown to the client
// ("request timed out").
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (applyResult, error) {
	if s.lead.Load() == 0 {
		return applyResult{}, rpctypes.ErrGRPCNoLeader
	}
	id := s.reqIDs.Next()
	r.Header = &pb.RequestHeader{ID: id}
	data, err := r.Marshal()
	if err != nil {
		return applyResult{}, err
	}
	if uint(len(data)) > s.cfg.MaxRequestBytes {
		return applyResult{}, rpctypes.ErrGRPCRequestTooLarge
	}
	ch := s.wait.register(id)
	cctx, cancel := context.WithTimeout(ctx, s.cfg.requestTimeout())
	defer cancel()
	leaderChanged := s.leaderChangedC()
	if err := s.node.Propose(cctx, data); err != nil {
		s.wait.cancel(id)
		s.metrics.proposalsFailed.Inc()
		switch {
		case errors.Is(err, raft.ErrProposalDropped):
			return applyResult{}, rpctypes.ErrGRPCNoLeader
		case errors.Is(err, raft.ErrStopped):
			return applyResult{}, rpctypes.ErrGRPCStopped
		}
		return applyResult{}, contextError(ctx, leaderChanged)
	}
	select {
	case res := <-ch:
		return res, nil
	case <-cctx.Done():
		s.wait.cancel(id)
		s.metrics.proposalsFailed.Inc()
		return applyResult{}, contextError(ctx, leaderChanged)
	case <-s.stopc:
		s.wait.cancel(id)
		return applyResult{}, rpctypes.ErrGRPCStopped
	}
}

// contextError turns a proposal's expired context into etcd's error: the
// client's own cancellation or deadline is reported as such; our request
// timeout says whether the leader changed meanwhile.
func contextError(client context.Context, leaderChanged <-chan struct{}) error {
	if err := client.Err(); err != nil {
		if errors.Is(err, context.Canceled) {
			return rpctypes.ErrGRPCCanceled
		}
		return rpctypes.ErrGRPCDeadlineExceeded
	}
	select {
	case <-leaderChanged:
		return rpctypes.ErrGRPCTimeoutDueToLeaderFail
	default:
		return rpctypes.ErrGRPCTimeout
	}
}

// linearizableReadNotify blocks until this member has applied everything
// committed before the call, established through a ReadIndex round with the
// leader. Concurrent callers share one round.
func (s *Server) linearizableReadNotify(ctx context.Context) error {
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
		if errors.Is(ctx.Err(), context.Canceled) {
			return rpctypes.ErrGRPCCanceled
		}
		return rpctypes.ErrGRPCDeadlineExceeded
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
		select {
		case <-s.applyWait.wait(idx):
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
	leaderChanged := s.leaderChangedC()
	if s.lead.Load() == 0 {
		return 0, rpctypes.ErrGRPCNoLeader
	}
	send := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.requestTimeout())
		defer cancel()
		return s.node.ReadIndex(ctx, rctx[:])
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
		case rs := <-s.readStatec:
			if bytes.Equal(rs.RequestCtx, rctx[:]) {
				return rs.Index, nil
			}
			// An answer to an earlier round that gave up; keep waiting.
		case <-leaderChanged:
			return 0, rpctypes.ErrGRPCLeaderChanged
		case <-retry.C:
			if s.lead.Load() == 0 {
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
