package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/quorum-kv/quorum/server/etcdbolt"
	"github.com/quorum-kv/quorum/server/mvcc"
)

// The corruption checks, as etcd's (etcdserver/corrupt.go): members
// compare etcd's HashKV of their keyspace at the same revision, fetched
// from each other over the peer port's /members/hashkv.
//
//   - The initial check (--experimental-initial-corrupt-check, or
//     --feature-gates=InitialCorruptCheck=true): a member restarting with
//     data, before it serves anything, hashes what it holds and asks every
//     peer for its hash at that revision; a peer with a different hash at
//     the same compaction revision makes it refuse to start ("found data
//     inconsistency with peers").
//   - The periodic check (--corrupt-check-time): every interval the
//     leader hashes its keyspace, asks the peers at that revision, and
//     raises the CORRUPT alarm through Raft for a member whose hash
//     differs (or whose revision is ahead of the leader's). With CORRUPT
//     active every member refuses KV and lease requests (alarmSet.refuse).
//   - The compaction hash check (--feature-gates=CompactHashCheck=true or
//     --experimental-compact-hash-check-enabled, every
//     --compact-hash-check-time): the leader compares the hashes every
//     member stored when it compacted at the same revision and raises
//     CORRUPT for the members outside the majority.

// peerHashKVPath is etcd's PeerHashKVPath.
const peerHashKVPath = "/members/hashkv"

// errClusterIDMismatch is rafthttp's, as a peer answers it (412).
var errClusterIDMismatch = errors.New("cluster ID mismatch")

// peerHashKVResp is one peer's answer: its hash, or why there is none.
type peerHashKVResp struct {
	id   uint64
	eps  []string
	resp *pb.HashKVResponse
	err  error
}

// peerHandlerWithHashKV adds etcd's /members/hashkv to the peer port's
// handler.
func (s *Server) peerHandlerWithHashKV(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc(peerHashKVPath, s.serveHashKV)
	return mux
}

