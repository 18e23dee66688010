package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/mvcc"
	"github.com/quorum-kv/quorum/server/snap"
)

// applyLoop is the only goroutine that mutates the MVCC store and the
// membership. It applies committed entries in log order, answers the
// proposers waiting on this member, publishes a new read view after every
// batch and starts a snapshot every --snapshot-count entries.
func (s *Server) applyLoop() {
	for {
		select {
		case next := <-s.snapshotDone:
			s.nextSnapshot = next
		case job := <-s.applyc:
			start := time.Now()
			if !raft.IsEmptySnap(job.snapshot) {
				if err := s.applySnapshot(job.snapshot); err != nil {
					s.lg.Error("cannot apply snapshot received from the leader", "err", err)
					s.fatal(err)
					return
				}
			}
			for i := range job.entries {
				s.applyEntry(&job.entries[i])
			}
			s.publish()
			s.applyWait.advance(s.appliedIndex)
			s.metrics.proposalsApplied.Set(float64(s.appliedIndex))
			s.metrics.applyDuration.Observe(time.Since(start).Seconds())
			s.metrics.dbSize.Set(float64(s.store.Size()))
			s.metrics.proposalsPending.Set(float64(s.wait.pending()))
			s.maybeSnapshot()
		case <-s.stopc:
			return
		}
	}
}

func (s *Server) applySnapshot(sn raftpb.Snapshot) error {
	if sn.Metadata.Index <= s.appliedIndex {
		return nil
	}
	store, mem, err := decodeSnapshot(sn.Data)
	if err != nil {
		return fmt.Errorf("snapshot at index %d: %w", sn.Metadata.Index, err)
	}
	s.store, s.membership = store, mem
	s.confState = sn.Metadata.ConfState
	s.appliedIndex, s.snapshotIndex = sn.Metadata.Index, sn.Metadata.Index
	s.lg.Info("restored the keyspace from a snapshot", "index", sn.Metadata.Index, "revision", store.Rev())
	return nil
}

func (s *Server) applyEntry(e *raftpb.Entry) {
	if e.Index <= s.appliedIndex {
		return
	}
	defer func() { s.appliedIndex = e.Index }()
	switch e.Type {
	case raftpb.EntryNormal:
		if len(e.Data) == 0 { // a new leader's empty entry
			return
		}
		var r pb.InternalRaftRequest
		if err := r.Unmarshal(e.Data); err != nil {
			// Every member would fail the same way on this entry; stopping
			// is the only answer that does not diverge.
			panic(fmt.Sprintf("quorumd: committed entry %d does not decode: %v", e.Index, err))
		}
		res := s.applyRequest(&r)
		if r.Header != nil {
			s.wait.trigger(r.Header.ID, res)
		}
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			panic(fmt.Sprintf("quorumd: conf change entry %d does not decode: %v", e.Index, err))
		}
		s.confState = *s.node.ApplyConfChange(cc)
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			panic(fmt.Sprintf("quorumd: conf change entry %d does not decode: %v", e.Index, err))
		}
		s.confState = *s.node.ApplyConfChange(cc)
	}
}

// applyRequest applies one request deterministically; every member computes
// the same result.
func (s *Server) applyRequest(r *pb.InternalRaftRequest) applyResult {
	var res applyResult
	switch {
	case r.Put != nil:
		res.resp, res.err = s.store.Put(r.Put)
	case r.DeleteRange != nil:
		res.resp, res.err = s.store.DeleteRange(r.DeleteRange)
	case r.Txn != nil:
		res.resp, res.err = s.store.Txn(r.Txn)
	case r.Compaction != nil:
		res.err = s.store.Compact(r.Compaction.Revision)
		res.resp = &pb.CompactionResponse{}
	case r.ClusterMemberAttrSet != nil:
		s.applyMemberAttrs(r.ClusterMemberAttrSet)
		res.resp = &struct{}{}
	default:
		res.err = errors.New("quorumd: unsupported request in the log")
	}
	res.rev = s.store.Rev()
	return res
}

func (s *Server) applyMemberAttrs(r *membershippb.ClusterMemberAttrSetRequest) {
	m := s.membership.Member(r.Member_ID)
	if m == nil || r.MemberAttributes == nil {
		return
	}
	m.Name = r.MemberAttributes.Name
	m.ClientURLs = append([]string(nil), r.MemberAttributes.ClientUrls...)
}

// maybeSnapshot starts a snapshot in the background once --snapshot-count
// entries were applied since the last one. The store's view is an O(1)
// copy-on-write clone, so the applier goes on while it is serialized.
//
// A snapshot costs time proportional to the whole keyspace (etcd's bolt
// file makes its snapshots incremental; ours re-serializes), so under a
// heavy write load the snapshotter is held to a duty cycle: after a
// snapshot that took d, the next starts no sooner than snapshotDutyFactor*d
// after it finished. --snapshot-count still triggers snapshots; a busy
// member just truncates its log a little later.
func (s *Server) maybeSnapshot() {
	if s.appliedIndex-s.snapshotIndex < s.cfg.SnapshotCount || s.snapshotting.Load() {
		return
	}
	if time.Now().Before(s.nextSnapshot) {
		return
	}
	s.snapshotting.Store(true)
	view, mem, cs, idx := s.store.View(), s.membership.Clone(), s.confState, s.appliedIndex
	s.snapshotIndex = idx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		start := time.Now()
		err := s.saveSnapshot(view, mem, cs, idx)
		took := time.Since(start)
		select {
		case s.snapshotDone <- time.Now().Add(snapshotDutyFactor * took):
		case <-s.stopc:
		}
		s.snapshotting.Store(false)
		if err != nil {
			s.lg.Warn("snapshot failed; will retry after more entries", "index", idx, "err", err)
		}
	}()
}

