package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// clusterServer implements etcd's Cluster service: MemberList from the
// applied membership, and MemberAdd, MemberRemove, MemberUpdate and
// MemberPromote as conf changes through Raft (membership_confchange.go),
// checked first as etcd checks them (--strict-reconfig-check, a learner in
// sync before its promotion).
type clusterServer struct {
	pb.UnimplementedClusterServer
	s *Server
}

var _ pb.ClusterServer = (*clusterServer)(nil)

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if err := c.s.linearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	st := c.s.readView()
	return &pb.MemberListResponse{Header: c.s.clusterHeader(), Members: protoMembers(st.membership)}, nil
}

func protoMembers(m *Membership) []*pb.Member {
	out := make([]*pb.Member, 0, len(m.Members))
	for _, x := range m.Members {
		out = append(out, &pb.Member{ID: x.ID, Name: x.Name, PeerURLs: x.PeerURLs, ClientURLs: x.ClientURLs, IsLearner: x.IsLearner})
	}
	return out
}

// healthInterval is etcd's HealthInterval: a peer counts as connected for
// --strict-reconfig-check once its stream has been up that long.
const healthInterval = 5 * time.Second

func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	urls, err := types.NewURLs(r.PeerURLs)
	if err != nil {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	s := c.s
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	m := Member{ID: newAddedMemberID(urls.StringSlice(), time.Now()), PeerURLs: urls.StringSlice(), IsLearner: r.IsLearner}
	if err := s.mayAddMember(m); err != nil {
		return nil, err
	}
	b, err := json.Marshal(confChangeContext{Member: m})
	if err != nil {
		return nil, err
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: m.ID, Context: b}
	if m.IsLearner {
		cc.Type = raftpb.ConfChangeAddLearnerNode
	}
	membs, err := s.configure(ctx, cc)
	if err != nil {
		return nil, err
	}
	return &pb.MemberAddResponse{Header: s.clusterHeader(),
		Member:  &pb.Member{ID: m.ID, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner},
		Members: protoMembers(membs)}, nil
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	s := c.s
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := s.mayRemoveMember(r.ID); err != nil {
		return nil, err
	}
	membs, err := s.configure(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: r.ID})
	if err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: s.clusterHeader(), Members: protoMembers(membs)}, nil
}

func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	s := c.s
	// etcd's UpdateMember takes the URLs as given (no parsing, no sorting).
	b, err := json.Marshal(Member{ID: r.ID, PeerURLs: r.PeerURLs})
	if err != nil {
		return nil, err
	}
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	membs, err := s.configure(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeUpdateNode, NodeID: r.ID, Context: b})
	if err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{Header: s.clusterHeader(), Members: protoMembers(membs)}, nil
}

func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	s := c.s
	membs, err := s.promoteMember(ctx, r.ID)
	if errors.Is(err, rpctypes.ErrGRPCNotLeader) {
		// Only the leader knows whether the learner is in sync: forward.
		cctx, cancel := context.WithTimeout(ctx, s.cfg.requestTimeout())
		defer cancel()
		membs, err = s.promoteViaLeader(cctx, r.ID)
	}
	if err != nil {
		return nil, err
	}
	return &pb.MemberPromoteResponse{Header: s.clusterHeader(), Members: protoMembers(membs)}, nil
}

// clusterHeader is etcd's Cluster service header: cluster, member, term
// (no revision).
func (s *Server) clusterHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: s.cid, MemberId: s.id, RaftTerm: s.status.term.Load()}
}

// requireAdmin is etcd's checkMembershipOperationPermission: with auth
// enabled, only root may change the membership.
func (s *Server) requireAdmin(ctx context.Context) error {
	ai, err := s.authInfoFromCtx(ctx)
	if err != nil {
		return authError(err)
	}
	if err := s.auth.IsAdminPermitted(ai); err != nil {
		return authError(err)
	}
	return nil
}

// promoteMember is etcd's promoteMember: refused with ErrGRPCNotLeader on a
// follower (the caller forwards), with ErrGRPCLearnerNotReady unless the
// learner's match index is at least readyPercentThreshold of the
// leader's.
func (s *Server) promoteMember(ctx context.Context, id uint64) (*Membership, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := s.mayPromoteMember(id); err != nil {
		return nil, err
	}
	b, err := json.Marshal(confChangeContext{Member: Member{ID: id}, IsPromote: true})
	if err != nil {
		return nil, err
	}
	return s.configure(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, Context: b})
}

// readyPercentThreshold is etcd's.
const readyPercentThreshold = 0.9

func (s *Server) mayPromoteMember(id uint64) error {
	if err := s.isLearnerReady(id); err != nil {
		return err
	}
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	if !s.readView().membership.isReadyToPromoteMember() {
		s.lg.Warn("rejecting member promote request; not enough healthy members", "local-member-id", idString(s.id),
			"requested-member-remove-id", idString(id), "error", rpctypes.ErrMemberNotEnoughStarted)
		return rpctypes.ErrMemberNotEnoughStarted
	}
	return nil
}