// serveHashKV is etcd's hashKVHandler: a GET with a JSON HashKVRequest in
// its body, answered with a JSON HashKVResponse; a hash error is a 400
// naming it, another cluster's request a 412.
func (s *Server) serveHashKV(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path != peerHashKVPath {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if gcid := r.Header.Get("X-Etcd-Cluster-ID"); gcid != "" && gcid != idString(s.cid) {
		http.Error(w, errClusterIDMismatch.Error(), http.StatusPreconditionFailed)
		return
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "error reading body", http.StatusBadRequest)
		return
	}
	req := &pb.HashKVRequest{}
	if err := json.Unmarshal(b, req); err != nil {
		s.lg.Warn("failed to unmarshal request", "error", err)
		http.Error(w, "error unmarshalling request", http.StatusBadRequest)
		return
	}
	h, rev, err := s.hashByRev(req.Revision)
	if err != nil {
		s.lg.Warn("failed to get hashKV", "requested-revision", req.Revision, "error", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := json.Marshal(&pb.HashKVResponse{
		Header:          &pb.ResponseHeader{Revision: rev},
		Hash:            h.Hash,
		CompactRevision: h.CompactRevision,
		HashRevision:    h.Revision,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", idString(s.cid))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// peerHashKV is etcd's HashByRev client: peer url's hash at rev, with
// rpctypes.ErrCompacted, ErrFutureRev or ErrClusterIDMismatch for the
// peer's refusals.
func (s *Server) peerHashKV(ctx context.Context, url string, rev int64) (*pb.HashKVResponse, error) {
	body, err := json.Marshal(&pb.HashKVRequest{Revision: rev})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+peerHashKVPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Etcd-Cluster-ID", idString(s.cid))
	cc := &http.Client{Transport: s.peerClient.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadRequest:
		if strings.Contains(string(b), mvcc.ErrCompacted.Error()) {
			return nil, rpctypes.ErrCompacted
		}
		if strings.Contains(string(b), mvcc.ErrFutureRev.Error()) {
			return nil, rpctypes.ErrFutureRev
		}
		return nil, fmt.Errorf("unknown error: %s", b)
	case http.StatusPreconditionFailed:
		if strings.Contains(string(b), errClusterIDMismatch.Error()) {
			return nil, rpctypes.ErrClusterIDMismatch
		}
		return nil, fmt.Errorf("unknown error: %s", b)
	default:
		return nil, fmt.Errorf("unknown error: %s", b)
	}
	out := &pb.HashKVResponse{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// peerHashKVs is etcd's getPeerHashKVs: every other member's hash at rev,
// trying its peer URLs in turn; one entry per member with peer URLs.
func (s *Server) peerHashKVs(rev int64) []*peerHashKVResp {
	var resps []*peerHashKVResp
	for _, m := range s.readView().membership.Members {
		if m.ID == s.id || len(m.PeerURLs) == 0 {
			continue
		}
		p := &peerHashKVResp{id: m.ID, eps: m.PeerURLs}
		for _, ep := range m.PeerURLs {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.requestTimeout())
			p.resp, p.err = s.peerHashKV(ctx, ep, rev)
			cancel()
			if p.err == nil {
				break
			}
			s.lg.Warn("failed hash kv request", "local-member-id", idString(s.id), "requested-revision", rev,
				"remote-peer-endpoint", ep, "error", p.err)
		}
		resps = append(resps, p)
	}
	return resps
}

// initialCorruptCheck is etcd's InitialCheck: this member's hash of what
// it holds against every peer's at the same revision; a different hash at
// the same compaction revision is an error naming the inconsistency.
// Called by New before the member serves anything.
func (s *Server) initialCorruptCheck() error {
	me := idString(s.id)
	s.lg.Info("starting initial corruption check", "local-member-id", me, "timeout", s.cfg.requestTimeout())
	h, _, err := s.hashByRev(0)
	if err != nil {
		return fmt.Errorf("%s failed to fetch hash (%w)", me, err)
	}
	mismatch := 0
	for _, p := range s.peerHashKVs(h.Revision) {
		local := []any{"local-member-id", me, "local-member-revision", h.Revision,
			"local-member-compact-revision", h.CompactRevision, "local-member-hash", h.Hash}
		if p.resp != nil {
			fields := append(local, "remote-peer-id", idString(p.resp.Header.MemberId), "remote-peer-endpoints", p.eps,
				"remote-peer-revision", p.resp.Header.Revision, "remote-peer-compact-revision", p.resp.CompactRevision,
				"remote-peer-hash", p.resp.Hash)
			if h.Hash != p.resp.Hash {
				if h.CompactRevision == p.resp.CompactRevision {
					s.lg.Warn("found different hash values from remote peer", fields...)
					mismatch++
				} else {
					s.lg.Warn("found different compact revision values from remote peer", fields...)
				}
			}
			continue
		}
		fields := append(local, "remote-peer-id", idString(p.id), "remote-peer-endpoints", p.eps, "error", p.err)
		switch {
		case errors.Is(p.err, rpctypes.ErrFutureRev):
			s.lg.Warn("cannot fetch hash from slow remote peer", fields...)
		case errors.Is(p.err, rpctypes.ErrCompacted):
			s.lg.Warn("cannot fetch hash from remote peer; local member is behind", fields...)
		case errors.Is(p.err, rpctypes.ErrClusterIDMismatch):
			s.lg.Warn("cluster ID mismatch", fields...)
		}
	}
	if mismatch > 0 {
		return fmt.Errorf("%s found data inconsistency with peers", me)
	}
	s.lg.Info("initial corruption checking passed; no corruption", "local-member-id", me)
	return nil
}

// periodicCorruptCheck is etcd's PeriodicCheck, run by the leader: its
// hash, the peers' at that revision, a linearizable read, its hash again;
// then CORRUPT is raised through Raft for the first member found
// inconsistent (itself if its own hash changed at the same revision).
func (s *Server) periodicCorruptCheck() error {
	h, _, err := s.hashByRev(0)
	if err != nil {
		return err
	}
	peers := s.peerHashKVs(h.Revision)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.requestTimeout())
	err = s.linearizableReadNotify(ctx)
	cancel()
	if err != nil {
		return err
	}
	h2, rev2, err := s.hashByRev(0)
	if err != nil {
		return err
	}
	alarmed := false
	mismatch := func(id uint64) {
		if alarmed {
			return
		}
		alarmed = true
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.requestTimeout())
		defer cancel()
		_ = s.raiseAlarm(ctx, id, pb.AlarmType_CORRUPT)
	}
	if h2.Hash != h.Hash && h2.Revision == h.Revision && h.CompactRevision == h2.CompactRevision {
		s.lg.Warn("found hash mismatch", "revision-1", h.Revision, "compact-revision-1", h.CompactRevision, "hash-1", h.Hash,
			"revision-2", h2.Revision, "compact-revision-2", h2.CompactRevision, "hash-2", h2.Hash)
		mismatch(s.id)
	}
	checked := 0
	for _, p := range peers {
		if p.resp == nil {
			continue
		}
		checked++
		if p.resp.Header.Revision > rev2 {
			s.lg.Warn("revision from follower must be less than or equal to leader's",
				"leader-revision", rev2, "follower-revision", p.resp.Header.Revision, "follower-peer-id", idString(p.id))
			mismatch(p.id)
		}
		if p.resp.CompactRevision > h2.CompactRevision {
			s.lg.Warn("compact revision from follower must be less than or equal to leader's",
				"leader-compact-revision", h2.CompactRevision, "follower-compact-revision", p.resp.CompactRevision,
				"follower-peer-id", idString(p.id))
			mismatch(p.id)
		}
		if p.resp.CompactRevision == h.CompactRevision && p.resp.Hash != h.Hash {
			s.lg.Warn("same compact revision then hashes must match",
				"leader-compact-revision", h2.CompactRevision, "leader-hash", h.Hash,
				"follower-compact-revision", p.resp.CompactRevision, "follower-hash", p.resp.Hash,
				"follower-peer-id", idString(p.id))
			mismatch(p.id)
		}
	}
	s.lg.Info("finished peer corruption check", "number-of-peers-checked", checked)
	return nil
}

// corruptCheckLoop is etcd's monitorKVHash: every --corrupt-check-time
// the leader runs the periodic check, until the member stops. Nothing
// when the interval is 0.
func (s *Server) corruptCheckLoop() {
	t := s.cfg.CorruptCheckTime
	if t <= 0 {
		return
	}
	tick := time.NewTicker(t)
	defer tick.Stop()
	s.lg.Info("enabled corruption checking", "local-member-id", idString(s.id), "interval", t)
	for {
		select {
		case <-s.stopc:
			s.lg.Info("server has stopped; stopping kv hash's monitor")
			return
		case <-tick.C:
		}
		if !s.status.isLeader() {
			continue
		}
		if err := s.periodicCorruptCheck(); err != nil {
			s.lg.Warn("failed to check hash KV", "error", err)
		}
	}
}

// closeUnstarted releases what New opened for a member that will not
// start: its listeners, its Raft node and its WAL.
func (s *Server) closeUnstarted() {
	s.lns.close()
	s.tracing.close(context.Background())
	s.raft.node.Stop()
	if err := s.raft.log.Close(); err != nil {
		s.lg.Warn("failed to close wal", "error", err)
	}
}

// compactHashChecker is etcd's CompactHashCheck state: the newest
// compaction revision whose hash every member was found to agree on. Owned
// by compactHashCheckLoop's goroutine.
type compactHashChecker struct {
	latestRevisionChecked int64
}

// compactHashCheck is etcd's CompactHashCheck, run by the leader: for each
// hash it stored at a compaction it has not checked yet, newest first, it
// asks the peers for theirs at that revision (answered from their own
// stored hashes). If every peer answered at the same compaction revision
// with the same hash, that revision is checked and the check ends; if
// hashes differ, CORRUPT is raised for the members outside the majority
// (for member 0, the whole cluster, when there is no majority) and the
// check ends; a revision some peer could not be compared at is skipped
// for the next older one.
func (s *Server) compactHashCheck(c *compactHashChecker) {
	me := idString(s.id)
	s.lg.Info("starting compact hash check", "local-member-id", me, "timeout", s.cfg.requestTimeout())
	var hashes []etcdbolt.KeyValueHash
	stored := s.app.compactionHashes.Hashes() // oldest first
	for i := len(stored) - 1; i >= 0 && stored[i].Revision > c.latestRevisionChecked; i-- {
		hashes = append(hashes, stored[i])
	}
	for i, h := range hashes {
		peers := s.peerHashKVs(h.Revision)
		if len(peers) == 0 {
			continue
		}
		if s.checkPeerHashes(c, h, peers) {
			s.lg.Info("finished compaction hash check", "number-of-hashes-checked", i+1)
			return
		}
	}
	s.lg.Info("finished compaction hash check", "number-of-hashes-checked", len(hashes))
}

// checkPeerHashes is etcd's: whether the check of h is conclusive (every
// peer agreed, or a mismatch was alarmed).
func (s *Server) checkPeerHashes(c *compactHashChecker, h etcdbolt.KeyValueHash, peers []*peerHashKVResp) bool {
	leader := idString(s.id)
	members := map[uint32][]uint64{h.Hash: {s.id}}
	checked := 0
	for _, p := range peers {
		reason := ""
		switch {
		case p.resp == nil:
			reason = "no response"
		case p.resp.CompactRevision != h.CompactRevision:
			reason = fmt.Sprintf("the peer's CompactRevision %d doesn't match leader's CompactRevision %d",
				p.resp.CompactRevision, h.CompactRevision)
		}
		if reason != "" {
			s.lg.Warn("Skipped peer's hash", "number-of-peers", len(peers), "leader-id", leader,
				"peer-id", idString(p.id), "reason", reason)
			continue
		}
		checked++
		members[p.resp.Hash] = append(members[p.resp.Hash], p.id)
	}
	if len(members) == 1 {
		if checked == len(peers) {
			s.lg.Info("successfully checked hash on whole cluster", "number-of-peers-checked", checked,
				"revision", h.Revision, "compactRevision", h.CompactRevision)
			c.latestRevisionChecked = max(c.latestRevisionChecked, h.Revision)
			return true
		}
		s.lg.Warn("skipped revision in compaction hash check; was not able to check all peers",
			"number-of-peers-checked", checked, "number-of-peers", len(peers),
			"revision", h.Revision, "compactRevision", h.CompactRevision)
		return false
	}
	quorum := (len(peers)+1)/2 + 1
	quorumExist := false
	for hash, ids := range members {
		if len(ids) >= quorum {
			quorumExist = true
			delete(members, hash)
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.requestTimeout())
	defer cancel()
	if !quorumExist {
		s.lg.Error("Detected compaction hash mismatch but cannot identify the corrupted members, so intentionally set the memberID as 0",
			"leader-id", leader, "leader-revision", h.Revision, "leader-compact-revision", h.CompactRevision, "leader-hash", h.Hash)
		_ = s.raiseAlarm(ctx, 0, pb.AlarmType_CORRUPT)
	}
	for hash, ids := range members {
		if quorumExist {
			for _, id := range ids {
				_ = s.raiseAlarm(ctx, id, pb.AlarmType_CORRUPT)
			}
		}
		names := make([]string, len(ids))
		for i, id := range ids {
			names[i] = idString(id)
		}
		s.lg.Error("Detected compaction hash mismatch", "leader-id", leader, "leader-revision", h.Revision,
			"leader-compact-revision", h.CompactRevision, "leader-hash", h.Hash, "peer-hash", hash,
			"peer-ids", strings.Join(names, ","), "quorum-exist", quorumExist)
	}
	return true
}

// compactHashCheckLoop is etcd's monitorCompactHash: with the
// CompactHashCheck feature gate, every --compact-hash-check-time the
// leader runs the compaction hash check, until the member stops.
func (s *Server) compactHashCheckLoop() {
	if !s.cfg.CompactHashCheck || s.cfg.CompactHashCheckTime <= 0 {
		return
	}
	var c compactHashChecker
	for {
		select {
		case <-time.After(s.cfg.CompactHashCheckTime):
		case <-s.stopc:
			s.lg.Info("server has stopped; stopping compact hash's monitor")
			return
		}
		if !s.status.isLeader() {
			continue
		}
		s.compactHashCheck(&c)
	}
}
