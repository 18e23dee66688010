package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// maintenanceServer implements etcd's Maintenance service, as etcd's
// v3rpc/maintenance.go with its authMaintenanceServer checks: Status,
// Alarm (through Raft, alarm.go), Defragment (local, defrag.go) and
// HashKV. Hash, Snapshot and MoveLeader live in their own files; what is
// not implemented answers Unimplemented.
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

var _ pb.MaintenanceServer = (*maintenanceServer)(nil)

// Status is etcd's: DbSize and DbSizeInUse as quota.go defines them, the
// quota (etcd's default when 0), and in Errors "etcdserver: no leader"
// without a leader and each active alarm as etcd prints it
// (AlarmMember.String: "memberID:<id> alarm:<type>").
func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	s := m.s
	if err := s.requireAuthInfo(ctx); err != nil {
		return nil, err
	}
	st := s.readView()
	size, inUse := s.dbSizes()
	resp := &pb.StatusResponse{
		Header:           s.header(st.view.Rev()),
		Version:          ReportedServerVersion,
		DbSize:           size,
		DbSizeInUse:      inUse,
		Leader:           s.status.leader(),
		RaftIndex:        s.status.committed.Load(),
		RaftTerm:         s.status.term.Load(),
		RaftAppliedIndex: st.applied,
		StorageVersion:   ReportedClusterVersion,
		DbSizeQuota:      s.cfg.QuotaBackendBytes,
		IsLearner:        s.isLearner(),
		DowngradeInfo:    &pb.DowngradeInfo{Enabled: false},
	}
	if resp.DbSizeQuota == 0 {
		resp.DbSizeQuota = DefaultQuotaBackendBytes
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, rpctypes.ErrNoLeader.Error())
	}
	for _, a := range s.alarms() {
		resp.Errors = append(resp.Errors, a.String())
	}
	return resp, nil
}

// Alarm is etcd's: every action goes through Raft (GET too, so the list is
// linearizable); GET needs a user when auth is enabled, ACTIVATE and
// DEACTIVATE the root role.
func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	s := m.s
	if r.GetAction() == pb.AlarmRequest_GET {
		if err := s.requireAuthInfo(ctx); err != nil {
			return nil, err
		}
	} else if err := s.checkAdmin(ctx); err != nil {
		return nil, err
	}
	res, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: r})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, togRPCError(res.err)
	}
	resp, _ := res.resp.(*pb.AlarmResponse)
	if resp == nil { // an unknown action: etcd answers an empty response
		resp = &pb.AlarmResponse{}
	}
	resp.Header = s.header(s.readView().view.Rev())
	return resp, nil
}

// Defragment is etcd's: root only, local to this member (defrag.go); the
// response is empty, without a header, as etcd's.
func (m *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	s := m.s
	if err := s.checkAdmin(ctx); err != nil {
		return nil, err
	}
	s.lg.Info("starting defragment")
	if err := s.defragment(ctx); err != nil {
		s.lg.Warn("failed to defragment", "error", err)
		return nil, err
	}
	s.lg.Info("finished defragment")
	return &pb.DefragmentResponse{}, nil
}

// checkAdmin is etcd's AuthAdmin.isPermitted: with auth enabled, the
// request's user must have the root role.
func (s *Server) checkAdmin(ctx context.Context) error {
	ai, err := s.authInfoFromCtx(ctx)
	if err != nil {
		return authError(err)
	}
	if err := s.auth.IsAdminPermitted(ai); err != nil {
		return authError(err)
	}
	return nil
}
