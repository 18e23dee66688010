package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/quorum-kv/quorum/server/etcdbolt"
)

// hashByRev is etcd's hashStorage.HashByRev: the hash stored at a
// compaction of revision rev if there is one, else etcd's HashKV of the
// published keyspace at rev (0: the current revision); and the current
// revision. Errors: mvcc.ErrCompacted, mvcc.ErrFutureRev. Any goroutine.
func (s *Server) hashByRev(rev int64) (etcdbolt.KeyValueHash, int64, error) {
	v := s.readView().view
	if h, ok := s.app.compactionHashes.Lookup(rev); ok {
		return h, v.Rev(), nil
	}
	h, err := etcdbolt.HashKV(v, rev)
	if err != nil {
		return etcdbolt.KeyValueHash{}, v.Rev(), err
	}
	return h, v.Rev(), nil
}

// HashKV is etcd's: root only; the hash of the keyspace at the requested
// revision (etcdbolt.HashKV, the same number etcd computes for the same
// history), with "mvcc: required revision has been compacted" or "is a
// future revision" as etcd's.
func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	s := m.s
	if err := s.checkAdmin(ctx); err != nil {
		return nil, err
	}
	h, rev, err := s.hashByRev(r.Revision)
	if err != nil {
		return nil, togRPCError(err)
	}
	return &pb.HashKVResponse{
		Header:          s.header(rev),
		Hash:            h.Hash,
		CompactRevision: h.CompactRevision,
		HashRevision:    h.Revision,
	}, nil
}

// hashBeforeCompaction stores, as etcd does while it compacts, the hash
// of the keyspace at revision at just before it is compacted there
// (etcdbolt.CompactionHashes), computed from the current view off the
// applier goroutine (it reads an immutable view; a member stopping
// meanwhile just loses it); nothing if the compaction will fail. Applier
// goroutine.
func (a *applier) hashBeforeCompaction(at int64) {
	v := a.store.View()
	if c, _ := v.LastCompaction(); at <= c || at > v.Rev() {
		return
	}
	go func() {
		h, err := etcdbolt.HashKV(v, at)
		if err != nil {
			a.lg.Warn("failed to hash the keyspace before compaction", "compact-revision", at, "error", err)
			return
		}
		a.lg.Info("storing new hash", "hash", h.Hash, "revision", h.Revision, "compact-revision", h.CompactRevision)
		a.compactionHashes.Store(h)
	}()
}
