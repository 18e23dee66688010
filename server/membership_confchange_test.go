package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/raft/v3/raftpb"
)

// A member added at runtime gets etcd's ID for the same peer URLs and
// second (membership.NewMember("", urls, "", &now) in etcd's MemberAdd).
func TestAddedMemberIDIsEtcds(t *testing.T) {
	now := time.Unix(1764670000, 123)
	urls, _ := types.NewURLs([]string{"http://127.0.0.1:2380", "http://10.0.0.1:2380"})
	want := membership.NewMember("", urls, "", &now).ID
	if got := newAddedMemberID(urls.StringSlice(), now); got != uint64(want) {
		t.Fatalf("added member ID = %x, etcd's is %x", got, uint64(want))
	}
	if newAddedMemberID(urls.StringSlice(), now.Add(time.Second)) == uint64(want) {
		t.Fatal("the ID must depend on the time, as etcd's")
	}
}

// The conf change context quorumd writes is etcd's ConfigChangeContext and
// the other way round, so the same log entries mean the same thing.
func TestConfChangeContextIsEtcds(t *testing.T) {
	ours := confChangeContext{Member: Member{ID: 0xabc, PeerURLs: []string{"http://127.0.0.1:2380"}, IsLearner: true}, IsPromote: true}
	b, _ := json.Marshal(ours)
	var theirs membership.ConfigChangeContext
	if err := json.Unmarshal(b, &theirs); err != nil {
		t.Fatal(err)
	}
	if uint64(theirs.ID) != 0xabc || !theirs.IsLearner || !theirs.IsPromote || !reflect.DeepEqual(theirs.PeerURLs, ours.PeerURLs) {
		t.Fatalf("etcd reads %s as %+v", b, theirs)
	}
	eb, _ := json.Marshal(theirs)
	if !bytes.Equal(eb, b) {
		t.Fatalf("etcd writes %s, quorumd %s", eb, b)
	}
}

func addCC(t *testing.T, typ raftpb.ConfChangeType, m Member, promote bool) raftpb.ConfChange {
	t.Helper()
	b, err := json.Marshal(confChangeContext{Member: m, IsPromote: promote})
	if err != nil {
		t.Fatal(err)
	}
	return raftpb.ConfChange{Type: typ, NodeID: m.ID, Context: b}
}

func testMembership() *Membership {
	return &Membership{ClusterID: 7, Members: []*Member{
		{ID: 1, Name: "a", PeerURLs: []string{"http://a:2380"}},
		{ID: 2, Name: "b", PeerURLs: []string{"http://b:2380"}},
		{ID: 3, Name: "c", PeerURLs: []string{"http://c:2380"}},
	}}
}

// Each conf change is refused with etcd's error, or applied, as etcd's
// ValidateConfigurationChange and applyConfChange do.
func TestConfChangeValidationIsEtcds(t *testing.T) {
	update := func(id uint64, urls ...string) raftpb.ConfChange {
		b, _ := json.Marshal(Member{ID: id, PeerURLs: urls})
		return raftpb.ConfChange{Type: raftpb.ConfChangeUpdateNode, NodeID: id, Context: b}
	}
	learner := Member{ID: 9, PeerURLs: []string{"http://l:2380"}, IsLearner: true}
	tests := []struct {
		name  string
		setup func(*Membership)
		cc    raftpb.ConfChange
		want  error
	}{
		{"add", nil, addCC(t, raftpb.ConfChangeAddNode, Member{ID: 4, PeerURLs: []string{"http://d:2380"}}, false), nil},
		{"add with a peer URL in use", nil, addCC(t, raftpb.ConfChangeAddNode, Member{ID: 4, PeerURLs: []string{"http://b:2380"}}, false), rpctypes.ErrGRPCPeerURLExist},
		{"add an existing ID with other URLs", nil, addCC(t, raftpb.ConfChangeAddNode, Member{ID: 2, PeerURLs: []string{"http://x:2380"}}, false), rpctypes.ErrGRPCMemberExist},
		{"bootstrap entry for a listed member", nil, addCC(t, raftpb.ConfChangeAddNode, Member{ID: 2, Name: "b", PeerURLs: []string{"http://b:2380"}}, false), nil},
		{"bootstrap entry without context", nil, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 2}, nil},
		{"add a removed ID", func(m *Membership) { m.Removed = []uint64{4} }, addCC(t, raftpb.ConfChangeAddNode, Member{ID: 4, PeerURLs: []string{"http://d:2380"}}, false), rpctypes.ErrGRPCMemberNotFound},
		{"add a learner", nil, addCC(t, raftpb.ConfChangeAddLearnerNode, learner, false), nil},
		{"add a second learner", func(m *Membership) {
			m.Members = append(m.Members, &Member{ID: 8, PeerURLs: []string{"http://k:2380"}, IsLearner: true})
		},
			addCC(t, raftpb.ConfChangeAddLearnerNode, learner, false), rpctypes.ErrGRPCTooManyLearners},
		{"promote a voter", nil, addCC(t, raftpb.ConfChangeAddNode, Member{ID: 2}, true), rpctypes.ErrGRPCMemberNotLearner},
		{"promote an unknown ID", nil, addCC(t, raftpb.ConfChangeAddNode, Member{ID: 5}, true), rpctypes.ErrGRPCMemberNotFound},
		{"remove an unknown ID", nil, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: 5}, rpctypes.ErrGRPCMemberNotFound},
		{"remove a removed ID", func(m *Membership) { m.Removed = []uint64{5} }, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: 5}, rpctypes.ErrGRPCMemberNotFound},
		{"remove", nil, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: 3}, nil},
		{"update to a URL in use", nil, update(3, "http://a:2380"), rpctypes.ErrGRPCPeerURLExist},
		{"update an unknown ID", nil, update(5, "http://e:2380"), rpctypes.ErrGRPCMemberNotFound},
		{"update", nil, update(3, "http://c2:2380"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMembership()
			if tt.setup != nil {
				tt.setup(m)
			}
			before := m.Clone()
			err := m.validateConfChange(tt.cc, 1)
			if !errors.Is(err, tt.want) {
				t.Fatalf("validate = %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(m, before) {
				t.Fatal("validation changed the membership")
			}
		})
	}
}