// isLearnerReady is etcd's: only the leader has the progress to judge.
func (s *Server) isLearnerReady(id uint64) error {
	rs := s.raft.node.Status()
	if rs.Progress == nil {
		return rpctypes.ErrGRPCNotLeader
	}
	pr, ok := rs.Progress[id]
	if !ok {
		return rpctypes.ErrGRPCMemberNotFound
	}
	leaderMatch := rs.Progress[rs.ID].Match
	ready := float64(pr.Match) / float64(leaderMatch)
	if ready < readyPercentThreshold {
		s.lg.Error("rejecting promote learner: learner is not ready", "learner-ready-percent", ready,
			"ready-percent-threshold", readyPercentThreshold)
		return rpctypes.ErrGRPCLearnerNotReady
	}
	return nil
}

// mayAddMember is etcd's: with --strict-reconfig-check, a voting member is
// added only if a quorum of the voting members (counting the new one) has
// started, and only if this member has been connected to a quorum of them
// (the new one counted as down) for healthInterval.
func (s *Server) mayAddMember(m Member) error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	mem := s.readView().membership
	if !m.IsLearner && !mem.isReadyToAddVotingMember() {
		s.lg.Warn("rejecting member add request; not enough healthy members", "local-member-id", idString(s.id),
			"requested-member-add", idString(m.ID), "error", rpctypes.ErrMemberNotEnoughStarted)
		return rpctypes.ErrMemberNotEnoughStarted
	}
	// Counting the new member as down; a one-member cluster may always
	// grow.
	voting := mem.VotingMembers()
	connected := s.numConnectedSince(time.Now().Add(-healthInterval), voting)
	if len(voting) != 1 && connected < (len(voting)+1)/2+1 {
		s.lg.Warn("rejecting member add request; local member has not been connected to majority peers, reconfigure breaks active quorum",
			"local-member-id", idString(s.id), "requested-member-add", idString(m.ID), "error", rpctypes.ErrGRPCUnhealthy)
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// mayRemoveMember is etcd's: with --strict-reconfig-check, removing a
// voting member must leave a quorum of started members, and of members
// this one is connected to (a member that is down may always go).
func (s *Server) mayRemoveMember(id uint64) error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	mem := s.readView().membership
	if m := mem.Member(id); m != nil && m.IsLearner {
		return nil
	}
	if !mem.isReadyToRemoveVotingMember(id) {
		s.lg.Warn("rejecting member remove request; not enough healthy members", "local-member-id", idString(s.id),
			"requested-member-remove-id", idString(id), "error", rpctypes.ErrMemberNotEnoughStarted)
		return rpctypes.ErrMemberNotEnoughStarted
	}
	if id != s.id && s.activeSince(id).IsZero() {
		return nil
	}
	voting := mem.VotingMembers()
	active := s.numConnectedSince(time.Now().Add(-healthInterval), voting)
	if active-1 < 1+(len(voting)-1)/2 {
		s.lg.Warn("rejecting member remove request; local member has not been connected to all peers, reconfigure breaks active quorum",
			"local-member-id", idString(s.id), "requested-member-remove", idString(id), "active-peers", active,
			"error", rpctypes.ErrGRPCUnhealthy)
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// activeSince is the transport's ActiveSince, or zero when it cannot tell.
func (s *Server) activeSince(id uint64) time.Time {
	if pa, ok := s.transport.(peerActivity); ok {
		return pa.ActiveSince(id)
	}
	return time.Time{}
}

// numConnectedSince is etcd's: this member and the members whose streams
// have been up since since.
func (s *Server) numConnectedSince(since time.Time, members []*Member) int {
	n := 0
	for _, m := range members {
		if m.ID == s.id {
			n++
			continue
		}
		if t := s.activeSince(m.ID); !t.IsZero() && t.Before(since) {
			n++
		}
	}
	return n
}

// configure proposes cc through Raft and waits until this member applied
// it, as etcd's configure: the result is the membership right after it, or
// the error with which every member refused it.
func (s *Server) configure(ctx context.Context, cc raftpb.ConfChange) (*Membership, error) {
	if err := s.waitLeader(ctx); err != nil {
		return nil, err
	}
	cc.ID = s.reqIDs.Next()
	ch := s.wait.register(cc.ID)
	cctx, cancel := context.WithTimeout(ctx, s.cfg.requestTimeout())
	defer cancel()
	leaderChanged := s.status.leaderChanged()
	if err := s.raft.node.ProposeConfChange(cctx, cc); err != nil {
		s.wait.cancel(cc.ID)
		switch {
		case errors.Is(err, raft.ErrProposalDropped):
			return nil, rpctypes.ErrGRPCNoLeader
		case errors.Is(err, raft.ErrStopped):
			return nil, rpctypes.ErrGRPCStopped
		}
		return nil, contextError(ctx, leaderChanged)
	}
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, res.err
		}
		s.lg.Info("applied a configuration change through raft", "local-member-id", idString(s.id),
			"raft-conf-change", cc.Type.String(), "raft-conf-change-node-id", idString(cc.NodeID))
		return res.resp.(confChangeResult).members, nil
	case <-cctx.Done():
		s.wait.cancel(cc.ID)
		return nil, contextError(ctx, leaderChanged)
	case <-s.stopc:
		s.wait.cancel(cc.ID)
		return nil, rpctypes.ErrGRPCStopped
	}
}
