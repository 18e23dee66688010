package server

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/wal"
)

func confEntry(t *testing.T, index, term uint64, typ raftpb.ConfChangeType, id uint64) raftpb.Entry {
	t.Helper()
	cc := raftpb.ConfChange{Type: typ, NodeID: id}
	data, err := cc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raftpb.Entry{Type: raftpb.EntryConfChange, Index: index, Term: term, Data: data}
}

func decodeConf(t *testing.T, e raftpb.Entry) raftpb.ConfChange {
	t.Helper()
	var cc raftpb.ConfChange
	if e.Type != raftpb.EntryConfChange {
		t.Fatalf("entry %d is %v, want a conf change", e.Index, e.Type)
	}
	if err := cc.Unmarshal(e.Data); err != nil {
		t.Fatal(err)
	}
	return cc
}

// forceNewCluster keeps exactly the committed log, appends etcd's conf
// changes after it (self added first when missing, the others removed in
// ID order, at the hard state's term), saves them over the uncommitted
// tail in the WAL, and counts them committed; a learner is refused.
func TestForceNewClusterDropsTheUncommittedTailAndRemovesTheOthers(t *testing.T) {
	lg := slog.New(slog.DiscardHandler)
	newWAL := func(ents []raftpb.Entry, hs raftpb.HardState) (*wal.WAL, string) {
		dir := filepath.Join(t.TempDir(), "wal")
		w, err := wal.Create(dir, lg)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Save(hs, ents, true); err != nil {
			t.Fatal(err)
		}
		return w, dir
	}
	data := func(i uint64) raftpb.Entry {
		return raftpb.Entry{Type: raftpb.EntryNormal, Index: i, Term: 2, Data: []byte("put")}
	}

	t.Run("voter", func(t *testing.T) {
		ents := []raftpb.Entry{confEntry(t, 1, 1, raftpb.ConfChangeAddNode, 1), confEntry(t, 2, 1, raftpb.ConfChangeAddNode, 2),
			confEntry(t, 3, 1, raftpb.ConfChangeAddNode, 3), data(4), data(5), data(6)}
		hs := raftpb.HardState{Term: 3, Vote: 2, Commit: 4}
		w, dir := newWAL(ents, hs)
		gotHS, got, err := forceNewCluster(lg, w, nil, hs, append([]raftpb.Entry(nil), ents...), 1)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if len(got) != 6 || got[3].Index != 4 || gotHS.Commit != 6 {
			t.Fatalf("entries %d (4th at %d), commit %d; want 1..4 kept, 5 and 6 the conf changes, commit 6", len(got), got[3].Index, gotHS.Commit)
		}
		for i, id := range []uint64{2, 3} {
			e := got[4+i]
			if cc := decodeConf(t, e); cc.Type != raftpb.ConfChangeRemoveNode || cc.NodeID != id || e.Term != 3 || e.Index != uint64(5+i) {
				t.Errorf("entry %d: %v of %d at term %d, want the removal of %d at term 3", e.Index, cc.Type, cc.NodeID, e.Term, id)
			}
		}
		_, c, err := wal.Open(dir, lg)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(c.Entries); n != 6 || c.Entries[4].Type != raftpb.EntryConfChange || c.Entries[5].Type != raftpb.EntryConfChange {
			t.Fatalf("the WAL holds %d entries after the force, want the old 5 and 6 replaced by the conf changes", n)
		}
	})

	t.Run("removed self is added back first", func(t *testing.T) {
		sn := &raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 10, Term: 2, ConfState: raftpb.ConfState{Voters: []uint64{2, 3}}}}
		hs := raftpb.HardState{Term: 2, Commit: 9} // behind the snapshot: raised to it
		w, _ := newWAL(nil, raftpb.HardState{Term: 2})
		if err := w.SaveSnapshotRestore(10, 2); err != nil {
			t.Fatal(err)
		}
		gotHS, got, err := forceNewCluster(lg, w, sn, hs, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if len(got) != 3 || got[0].Index != 11 || gotHS.Commit != 13 {
			t.Fatalf("%d entries from %d, commit %d; want 3 from 11, commit 13", len(got), got[0].Index, gotHS.Commit)
		}
		cc := decodeConf(t, got[0])
		var m Member
		if err := json.Unmarshal(cc.Context, &m); err != nil || cc.Type != raftpb.ConfChangeAddNode || cc.NodeID != 1 || len(m.PeerURLs) != 1 || m.PeerURLs[0] != "http://localhost:2380" {
			t.Errorf("first entry %v of %d (%s), want self added with etcd's placeholder peer URL", cc.Type, cc.NodeID, cc.Context)
		}
	})

	t.Run("learner", func(t *testing.T) {
		ents := []raftpb.Entry{confEntry(t, 1, 1, raftpb.ConfChangeAddNode, 1), confEntry(t, 2, 1, raftpb.ConfChangeAddLearnerNode, 2)}
		hs := raftpb.HardState{Term: 1, Commit: 2}
		w, _ := newWAL(ents, hs)
		defer w.Close()
		if _, _, err := forceNewCluster(lg, w, nil, hs, ents, 2); err == nil || !strings.Contains(err.Error(), "learner") {
			t.Fatalf("err = %v, want a learner refused", err)
		}
	})
}
