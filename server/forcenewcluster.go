package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/wal"
)

// forceNewCluster is etcd's --force-new-cluster on a restarting member
// (etcdserver's bootstrapWALFromSnapshot): the commit index is raised to
// the snapshot's should the hard state lag it, the log's uncommitted tail
// is dropped, and conf change entries — adding self should it not be a
// member, then removing every other member the snapshot and the log leave
// in the configuration — are saved to the WAL after the committed log and
// counted as committed. Applied like any conf change, they leave a
// one-member cluster holding everything the old one committed; the removed
// IDs are refused if they come back. It returns the hard state and entries
// to restore from. A learner is refused: it cannot be a cluster's only
// member.
func forceNewCluster(lg *slog.Logger, w *wal.WAL, sn *raftpb.Snapshot, hs raftpb.HardState, ents []raftpb.Entry, self uint64) (raftpb.HardState, []raftpb.Entry, error) {
	if sn != nil && hs.Commit < sn.Metadata.Index {
		hs.Commit = sn.Metadata.Index
	}
	for i, e := range ents {
		if e.Index > hs.Commit {
			lg.Info("discarding uncommitted WAL entries", "entry-index", e.Index,
				"commit-index-from-wal", hs.Commit, "number-of-discarded-entries", len(ents)-i)
			ents = ents[:i]
			break
		}
	}
	ids, err := effectiveNodeIDs(sn, ents)
	if err != nil {
		return hs, nil, err
	}
	if ids[self] {
		return hs, nil, fmt.Errorf("member %s is a learner: a learner cannot be a cluster's only member (restart a voter's data dir with the flag, or promote this member first)", idString(self))
	}
	add, err := forceNewClusterEntries(ids, self, hs.Term, hs.Commit)
	if err != nil {
		return hs, nil, err
	}
	if err := w.Save(raftpb.HardState{}, add, true); err != nil {
		return hs, nil, fmt.Errorf("save the conf changes: %w", err)
	}
	ents = append(ents, add...)
	if len(add) > 0 {
		hs.Commit = add[len(add)-1].Index
	}
	return hs, ents, nil
}

// effectiveNodeIDs are the IDs in Raft's configuration after the snapshot
// and the conf changes of ents (etcd's GetEffectiveNodeIDsFromWALEntries),
// each mapped to whether it is a learner.
func effectiveNodeIDs(sn *raftpb.Snapshot, ents []raftpb.Entry) (map[uint64]bool, error) {
	ids := map[uint64]bool{}
	if sn != nil {
		for _, id := range sn.Metadata.ConfState.Voters {
			ids[id] = false
		}
		for _, id := range sn.Metadata.ConfState.Learners {
			ids[id] = true
		}
	}
	for _, e := range ents {
		var ccs []raftpb.ConfChangeSingle
		switch e.Type {
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return nil, fmt.Errorf("conf change entry %d does not decode: %w", e.Index, err)
			}
			ccs = cc.AsV2().Changes
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err != nil {
				return nil, fmt.Errorf("conf change entry %d does not decode: %w", e.Index, err)
			}
			ccs = cc.Changes
		}
		for _, c := range ccs {
			switch c.Type {
			case raftpb.ConfChangeAddNode:
				ids[c.NodeID] = false
			case raftpb.ConfChangeAddLearnerNode:
				ids[c.NodeID] = true
			case raftpb.ConfChangeRemoveNode:
				delete(ids, c.NodeID)
			}
		}
	}
	return ids, nil
}

// forceNewClusterEntries are etcd's CreateConfigChangeEnts: self added
// first when it is not in ids (Raft panics on an empty voter set), with
// etcd's placeholder peer URL, then every other ID removed, in ID order,
// at term and from index+1.
func forceNewClusterEntries(ids map[uint64]bool, self, term, index uint64) ([]raftpb.Entry, error) {
	var ccs []raftpb.ConfChange
	if _, ok := ids[self]; !ok {
		ctx, err := json.Marshal(&Member{ID: self, PeerURLs: []string{"http://localhost:2380"}})
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: self, Context: ctx})
	}
	others := make([]uint64, 0, len(ids))
	for id := range ids {
		if id != self {
			others = append(others, id)
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i] < others[j] })
	for _, id := range others {
		ccs = append(ccs, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
	}
	ents := make([]raftpb.Entry, 0, len(ccs))
	for i := range ccs {
		data, err := ccs[i].Marshal()
		if err != nil {
			return nil, fmt.Errorf("marshal a conf change: %w", err)
		}
		ents = append(ents, raftpb.Entry{Type: raftpb.EntryConfChange, Term: term, Index: index + 1 + uint64(i), Data: data})
	}
	return ents, nil
}
