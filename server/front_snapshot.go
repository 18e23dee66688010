package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/etcdbolt"
	"github.com/quorum-kv/quorum/server/mvcc"
)

// Maintenance.Snapshot and Hash: the member's state as an etcd v3.6
// backend file (server/etcdbolt), so that etcdctl snapshot save, etcdutl
// snapshot status/restore and etcd itself take it.
//
// Which quorumd state goes to which bucket (etcdBackend, the inverse in
// restore.go):
//
//	key              every stored revision of the MVCC store (View.Revisions)
//	meta             applied index (consistent_index), its term, conf state,
//	                 last compaction (finished- and scheduledCompactRev),
//	                 storageVersion 3.6.0
//	members          the membership: ID, name, peer and client URLs
//	members_removed  (none: quorumd does not remove members)
//	cluster          clusterVersion 3.6.0
//	lease            each lease's ID and granted TTL
//	alarm            the alarms active at that index
//	auth, authUsers, authRoles  the auth record: enabled, revision, users, roles

// snapshotSendBufferSize is etcd's chunk size for the snapshot stream
// (etcdserver/api/v3rpc/maintenance.go).
const snapshotSendBufferSize = 32 * 1024

// snapshotSet is the replicated state at one applied index, as a snapshot
// carries it; every part is immutable or a copy.
type snapshotSet struct {
	view      *mvcc.View
	sections  snapshotSections
	confState raftpb.ConfState
	index     uint64
}

// snapshotSet collects the state as of the last applied entry. Applier
// goroutine only.
func (a *applier) snapshotSet() snapshotSet {
	return snapshotSet{
		view:      a.store.View(),
		sections:  snapshotSections{membership: a.membership.Clone(), leases: a.lessor.records(), auth: a.authBackend.record(), alarms: a.alarms.records()},
		confState: a.confState, index: a.appliedIndex,
	}
}

// collectState returns the applier goroutine's snapshotSet: the keyspace,
// membership, leases and auth at one applied index. Any goroutine; an
// error (raft.ErrStopped) once the member stops, or ctx's.
func (a *applier) collectState(ctx context.Context) (snapshotSet, error) {
	reply := make(chan snapshotSet, 1)
	select {
	case a.collectc <- reply:
	case <-a.stopc:
		return snapshotSet{}, raft.ErrStopped
	case <-ctx.Done():
		return snapshotSet{}, ctx.Err()
	}
	return <-reply, nil
}

// consistentBackend is the member's state at one applied index as an etcd
// backend.
func (s *Server) consistentBackend(ctx context.Context) (*etcdbolt.Backend, *mvcc.View, error) {
	set, err := s.app.collectState(ctx)
	if errors.Is(err, raft.ErrStopped) {
		return nil, nil, rpctypes.ErrGRPCStopped
	}
	if err != nil {
		return nil, nil, err
	}
	term, _ := s.app.raftStorage.Term(set.index) // 0 (not written) if unknown
	return etcdBackend(set, term), set.view, nil
}

// etcdBackend maps a snapshot set at (set.index, term) onto etcd's
// backend schema; the alarms at that index go to the alarm bucket as they
// are.
func etcdBackend(set snapshotSet, term uint64) *etcdbolt.Backend {
	alarms := make([]*pb.AlarmMember, 0, len(set.sections.alarms))
	for _, r := range set.sections.alarms {
		alarms = append(alarms, &pb.AlarmMember{MemberID: r.MemberID, Alarm: pb.AlarmType(pb.AlarmType_value[r.Alarm])})
	}
	b := &etcdbolt.Backend{
		ConsistentIndex: set.index, Term: term,
		StorageVersion: etcdbolt.Version36, ClusterVersion: etcdbolt.Version36,
		Members:  etcdMembers(set.sections.membership),
		Leases:   etcdLeases(set.sections.leases),
		Alarms:   alarms,
		Keyspace: set.view.Revisions,
	}
	if set.index > 0 {
		cs := set.confState
		b.ConfState = &cs
	}
	if rev, ok := set.view.LastCompaction(); ok && rev > 0 {
		b.CompactRev = rev
	}
	if ar := set.sections.auth; ar != nil {
		// etcd writes authEnabled once auth was ever enabled or disabled;
		// quorumd keeps only the flag, so writes it when it is set.
		b.AuthEnabledSet, b.AuthEnabled = ar.Enabled, ar.Enabled
		b.AuthRevision, b.Users, b.Roles = ar.Revision, ar.Users, ar.Roles
	}
	return b
}