// snapshotDutyFactor bounds the snapshotter to about one tenth of a core.
const snapshotDutyFactor = 9

// saveSnapshot writes the view to a snapshot file at idx, streaming it
// straight into the file (snap.Create): no copy of the keyspace is built in
// memory, where encoding into a buffer cost four times the encoding itself
// (allocating and faulting in the pages) and kept a whole extra keyspace on
// the heap until the next snapshot. Raft's storage gets the snapshot's
// metadata only; the transport reads the file when a follower needs it
// (snapshotData).
func (s *Server) saveSnapshot(view *mvcc.View, mem *Membership, cs raftpb.ConfState, idx uint64) error {
	start := time.Now()
	term, err := s.storage.Term(idx)
	if errors.Is(err, raft.ErrCompacted) || errors.Is(err, raft.ErrUnavailable) {
		return nil // a newer snapshot arrived from the leader meanwhile
	}
	if err != nil {
		return fmt.Errorf("snapshot at %d: term: %w", idx, err)
	}
	n, err := snap.Create(s.snapDir, raftpb.SnapshotMetadata{ConfState: cs, Index: idx, Term: term},
		func(w io.Writer) error { return encodeSnapshot(w, view, mem) })
	if err != nil {
		return err
	}
	if _, err := s.storage.CreateSnapshot(idx, &cs, nil); errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil // a newer snapshot arrived from the leader meanwhile
	} else if err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	compactTo := uint64(1)
	if idx > s.cfg.catchUpEntries() {
		compactTo = idx - s.cfg.catchUpEntries()
	}
	if first, _ := s.storage.FirstIndex(); compactTo > first {
		if err := s.storage.Compact(compactTo); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("compact raft log: %w", err)
		}
	}
	select {
	case s.releasec <- compactTo:
	case <-s.stopc:
	}
	if err := snap.Purge(s.snapDir, 3); err != nil {
		s.lg.Warn("purging old snapshots", "err", err)
	}
	s.metrics.snapshotSave.Observe(time.Since(start).Seconds())
	s.lg.Info("saved snapshot", "index", idx, "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// withoutData is sn with its data dropped, as Raft's in-memory storage
// keeps it: the data lives in the snapshot file (see snapshotData).
func withoutData(sn raftpb.Snapshot) raftpb.Snapshot {
	sn.Data = nil
	return sn
}

// snapshotData reads the data of the snapshot at md back from its file, for
// a MsgSnap to a follower. The file may be gone if a newer snapshot
// replaced it meanwhile; Raft then retries with the newer one.
func (s *Server) snapshotData(md raftpb.SnapshotMetadata) ([]byte, error) {
	sn, err := snap.Load(filepath.Join(s.snapDir, snap.Name(md.Term, md.Index)))
	if err != nil {
		return nil, err
	}
	return sn.Data, nil
}

// Snapshot payload: magic, membership JSON (length-prefixed), then the MVCC
// store's own checksummed serialization; a CRC32-C of the membership part
// guards it.
var snapMagic = []byte("QUORUMSNAP1\n")

func encodeSnapshot(w io.Writer, view *mvcc.View, mem *Membership) error {
	mj, err := json.Marshal(mem)
	if err != nil {
		return err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(mj)))
	binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(mj, crc32.MakeTable(crc32.Castagnoli)))
	for _, b := range [][]byte{snapMagic, hdr[:], mj} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err = view.WriteTo(w)
	return err
}

func decodeSnapshot(data []byte) (*mvcc.Store, *Membership, error) {
	if !bytes.HasPrefix(data, snapMagic) || len(data) < len(snapMagic)+8 {
		return nil, nil, errors.New("snapshot data is not a quorumd snapshot")
	}
	rest := data[len(snapMagic):]
	n := binary.BigEndian.Uint32(rest[:4])
	sum := binary.BigEndian.Uint32(rest[4:8])
	rest = rest[8:]
	if uint64(n) > uint64(len(rest)) {
		return nil, nil, errors.New("snapshot membership section is truncated")
	}
	mj := rest[:n]
	if crc32.Checksum(mj, crc32.MakeTable(crc32.Castagnoli)) != sum {
		return nil, nil, errors.New("snapshot membership section checksum mismatch")
	}
	var mem Membership
	if err := json.Unmarshal(mj, &mem); err != nil {
		return nil, nil, fmt.Errorf("snapshot membership: %w", err)
	}
	store, err := mvcc.Restore(bytes.NewReader(rest[n:]))
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot keyspace: %w", err)
	}
	return store, &mem, nil
}

// publishAttributes proposes this member's name and client URLs through Raft
// once a leader exists, as etcd's publish, so MemberList on every member
// shows every member's client URLs. Retries until it is applied or the
// member stops.
func (s *Server) publishAttributes() {
	urls := make([]string, len(s.cfg.AdvertiseClientURLs))
	for i := range s.cfg.AdvertiseClientURLs {
		urls[i] = s.cfg.AdvertiseClientURLs[i].String()
	}
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID:        s.id,
		MemberAttributes: &membershippb.Attributes{Name: s.cfg.Name, ClientUrls: urls},
	}}
	for {
		if st := s.readView(); st != nil {
			if m := st.membership.Member(s.id); m != nil && m.Name == s.cfg.Name && equalStrings(m.ClientURLs, urls) {
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.requestTimeout())
		_, err := s.propose(ctx, req)
		cancel()
		if err == nil {
			s.lg.Info("published member attributes", "name", s.cfg.Name, "client-urls", urls)
			return
		}
		select {
		case <-s.stopc:
			return
		case <-time.After(s.cfg.HeartbeatInterval * 5):
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
