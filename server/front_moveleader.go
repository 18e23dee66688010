package server

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// errTimeoutLeaderTransfer is etcd's ErrTimeoutLeaderTransfer, which its
// v3rpc has no gRPC code for (codes.Unknown with its text).
var errTimeoutLeaderTransfer = errors.New("etcdserver: request timed out, leader transfer took too long")

// MoveLeader is etcd's: only the leader transfers its leadership
// (a follower answers ErrGRPCNotLeader; etcdctl sends it to the leader),
// only to a voting member (else ErrGRPCBadLeaderTransferee), and waits for
// the transfer until the request's deadline.
func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	s := m.s
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	lead := s.status.leader()
	if lead != s.id {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	target := s.readView().membership.Member(r.TargetID)
	if target == nil || target.IsLearner {
		return nil, rpctypes.ErrGRPCBadLeaderTransferee
	}
	start := time.Now()
	s.lg.Info("leadership transfer starting", "local-member-id", idString(s.id),
		"current-leader-member-id", idString(lead), "transferee-member-id", idString(r.TargetID))
	s.raft.node.TransferLeadership(ctx, lead, r.TargetID)
	for s.status.leader() != r.TargetID {
		select {
		case <-ctx.Done():
			return nil, errTimeoutLeaderTransfer
		case <-s.stopc:
			return nil, rpctypes.ErrGRPCStopped
		case <-time.After(s.cfg.HeartbeatInterval):
		}
	}
	s.lg.Info("leadership transfer finished", "local-member-id", idString(s.id),
		"old-leader-member-id", idString(lead), "new-leader-member-id", idString(r.TargetID), "took", time.Since(start))
	return &pb.MoveLeaderResponse{}, nil
}