// etcdMembers is the membership as etcd's members bucket holds it. The
// seam for learners and removed members: only ID, name and URLs map today.
func etcdMembers(m *Membership) []*membership.Member {
	if m == nil {
		return nil
	}
	out := make([]*membership.Member, 0, len(m.Members))
	for _, x := range m.Members {
		out = append(out, &membership.Member{
			ID:             types.ID(x.ID),
			RaftAttributes: membership.RaftAttributes{PeerURLs: append([]string(nil), x.PeerURLs...)},
			Attributes:     membership.Attributes{Name: x.Name, ClientURLs: append([]string(nil), x.ClientURLs...)},
		})
	}
	return out
}

// etcdLeases is the lessor's replicated state as etcd's lease bucket holds
// it: ID, granted TTL and checkpointed remaining TTL (which etcd 3.6
// persists).
func etcdLeases(rs []leaseRecord) []*leasepb.Lease {
	out := make([]*leasepb.Lease, 0, len(rs))
	for _, r := range rs {
		out = append(out, &leasepb.Lease{ID: r.ID, TTL: r.TTL, RemainingTTL: r.RemainingTTL})
	}
	return out
}

// Hash is etcd's Maintenance.Hash: CRC-32C over the backend file's buckets
// and pairs, skipping what etcd skips (the consistent index, term and
// storage version), so it is equal on every member at the same applied
// state. The file itself is not written: the same stream feeds the hasher.
func (m *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	s := m.s
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	b, view, err := s.consistentBackend(ctx)
	if err != nil {
		return nil, err
	}
	h, err := etcdbolt.Hash(b, etcdbolt.DefaultIgnores)
	if err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	return &pb.HashResponse{Header: s.header(view.Rev()), Hash: h}, nil
}

// Snapshot is etcd's Maintenance.Snapshot: the member's state at one
// applied index, written to a temporary bbolt file in etcd's schema in the
// member's data dir, streamed in etcd's 32 KiB chunks (RemainingBytes
// counting down, Version the storage version), then the SHA-256 of the
// file's bytes in a last message, as etcdctl and etcdutl check it. The
// temporary file is removed when the stream ends, however it ends.
func (m *maintenanceServer) Snapshot(r *pb.SnapshotRequest, srv pb.Maintenance_SnapshotServer) error {
	s := m.s
	ctx := srv.Context()
	if err := s.requireAdmin(ctx); err != nil {
		return err
	}
	b, _, err := s.consistentBackend(ctx)
	if err != nil {
		return err
	}
	dir, err := s.snapshotTempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "db")
	if err := etcdbolt.WriteFile(path, b); err != nil {
		s.lg.Warn("failed to write database snapshot", "error", err)
		return rpctypes.ErrGRPCCorrupt
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat snapshot: %w", err)
	}
	total := fi.Size()
	s.lg.Info("sending database snapshot to client", "total-bytes", total, "storage-version", etcdbolt.Version36)
	h := sha256.New()
	for sent := int64(0); sent < total; {
		// A fresh buffer per message: Send may keep it after returning.
		buf := make([]byte, snapshotSendBufferSize)
		n, err := io.ReadFull(f, buf)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("read snapshot: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("read snapshot: file ended at %d of %d bytes", sent, total)
		}
		sent += int64(n)
		h.Write(buf[:n])
		if err := srv.Send(&pb.SnapshotResponse{RemainingBytes: uint64(total - sent), Blob: buf[:n], Version: etcdbolt.Version36}); err != nil {
			return err
		}
	}
	if err := srv.Send(&pb.SnapshotResponse{Blob: h.Sum(nil), Version: etcdbolt.Version36}); err != nil {
		return err
	}
	s.lg.Info("successfully sent database snapshot to client", "total-bytes", total)
	return nil
}

// snapshotTempDir is a new directory for one snapshot file: in the
// member's directory of the data dir (the system's temp dir for a member
// without one, in the in-process tests).
func (s *Server) snapshotTempDir() (string, error) {
	parent := ""
	if s.cfg.DataDir != "" {
		parent = filepath.Join(s.cfg.DataDir, "member")
	}
	dir, err := os.MkdirTemp(parent, ".snapshot-")
	if err != nil {
		return "", fmt.Errorf("create snapshot file: %w", err)
	}
	return dir, nil
}
