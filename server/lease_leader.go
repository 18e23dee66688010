package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The leader's side of leases: only the leader keeps expiry times. It
// promotes its lessor when it becomes leader (every TTL extended, so no
// lease expires because of the election) and demotes it when it stops
// being one; it looks for expired leases every leaseCheckInterval and
// proposes their revoke through Raft, so every member deletes the keys at
// the same revision. Renewals and time-to-live questions are answered by
// the leader; a follower forwards them to the leader's peer URL (as etcd's
// leasehttp does), where the peer port's /leases handlers answer from the
// leader's lessor without forwarding again.
//
// Why the peer port rather than gRPC to the leader's client URL: the peer
// URLs are known from the bootstrap membership on every member at all
// times (client URLs only once published through Raft), the peer port is
// not subject to the client port's stream limits or interceptors (a
// forwarded renew would count as a client RPC in grpc_server_* metrics),
// and it is what etcd does.

const (
	leaseCheckInterval = 500 * time.Millisecond
	// leaseRevokesPerCheck bounds the revokes proposed per check: etcd's
	// default revoke rate, 1000 a second.
	leaseRevokesPerCheck = leaseRevokeRate / 2
	// leaseCheckpointBatches and leaseCheckpointBatch bound the checkpoint
	// entries proposed per check and the checkpoints in each: etcd's
	// leaseCheckpointRate/2 and maxLeaseCheckpointBatchSize.
	leaseCheckpointBatches = 500
	leaseCheckpointBatch   = 1000
	leaseRenewPath         = "/leases"
	leaseTTLPath           = "/leases/internal"
	// maxLeaseBody bounds a forwarded lease request's body.
	maxLeaseBody = 1 << 20
)

// leaseLoop is the leader's expiry loop: it promotes and demotes the lessor
// as leadership comes and goes, and proposes the revoke of expired leases.
func (s *Server) leaseLoop() {
	t := time.NewTicker(leaseCheckInterval)
	defer t.Stop()
	leader := false
	for {
		changed := s.status.leaderChanged()
		if now := s.status.isLeader(); now != leader {
			leader = now
			if leader {
				s.lessor.promote(time.Now(), s.cfg.ElectionTimeout)
			} else {
				s.lessor.demote()
			}
		}
		if leader {
			for _, id := range s.lessor.expired(time.Now(), leaseRevokesPerCheck) {
				s.wg.Add(1)
				go func() { defer s.wg.Done(); s.revokeExpired(id) }()
			}
			cps := s.lessor.dueCheckpoints(time.Now(), leaseCheckpointBatches*leaseCheckpointBatch)
			for len(cps) > 0 {
				batch := cps[:min(len(cps), leaseCheckpointBatch)]
				cps = cps[len(batch):]
				s.wg.Add(1)
				go func() { defer s.wg.Done(); s.proposeCheckpoints(batch) }()
			}
		}
		select {
		case <-t.C:
		case <-changed:
		case <-s.stopc:
			return
		}
	}
}

// revokeExpired proposes the revoke of an expired lease. A failure is
// retried by the loop after expiredLeaseRetry if the lease still exists.
func (s *Server) revokeExpired(id int64) {
	ctx, cancel := s.stoppable()
	defer cancel()
	// As root (etcd's WithRoot): the leader revokes whoever attached keys.
	res, err := s.propose(withRootAuth(ctx), &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
	if err == nil {
		err = res.err
	}
	if err != nil && !errors.Is(err, errLeaseNotFound) {
		s.lg.Warn("failed to revoke expired lease", "lease-id", fmt.Sprintf("%016x", id), "error", err)
	}
}

// proposeCheckpoints records the leader's remaining TTLs through Raft. A
// failure is logged and not retried: the lease's next checkpoint is
// scheduled when one is applied, so a lost one only means that a new
// leader extends the lease from an older record (as etcd, whose
// checkpointer drops a failed batch too).
func (s *Server) proposeCheckpoints(cps []*pb.LeaseCheckpoint) {
	ctx, cancel := s.stoppable()
	defer cancel()
	res, err := s.propose(withRootAuth(ctx), &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: cps}})
	if err == nil {
		err = res.err
	}
	if err != nil {
		s.lg.Warn("failed to checkpoint leases", "leases", len(cps), "error", err)
	}
}

// stoppable is a context canceled when the server stops (or by cancel).
func (s *Server) stoppable() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// renewOnLeader renews lease id from this member's lessor, first clearing
// its checkpointed remaining TTL through Raft where one is recorded (so
// the renewal gives the full TTL, and a new leader will too), as etcd's
// Renew. Errors: errNotPrimary, errLeaseNotFound, the clearing proposal's.
func (s *Server) renewOnLeader(ctx context.Context, id int64) (int64, error) {
	if s.lessor.needsClear(id, time.Now()) {
		res, err := s.propose(withRootAuth(ctx), &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{
			Checkpoints: []*pb.LeaseCheckpoint{{ID: id, Remaining_TTL: 0}}}})
		if err == nil {
			err = res.err
		}
		if err != nil {
			return -1, err
		}
	}
	return s.lessor.renew(id, time.Now())
}

