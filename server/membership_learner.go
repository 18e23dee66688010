package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// Learners replicate the log but do not vote; a learner serves only what
// etcd's interceptors (etcdserver/api/v3rpc/interceptor.go,
// isRPCSupportedForLearner) let it: Status and serializable Range among
// the unary RPCs, Snapshot among the streams. Everything else gets
// ErrGRPCNotSupportedForLearner, checked before anything else, as etcd.

// isLearner reports whether this member is a learner in the applied
// membership.
func (s *Server) isLearner() bool {
	m := s.readView().membership.Member(s.id)
	return m != nil && m.IsLearner
}

func isRPCSupportedForLearner(req any) bool {
	switch r := req.(type) {
	case *pb.StatusRequest:
		return true
	case *pb.RangeRequest:
		return r.Serializable
	default:
		return false
	}
}

const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

func (s *Server) unaryLearner(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.isLearner() && !isRPCSupportedForLearner(req) {
		return nil, rpctypes.ErrGRPCNotSupportedForLearner
	}
	return handler(ctx, req)
}

func (s *Server) streamLearner(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if s.isLearner() && info.FullMethod != snapshotMethod {
		return rpctypes.ErrGRPCNotSupportedForLearner
	}
	return handler(srv, ss)
}

// memberRemoved stops a member removed from the cluster, as etcd: one
// second later (so that the answer to its own removal gets out), it logs
// etcd's lines and reports ErrMemberRemoved on Err (cmd/quorumd then exits
// 0, as etcd). Once only.
func (s *Server) memberRemoved() {
	s.removedOnce.Do(func() {
		go func() {
			select {
			case <-time.After(time.Second):
			case <-s.stopc:
				return
			}
			s.lg.Warn("server error", "error", ErrMemberRemoved.Error())
			s.lg.Warn("data-dir used by this member must be removed")
			s.fatal(ErrMemberRemoved)
		}()
	})
}

// watchRemoved stops the member once a peer answered that it was removed.
func (s *Server) watchRemoved() {
	select {
	case <-s.transport.Removed():
		s.memberRemoved()
	case <-s.stopc:
	}
}
