package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// clusterServer implements MemberList of etcd's Cluster service; membership
// is static, so adding, removing and promoting members answer Unimplemented.
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
	resp := &pb.MemberListResponse{Header: c.s.header(st.view.Rev())}
	for _, m := range st.membership.Members {
		resp.Members = append(resp.Members, &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs})
	}
	return resp, nil
}