func TestConfChangesApplyToMembership(t *testing.T) {
	m := testMembership()
	boot := testMembership()
	learner := Member{ID: 9, PeerURLs: []string{"http://l:2380"}, IsLearner: true}
	steps := []struct {
		cc   raftpb.ConfChange
		want peerChange
	}{
		{raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 2}, peerChange{op: peerAdd, id: 2, urls: []string{"http://b:2380"}}},
		{addCC(t, raftpb.ConfChangeAddLearnerNode, learner, false), peerChange{op: peerAdd, id: 9, urls: learner.PeerURLs}},
		{addCC(t, raftpb.ConfChangeAddNode, Member{ID: 9}, true), peerChange{}},
		{raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: 3}, peerChange{op: peerRemove, id: 3}},
	}
	for i, s := range steps {
		if err := m.validateConfChange(s.cc, 1); err != nil {
			t.Fatalf("step %d refused: %v", i, err)
		}
		if got := m.applyConfChange(s.cc, boot); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: peer change %+v, want %+v", i, got, s.want)
		}
	}
	if got := m.IDs(); !reflect.DeepEqual(got, []uint64{1, 2, 9}) {
		t.Fatalf("members %v", got)
	}
	if m.Member(9).IsLearner || !m.IsRemoved(3) || len(m.VotingMembers()) != 3 {
		t.Fatalf("after promote and remove: %+v removed %v", m.Member(9), m.Removed)
	}
}

// --strict-reconfig-check's counting, as etcd's IsReadyTo* (a member is
// started once it published its name).
func TestStrictReconfigCountsStartedMembersAsEtcd(t *testing.T) {
	one := &Membership{Members: []*Member{{ID: 1, Name: "a"}}}
	if !one.isReadyToAddVotingMember() || one.isReadyToRemoveVotingMember(1) {
		t.Fatal("a one-member cluster may grow but not lose its only voter")
	}
	m := testMembership()
	m.Members[1].Name, m.Members[2].Name = "", "" // b and c never started
	if m.isReadyToAddVotingMember() || m.isReadyToRemoveVotingMember(1) || m.isReadyToPromoteMember() {
		t.Fatal("one started member of three cannot be reconfigured")
	}
	if m.isReadyToRemoveVotingMember(2) {
		t.Fatal("removing b leaves one started member of two, not a quorum")
	}
	m.Members[1].Name = "b"
	if !m.isReadyToRemoveVotingMember(3) || !m.isReadyToPromoteMember() {
		t.Fatal("with two of three started, the third may go and a learner (counted as started) be promoted")
	}
	if m.isReadyToAddVotingMember() {
		t.Fatal("a fourth voter needs three started members, only two are")
	}
}

// The snapshot (version 4 onwards) carries learners and removed IDs; a
// version 3 snapshot (membership, leases, auth, keyspace under the old
// magic) still loads.
func TestSnapshotCarriesLearnersAndRemovedMembers(t *testing.T) {
	m := testMembership()
	m.Members[2].IsLearner = true
	m.Members[1].Name = "" // added, not started
	m.Removed = []uint64{4, 5}
	data := encodeForTest(t, m)
	if !bytes.HasPrefix(data, snapMagic) {
		t.Fatalf("snapshot starts %q", data[:12])
	}
	c, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.membership, m) {
		t.Fatalf("restored membership %+v, want %+v", c.membership, m)
	}
	var v3 bytes.Buffer
	v3.Write(snapMagicV3)
	for _, sec := range []any{m, []leaseRecord{}, &authRecord{}} {
		if err := writeJSONSection(&v3, sec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.store.View().WriteTo(&v3); err != nil {
		t.Fatal(err)
	}
	c3, err := decodeSnapshot(v3.Bytes())
	if err != nil || c3.store.Rev() != c.store.Rev() || len(c3.membership.Members) != 3 {
		t.Fatalf("version 3 snapshot: %v", err)
	}
}
