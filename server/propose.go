package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"

	"github.com/quorum-kv/quorum/server/bugzoo"
)

// propose replicates r through Raft and waits until this member has applied
// it. A follower's proposal is forwarded to the leader by Raft itself.
// Without a leader it waits for the election in progress (see waitLeader)
// and fails with etcd's "no leader" when none comes (the request was not
// proposed, so it definitely did not happen); once proposed, it waits up to
// the request timeout, after which the outcome is unknown to the client
// ("request timed out"). The request carries the user of ctx (auth.go).
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (applyResult, error) {
	if err := s.waitLeader(ctx); err != nil {
		return applyResult{}, err
	}
	id := s.reqIDs.Next()
	r.Header = &pb.RequestHeader{ID: id}
	// The caller's user and auth revision, checked when the request is
	// applied (etcd's processInternalRaftRequestOnce); Authenticate names
	// its user itself.
	if r.Authenticate == nil {
		ai, err := s.authInfoFromCtx(ctx)
		if err != nil {
			return applyResult{}, authError(err)
		}
		if ai != nil {
			r.Header.Username, r.Header.AuthRevision = ai.Username, ai.Revision
		}
	}
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
	leaderChanged := s.status.leaderChanged()
	if err := s.raft.node.Propose(cctx, data); err != nil {
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
	if bugzoo.Enabled(bugzoo.AckBeforeCommit) && r.Put != nil {
		s.wait.cancel(id)
		return applyResult{resp: &pb.PutResponse{}, rev: s.readView().view.Rev()}, nil
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
		changed := s.status.leaderChanged()
		if s.status.leader() != 0 {
			return nil
		}
		since := time.Unix(0, s.status.leaderlessSince.Load())
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

// publishAttributes proposes this member's name and client URLs through Raft
// once a leader exists, as etcd's publish, so MemberList on every member
// shows every member's client URLs. Retries until it is applied or the
// member stops. Once applied it closes readyc and logs etcd's "published
// local member to cluster through raft". Like etcd it proposes on every
// start, restarts included; after a failed attempt it checks whether that
// attempt was applied anyway.
func (s *Server) publishAttributes() {
	urls := make([]string, len(s.cfg.AdvertiseClientURLs))
	for i := range s.cfg.AdvertiseClientURLs {
		urls[i] = s.cfg.AdvertiseClientURLs[i].String()
	}
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID:        s.id,
		MemberAttributes: &membershippb.Attributes{Name: s.cfg.Name, ClientUrls: urls},
	}}
	timeout := s.cfg.requestTimeout()
	fields := []any{
		"local-member-id", idString(s.id),
		"local-member-attributes", fmt.Sprintf("{Name:%s ClientURLs:[%s]}", s.cfg.Name, strings.Join(urls, " ")),
	}
	published := func() {
		// Logged before readyc closes, so that "ready to serve client
		// requests" always comes after it (etcd closes first, and its
		// lines may come out either way).
		s.lg.Info("published local member to cluster through raft",
			append(fields, "cluster-id", idString(s.cid), "publish-timeout", timeout)...)
		close(s.readyc)
	}
	for attempt := 0; ; attempt++ {
		select {
		case <-s.stopc:
			s.lg.Warn("stopped publish because server is stopping", append(fields, "publish-timeout", timeout)...)
			return
		default:
		}
		if st := s.readView(); attempt > 0 && st != nil {
			if m := st.membership.Member(s.id); m != nil && m.Name == s.cfg.Name && slices.Equal(m.ClientURLs, urls) {
				published()
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := s.propose(ctx, req)
		cancel()
		if err == nil {
			published()
			return
		}
		select {
		case <-s.stopc:
			continue // reported at the top
		default:
		}
		s.lg.Warn("failed to publish local member to cluster through raft", append(fields, "publish-timeout", timeout, "error", err)...)
		select {
		case <-s.stopc:
		case <-time.After(s.cfg.HeartbeatInterval * 5):
		}
	}
}
