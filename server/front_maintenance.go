package server

import (
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// maintenanceServer implements the parts of etcd's Maintenance service that
// quorumd supports: Status and Alarm listing. The rest answer Unimplemented.
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

var _ pb.MaintenanceServer = (*maintenanceServer)(nil)

func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	s := m.s
	if err := s.requireAuthInfo(ctx); err != nil {
		return nil, err
	}
	st := s.readView()
	// The database here is the keyspace a snapshot would serialize: the
	// store's size plus the snapshot's header and membership (never 0, as
	// a bolt file never is; etcdctl divides by it).
	size := st.view.Size() + st.snapshotOverhead()
	resp := &pb.StatusResponse{
		Header:           s.header(st.view.Rev()),
		Version:          ReportedServerVersion,
		DbSize:           size,
		DbSizeInUse:      size,
		Leader:           s.status.leader(),
		RaftIndex:        s.status.committed.Load(),
		RaftTerm:         s.status.term.Load(),
		RaftAppliedIndex: st.applied,
		StorageVersion:   ReportedClusterVersion,
		DbSizeQuota:      s.cfg.QuotaBackendBytes,
		IsLearner:        s.isLearner(),
	}
	for _, a := range s.alarms() {
		resp.Errors = append(resp.Errors, "memberID:"+fmt.Sprint(a.MemberID)+" alarm:"+a.Alarm.String())
	}
	return resp, nil
}

func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.Action != pb.AlarmRequest_GET {
		// Alarms here are derived from the member's state (the keyspace is
		// over quota), not raised and cleared by hand.
		return nil, rpctypes.ErrGRPCNotCapable
	}
	if err := m.s.requireAuthInfo(ctx); err != nil {
		return nil, err
	}
	return &pb.AlarmResponse{Header: m.s.header(m.s.readView().view.Rev()), Alarms: m.s.alarms()}, nil
}

func (s *Server) alarms() []*pb.AlarmMember {
	if s.cfg.QuotaBackendBytes > 0 && s.readView().view.Size() > s.cfg.QuotaBackendBytes {
		return []*pb.AlarmMember{{MemberID: s.id, Alarm: pb.AlarmType_NOSPACE}}
	}
	return nil
}
