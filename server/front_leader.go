package server

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Requests that carry etcd's "hasleader" metadata (clientv3's
// WithRequireLeader) are refused with ErrGRPCNoLeader when the member knows
// no leader, as etcd's interceptors (etcdserver/api/v3rpc/interceptor.go)
// do; such a stream already open is canceled with that error once the
// member has had no leader for maxNoLeaderCnt election timeouts.

// maxNoLeaderCnt is etcd's.
const maxNoLeaderCnt = 3

func requiresLeader(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	ks := md[rpctypes.MetadataRequireLeaderKey]
	return len(ks) > 0 && ks[0] == rpctypes.MetadataHasLeader
}

func (s *Server) unaryRequireLeader(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if requiresLeader(ctx) && s.status.leader() == 0 {
		return nil, rpctypes.ErrGRPCNoLeader
	}
	return handler(ctx, req)
}

// leaderStreams are the open streams that require a leader, each with the
// cancel of its context.
type leaderStreams struct {
	mu      sync.Mutex
	streams map[*streamWithCtx]struct{}
}

type streamWithCtx struct {
	grpc.ServerStream
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (ss *streamWithCtx) Context() context.Context { return ss.ctx }

func (s *Server) streamRequireLeader(ls *leaderStreams) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !requiresLeader(ss.Context()) {
			return handler(srv, ss)
		}
		if s.status.leader() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		ctx, cancel := context.WithCancelCause(ss.Context())
		w := &streamWithCtx{ServerStream: ss, ctx: ctx, cancel: cancel}
		ls.mu.Lock()
		ls.streams[w] = struct{}{}
		ls.mu.Unlock()
		defer func() {
			ls.mu.Lock()
			delete(ls.streams, w)
			ls.mu.Unlock()
			cancel(nil)
		}()
		return handler(srv, w)
	}
}

// monitorLeader cancels the leader-requiring streams after maxNoLeaderCnt
// election timeouts without a leader, until the member stops.
func (s *Server) monitorLeader(ls *leaderStreams) {
	noLeader := 0
	t := time.NewTicker(s.cfg.ElectionTimeout)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		if s.status.leader() != 0 {
			noLeader = 0
			continue
		}
		if noLeader++; noLeader < maxNoLeaderCnt {
			continue
		}
		ls.mu.Lock()
		for w := range ls.streams {
			w.cancel(rpctypes.ErrGRPCNoLeader)
		}
		ls.streams = map[*streamWithCtx]struct{}{}
		ls.mu.Unlock()
	}
}
