package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"
)

// Joining an existing cluster, as etcd's bootstrapExistingClusterNoWAL: the
// member asks the peers of --initial-cluster for the cluster's members over
// the peer /members endpoint (GetClusterFromRemotePeers), finds itself among
// them by its peer URLs (ValidateClusterAndAssignIDs: its ID is the one
// MemberAdd gave it) and starts with an empty log, which the leader fills.

// Peer endpoints of etcd's peer handler (etcdserver/api/etcdhttp/peer.go).
const (
	peerMembersPath         = "/members"
	peerMemberPromotePrefix = "/members/promote/"
)

// remotePeerURLs are the peer URLs of the members of m other than name,
// sorted (etcd's getRemotePeerURLs).
func remotePeerURLs(m *Membership, name string) []string {
	var us []string
	for _, x := range m.Members {
		if x.Name != name {
			us = append(us, x.PeerURLs...)
		}
	}
	sort.Strings(us)
	return us
}

// clusterFromRemotePeers is etcd's GetClusterFromRemotePeers: the members
// and cluster ID the first peer that answers GET /members reports.
func clusterFromRemotePeers(lg interface{ Warn(string, ...any) }, urls []string, rt http.RoundTripper) (*Membership, error) {
	cc := &http.Client{Transport: rt, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, u := range urls {
		addr := u + peerMembersPath
		resp, err := cc.Get(addr)
		if err != nil {
			lg.Warn("failed to get cluster response", "address", addr, "error", err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			lg.Warn("failed to read body of cluster response", "address", addr, "error", err)
			continue
		}
		var membs []*Member
		if err := json.Unmarshal(b, &membs); err != nil {
			lg.Warn("failed to unmarshal cluster response", "address", addr, "error", err)
			continue
		}
		cid, err := strconv.ParseUint(resp.Header.Get("X-Etcd-Cluster-ID"), 16, 64)
		if err != nil {
			lg.Warn("failed to parse cluster ID", "address", addr, "header", resp.Header.Get("X-Etcd-Cluster-ID"), "error", err)
			continue
		}
		if len(membs) == 0 {
			return nil, errors.New("failed to get raft cluster member(s) from the given URLs")
		}
		sort.Slice(membs, func(i, j int) bool { return membs[i].ID < membs[j].ID })
		return &Membership{ClusterID: cid, Members: membs}, nil
	}
	return nil, errors.New("could not retrieve cluster information from the given URLs")
}

// matchExistingMember is etcd's ValidateClusterAndAssignIDs for member
// name: local (--initial-cluster) must list the existing cluster's members,
// by peer URLs; name's member in existing is returned.
func matchExistingMember(local, existing *Membership, name string) (*Member, error) {
	if len(local.Members) != len(existing.Members) {
		return nil, errors.New("member count is unequal")
	}
	var me *Member
	for _, e := range existing.Members {
		var match *Member
		for _, l := range local.Members {
			if samePeerURLs(e.PeerURLs, l.PeerURLs) {
				match = l
				break
			}
		}
		if match == nil {
			return nil, fmt.Errorf("PeerURLs: no match found for existing member (%s, %v)", idString(e.ID), e.PeerURLs)
		}
		if match.Name == name {
			me = e
		}
	}
	if me == nil {
		return nil, fmt.Errorf("member %q of --initial-cluster is not in the existing cluster", name)
	}
	return me, nil
}

func describeMembers(m *Membership) string {
	parts := make([]string, len(m.Members))
	for i, x := range m.Members {
		parts[i] = fmt.Sprintf("%s=%s", idString(x.ID), strings.Join(x.PeerURLs, ","))
	}
	return fmt.Sprintf("{ClusterID:%s Members:[%s]}", idString(m.ClusterID), strings.Join(parts, " "))
}

// peerHandlerWithMembers adds etcd's /members and /members/promote/
// endpoints to the peer port's handler.
func (s *Server) peerHandlerWithMembers(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc(peerMembersPath, s.servePeerMembers)
	mux.HandleFunc(peerMemberPromotePrefix, s.servePeerPromote)
	return mux
}

// servePeerMembers answers GET /members on the peer port with the applied
// membership's members as etcd's JSON, and the cluster ID in
// X-Etcd-Cluster-ID.
func (s *Server) servePeerMembers(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", idString(s.cid))
	if r.URL.Path != peerMembersPath {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	membs := s.readView().membership.Members
	if membs == nil {
		membs = []*Member{}
	}
	json.NewEncoder(w).Encode(membs)
}

// servePeerPromote answers POST /members/promote/<id> on the peer port:
// a follower forwards MemberPromote to the leader here, as etcd's, since
// only the leader knows whether the learner is in sync.
func (s *Server) servePeerPromote(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", idString(s.cid))
	idStr := strings.TrimPrefix(r.URL.Path, peerMemberPromotePrefix)
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil {
		http.Error(w, fmt.Sprintf("member %s not found in cluster", idStr), http.StatusNotFound)
		return
	}
	ctx := r.Context()
	if tok := r.Header.Get("Authorization"); tok != "" {
		// The forwarding member's client's token (etcd's).
		ctx = metadata.NewIncomingContext(ctx, metadata.New(map[string]string{rpctypes.TokenFieldNameGRPC: tok}))
	}
	membs, err := s.promoteMember(ctx, id)
	if err != nil {
		switch {
		case errors.Is(err, rpctypes.ErrGRPCMemberNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, rpctypes.ErrGRPCMemberNotLearner), errors.Is(err, rpctypes.ErrGRPCLearnerNotReady):
			http.Error(w, err.Error(), http.StatusPreconditionFailed)
		default:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		s.lg.Warn("failed to promote a member", "member-id", idString(id), "error", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(membs.Members)
}

// promoteViaLeader forwards a MemberPromote to the leader's peer URLs
// (etcd's promoteMemberHTTP), until ctx ends.
func (s *Server) promoteViaLeader(ctx context.Context, id uint64) (*Membership, error) {
	for ctx.Err() == nil {
		if err := s.waitLeader(ctx); err != nil {
			return nil, err
		}
		lead := s.readView().membership.Member(s.status.leader())
		if lead == nil {
			select {
			case <-ctx.Done():
			case <-time.After(s.cfg.HeartbeatInterval):
			}
			continue
		}
		for _, u := range lead.PeerURLs {
			m, err := s.promoteHTTP(ctx, u, id)
			if err == nil {
				return m, nil
			}
			if errors.Is(err, rpctypes.ErrGRPCLearnerNotReady) || errors.Is(err, rpctypes.ErrGRPCMemberNotFound) ||
				errors.Is(err, rpctypes.ErrGRPCMemberNotLearner) {
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.cfg.HeartbeatInterval):
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, rpctypes.ErrGRPCTimeout
	}
	return nil, rpctypes.ErrGRPCCanceled
}

func (s *Server) promoteHTTP(ctx context.Context, peerURL string, id uint64) (*Membership, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peerURL+peerMemberPromotePrefix+strconv.FormatUint(id, 10), nil)
	if err != nil {
		return nil, err
	}
	// The client's auth token goes along, as etcd's promoteMemberHTTP.
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ts, ok := md[rpctypes.TokenFieldNameGRPC]
		if !ok {
			ts, ok = md[rpctypes.TokenFieldNameSwagger]
		}
		if ok && len(ts) > 0 {
			req.Header.Set("Authorization", ts[0])
		}
	}
	resp, err := s.peerClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	msg := strings.TrimSpace(string(b))
	switch resp.StatusCode {
	case http.StatusOK:
		var membs []*Member
		if err := json.Unmarshal(b, &membs); err != nil {
			return nil, fmt.Errorf("promote at %s: %w", peerURL, err)
		}
		return &Membership{ClusterID: s.cid, Members: membs}, nil
	case http.StatusNotFound:
		return nil, rpctypes.ErrGRPCMemberNotFound
	case http.StatusPreconditionFailed:
		if strings.Contains(msg, rpctypes.ErrorDesc(rpctypes.ErrGRPCLearnerNotReady)) {
			return nil, rpctypes.ErrGRPCLearnerNotReady
		}
		return nil, rpctypes.ErrGRPCMemberNotLearner
	}
	return nil, fmt.Errorf("promote at %s: %s: %s", peerURL, resp.Status, msg)
}
