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
// it. A follower's proposal is forwarded to the leader by Raft itself.
// Without a leader it waits for the election in progress (see waitLeader)
// and fails with etcd's "no leader" when none comes (the request was not
// proposed, so it definitely did not happen); once proposed, it waits up to
// the request timeout, after which the outcome is unknown to the client
// ("request timed out").
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (applyResult, error) {
	if err := s.waitLeader(ctx); err != nil {
		return applyResult{}, err
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

// electionGrace is how long a member that lost its leader (or started)
// holds requests for the election to finish, in election timeouts. Raft
// elects within about two (a follower times out after one to two, and a
// pre-vote refused by a member still in its leader's lease waits for the
// next timeout); past that the member is most likely cut off from a
// majority and answers at once.
const electionGrace = 3

// waitLeader returns nil once this member knows a leader. A request that
// arrives during an election waits for it, as etcd's do, so that a write
// sent while the cluster elects succeeds as soon as there is a leader
// instead of failing; but only until the member has been leaderless for
// electionGrace election timeouts (etcd waits for the whole request
// timeout, 7 s by default). After that it fails at once with etcd's
// "no leader", so clients of a member cut off from the majority learn it
// immediately. The client's own deadline or cancellation ends the wait
// early with etcd's errors for those.
func (s *Server) waitLeader(ctx context.Context) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		changed := s.leaderChangedC()
		if s.lead.Load() != 0 {
			return nil
		}
		since := time.Unix(0, s.leaderlessSince.Load())
		left := time.Until(since.Add(electionGrace * s.cfg.ElectionTimeout))
		if left <= 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		if timer == nil {
			timer = time.NewTimer(left)
		} else {
			timer.Reset(left)
		}
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			return clientContextError(ctx)
		case <-s.stopc:
			return rpctypes.ErrGRPCStopped
		}
	}
}

// contextError turns a proposal's expired context into etcd's error: the
// client's own cancellation or deadline is reported as such; our request
// timeout says whether the leader changed meanwhile.
func contextError(client context.Context, leaderChanged <-chan struct{}) error {
	if client.Err() != nil {
		return clientContextError(client)
	}
	select {
	case <-leaderChanged:
		return rpctypes.ErrGRPCTimeoutDueToLeaderFail
	default:
		return rpctypes.ErrGRPCTimeout
	}
}

// clientContextError is etcd's error for a client context that ended:
// cancelled or past its deadline.
func clientContextError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return rpctypes.ErrGRPCCanceled
	}
	return rpctypes.ErrGRPCDeadlineExceeded
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
	if err := s.waitLeader(context.Background()); err != nil {
		return 0, err
	}
	leaderChanged := s.leaderChangedC()
	if s.lead.Load() == 0 {
		return 0, rpctypes.ErrGRPCNoLeader // lost again in between
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