// leaseRenew renews lease id on the leader, through the peer port when
// this member is not it, and returns its TTL. Errors: errLeaseNotFound,
// etcd's "no leader", "request timed out".
func (s *Server) leaseRenew(ctx context.Context, id int64) (int64, error) {
	var ttl int64
	err := s.onLeaseLeader(ctx, func() error {
		var err error
		if ttl, err = s.renewOnLeader(ctx, id); err == nil {
			s.metrics.leaseRenewed.Inc()
		}
		return err
	}, leaseRenewPath, &pb.LeaseKeepAliveRequest{ID: id}, func(body []byte) error {
		var resp pb.LeaseKeepAliveResponse
		if err := resp.Unmarshal(body); err != nil {
			return err
		}
		ttl = resp.TTL
		return nil
	})
	return ttl, err
}

// leaseTimeToLive answers r from the leader's lessor, through the peer port
// when this member is not the leader. The response has no header.
func (s *Server) leaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	var resp *pb.LeaseTimeToLiveResponse
	err := s.onLeaseLeader(ctx, func() error {
		st, err := s.lessor.timeToLive(r.ID, r.Keys, time.Now())
		if err != nil {
			return err
		}
		resp = &pb.LeaseTimeToLiveResponse{ID: r.ID, TTL: st.remaining, GrantedTTL: st.granted}
		for _, k := range st.keys {
			resp.Keys = append(resp.Keys, []byte(k))
		}
		return nil
	}, leaseTTLPath, r, func(body []byte) error {
		resp = &pb.LeaseTimeToLiveResponse{}
		return resp.Unmarshal(body)
	})
	return resp, err
}

type marshaler interface{ Marshal() ([]byte, error) }

// onLeaseLeader runs local on the leader, after a ReadIndex round (which
// confirms the leadership and waits until this member applied everything
// committed, as etcd's ensureLeadership and waitAppliedIndex), or else
// posts req to path on the leader's peer URLs and hands the answer to
// decode; retried until the request timeout while there is no leader or
// the leader's lessor is not promoted yet.
func (s *Server) onLeaseLeader(ctx context.Context, local func() error, path string, req marshaler, decode func([]byte) error) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.requestTimeout())
	defer cancel()
	body, err := req.Marshal()
	if err != nil {
		return err
	}
	for {
		if err := s.waitLeader(cctx); err != nil {
			return err
		}
		lead := s.status.leader()
		if lead == s.id {
			if err := s.linearizableReadNotify(cctx); err == nil {
				if err := local(); !errors.Is(err, errNotPrimary) {
					return err
				}
			}
		} else if m := s.readView().membership.Member(lead); m != nil {
			for _, u := range m.PeerURLs {
				answer, err := s.postLease(cctx, u+path, body)
				if err == nil {
					return decode(answer)
				}
				if errors.Is(err, errLeaseNotFound) {
					return err
				}
			}
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-cctx.Done():
			if ctx.Err() != nil {
				return clientContextError(ctx)
			}
			return rpctypes.ErrGRPCTimeout
		}
	}
}

// postLease posts a forwarded lease request to a peer's URL.
func (s *Server) postLease(ctx context.Context, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/protobuf")
	req.Header.Set("X-Etcd-Cluster-ID", idString(s.cid))
	resp, err := s.peerClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxLeaseBody))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return answer, nil
	case http.StatusNotFound:
		return nil, errLeaseNotFound
	}
	return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(answer))
}

// serveLease answers a lease request forwarded by a follower, from this
// member's lessor only: 404 for a lease not found, 503 when this member is
// not the (promoted) leader, so the follower tries again.
func (s *Server) serveLease(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if cid := r.Header.Get("X-Etcd-Cluster-ID"); cid != idString(s.cid) {
		http.Error(w, "cluster ID mismatch", http.StatusPreconditionFailed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLeaseBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.status.isLeader() {
		http.Error(w, errNotPrimary.Error(), http.StatusServiceUnavailable)
		return
	}
	if err := s.linearizableReadNotify(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var out marshaler
	switch r.URL.Path {
	case leaseRenewPath:
		var req pb.LeaseKeepAliveRequest
		if err = req.Unmarshal(body); err == nil {
			var ttl int64
			ttl, err = s.renewOnLeader(r.Context(), req.ID)
			out = &pb.LeaseKeepAliveResponse{ID: req.ID, TTL: ttl}
		}
	case leaseTTLPath:
		var req pb.LeaseTimeToLiveRequest
		if err = req.Unmarshal(body); err == nil {
			var st leaseStatus
			st, err = s.lessor.timeToLive(req.ID, req.Keys, time.Now())
			resp := &pb.LeaseTimeToLiveResponse{ID: req.ID, TTL: st.remaining, GrantedTTL: st.granted}
			for _, k := range st.keys {
				resp.Keys = append(resp.Keys, []byte(k))
			}
			out = resp
		}
	default:
		http.NotFound(w, r)
		return
	}
	switch {
	case errors.Is(err, errLeaseNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case errors.Is(err, errNotPrimary):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data, err := out.Marshal()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/protobuf")
	_, _ = w.Write(data)
}

// peerHandlerWithLeases adds the lease forwarding endpoints to the peer
// port's handler.
func (s *Server) peerHandlerWithLeases(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc(leaseRenewPath, s.serveLease)
	mux.HandleFunc(leaseTTLPath, s.serveLease)
	return mux
}
