package server

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// leaseServer implements etcd's Lease service. Grant and revoke go through
// Raft; keep-alive and time-to-live are answered by the leader, the only
// member that keeps expiry times: a follower forwards them over the peer
// port (see leaseRenew, leaseTimeToLive).
type leaseServer struct {
	pb.UnimplementedLeaseServer
	s *Server
}

var _ pb.LeaseServer = (*leaseServer)(nil)

func (l *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := l.s.checkQuota(ctx, r); err != nil {
		return nil, err
	}
	if err := l.s.requireAuthInfo(ctx); err != nil {
		return nil, err
	}
	req := *r
	// No ID given: choose one, positive, as etcd does.
	for req.ID == 0 {
		req.ID = int64(l.s.reqIDs.Next() & (1<<63 - 1))
	}
	res, err := l.s.propose(ctx, &pb.InternalRaftRequest{LeaseGrant: &req})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, togRPCError(res.err)
	}
	resp := res.resp.(*pb.LeaseGrantResponse)
	resp.Header = l.s.header(res.rev)
	return resp, nil
}

func (l *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := l.s.requireAuthInfo(ctx); err != nil {
		return nil, err
	}
	res, err := l.s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: r})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, togRPCError(res.err)
	}
	resp := res.resp.(*pb.LeaseRevokeResponse)
	resp.Header = l.s.header(res.rev)
	return resp, nil
}

// LeaseKeepAlive renews each lease sent on the stream and answers with its
// TTL; a lease that does not exist (or expired) is answered with TTL 0, as
// etcd's leaseKeepAlive.
func (l *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		// The header before the renew, as etcd: a lease revoked at rev N is
		// never reported renewed at a later revision.
		resp := &pb.LeaseKeepAliveResponse{ID: req.ID, Header: l.s.header(l.s.readView().view.Rev())}
		// etcd's checkLeaseRenew: unless admin, the user must be able to
		// write every key of the lease.
		if err := l.s.checkLeaseKeys(stream.Context(), []int64{req.ID}, putPerm); err != nil {
			return err
		}
		ttl, err := l.s.leaseRenew(stream.Context(), req.ID)
		if errors.Is(err, errLeaseNotFound) {
			ttl, err = 0, nil
		}
		if err != nil {
			return togRPCError(err)
		}
		resp.TTL = ttl
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (l *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := l.s.requireAuthInfo(ctx); err != nil {
		return nil, err
	}
	// etcd checks the keys' read permission only when they are asked for.
	if r.Keys {
		if err := l.s.checkLeaseKeys(ctx, []int64{r.ID}, readPerm); err != nil {
			return nil, err
		}
	}
	resp, err := l.s.leaseTimeToLive(ctx, r)
	if errors.Is(err, errLeaseNotFound) {
		resp, err = &pb.LeaseTimeToLiveResponse{ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, togRPCError(err)
	}
	resp.Header = l.s.header(l.s.readView().view.Rev())
	return resp, nil
}

// LeaseLeases lists this member's leases (no round trip, as etcd).
func (l *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	ids := l.s.lessor.ids()
	if err := l.s.checkLeaseKeys(ctx, ids, readPerm); err != nil {
		return nil, err
	}
	resp := &pb.LeaseLeasesResponse{Header: l.s.header(l.s.readView().view.Rev()), Leases: make([]*pb.LeaseStatus, len(ids))}
	for i, id := range ids {
		resp.Leases[i] = &pb.LeaseStatus{ID: id}
	}
	return resp, nil
}

// leaseError maps the lessor's errors onto etcd's wire errors; nil if err
// is not one of them.
func leaseError(err error) error {
	switch {
	case errors.Is(err, errLeaseNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	case errors.Is(err, errLeaseExists):
		return rpctypes.ErrGRPCLeaseExist
	case errors.Is(err, errLeaseTTLTooLarge):
		return rpctypes.ErrGRPCLeaseTTLTooLarge
	case errors.Is(err, errNotPrimary):
		return rpctypes.ErrGRPCNotLeader
	}
	return nil
}
