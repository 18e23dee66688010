package cluster_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/fake"
)

func TestNextStateTable(t *testing.T) {
	const inv = "invalid"
	S, R, P := cluster.Stopped, cluster.Running, cluster.Paused
	type res struct {
		next cluster.State
		noop bool
		err  string
	}
	table := map[cluster.Op][3]res{ // results from Stopped, Running, Paused
		cluster.OpStart:  {{R, false, ""}, {R, true, ""}, {P, false, inv}},
		cluster.OpStop:   {{S, true, ""}, {S, false, ""}, {S, false, ""}},
		cluster.OpKill:   {{S, true, ""}, {S, false, ""}, {S, false, ""}},
		cluster.OpPause:  {{S, false, inv}, {P, false, ""}, {P, true, ""}},
		cluster.OpResume: {{S, false, inv}, {R, true, ""}, {R, false, ""}},
		cluster.OpWipe:   {{S, false, ""}, {R, false, inv}, {P, false, inv}},
	}
	for op, row := range table {
		for from, want := range row {
			s := cluster.State(from)
			next, noop, err := cluster.NextState(s, op)
			if want.err != "" {
				if !errors.Is(err, cluster.ErrInvalidState) || next != s {
					t.Errorf("%s from %s = %v, %v; want ErrInvalidState and no change", op, s, next, err)
				}
				continue
			}
			if err != nil || next != want.next || noop != want.noop {
				t.Errorf("%s from %s = %v noop=%v err=%v; want %v noop=%v", op, s, next, noop, err, want.next, want.noop)
			}
		}
	}
	if _, _, err := cluster.NextState(cluster.Running, "explode"); err == nil {
		t.Error("unknown op accepted")
	}
}

func TestLinkIsUnordered(t *testing.T) {
	a, b := cluster.Link{A: "n2", B: "n1"}, cluster.Link{A: "n1", B: "n2"}
	if !a.Equal(b) || a.Key() != b || a.String() != "n1-n2" || !a.Has("n2") || a.Has("n3") {
		t.Fatalf("link %v vs %v: key %v string %s", a, b, a.Key(), a)
	}
}

func TestValidateLinksAndIsolate(t *testing.T) {
	c := fake.New(5)
	got, err := cluster.ValidateLinks(c, []cluster.Link{{A: "n2", B: "n1"}, {A: "n1", B: "n2"}, {A: "n3", B: "n1"}})
	if err != nil || !slices.Equal(got, []cluster.Link{{A: "n1", B: "n2"}, {A: "n1", B: "n3"}}) {
		t.Fatalf("ValidateLinks = %v, %v", got, err)
	}
	for _, bad := range []cluster.Link{{A: "n1", B: "n1"}, {A: "n1", B: "x"}} {
		if _, err := cluster.ValidateLinks(c, []cluster.Link{bad}); err == nil {
			t.Errorf("ValidateLinks accepted %v", bad)
		}
	}
	iso := cluster.Isolate(c, "n1", "n2")
	want := []cluster.Link{{A: "n1", B: "n3"}, {A: "n1", B: "n4"}, {A: "n1", B: "n5"}, {A: "n2", B: "n3"}, {A: "n2", B: "n4"}, {A: "n2", B: "n5"}}
	if !slices.Equal(iso, want) {
		t.Fatalf("Isolate = %v, want %v", iso, want)
	}
}

func statuses(c cluster.Cluster, rows ...[3]uint64) []cluster.MemberStatus { // id, leader, err?
	var out []cluster.MemberStatus
	for i, r := range rows {
		s := cluster.MemberStatus{Node: c.Nodes()[i], MemberID: r[0], Leader: r[1]}
		if r[2] != 0 {
			s.Err = errors.New("timeout")
		}
		out = append(out, s)
	}
	return out
}

func TestCheckHealthyAndMajorityLeader(t *testing.T) {
	c := fake.New(3)
	tests := []struct {
		name       string
		sts        []cluster.MemberStatus
		healthyErr string // "" = healthy
		leader     string // "" = ErrNoLeader
	}{
		{"all agree", statuses(c, [3]uint64{1, 2, 0}, [3]uint64{2, 2, 0}, [3]uint64{3, 2, 0}), "", "n2"},
		{"isolated old leader outvoted", statuses(c, [3]uint64{1, 1, 0}, [3]uint64{2, 3, 0}, [3]uint64{3, 3, 0}), "disagreement", "n3"},
		{"one member silent", statuses(c, [3]uint64{1, 2, 0}, [3]uint64{2, 2, 0}, [3]uint64{3, 0, 1}), "not answering", "n2"},
		{"no leader known", statuses(c, [3]uint64{1, 0, 0}, [3]uint64{2, 0, 0}, [3]uint64{3, 0, 0}), "knows no leader", ""},
		{"leader did not answer", statuses(c, [3]uint64{1, 3, 0}, [3]uint64{2, 3, 0}), "not a running node", ""},
		{"no running node", nil, "no running node", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cluster.CheckHealthy(tt.sts)
			if tt.healthyErr == "" && err != nil || tt.healthyErr != "" && (err == nil || !strings.Contains(err.Error(), tt.healthyErr)) {
				t.Errorf("CheckHealthy = %v, want %q", err, tt.healthyErr)
			}
			n, err := cluster.MajorityLeader(tt.sts, 3)
			if tt.leader == "" {
				if !errors.Is(err, cluster.ErrNoLeader) {
					t.Errorf("MajorityLeader = %v, %v; want ErrNoLeader", n, err)
				}
			} else if err != nil || n.Name() != tt.leader {
				t.Errorf("MajorityLeader = %v, %v; want %s", n, err, tt.leader)
			}
		})
	}
}

type namedNode struct {
	cluster.Node
	name string
}

func (n namedNode) Name() string      { return n.name }
func (n namedNode) ClientURL() string { return "http://" + n.name }

func TestMembersAnswerTheClusterLookups(t *testing.T) {
	m := cluster.Members[namedNode]{{name: "n1"}, {name: "n2"}}
	if got := m.Nodes(); len(got) != 2 || got[1].Name() != "n2" {
		t.Errorf("Nodes() = %v", got)
	}
	if n, ok := m.Node("n2"); !ok || n.Name() != "n2" {
		t.Errorf("Node(n2) = %v, %v", n, ok)
	}
	if _, ok := m.Node("n3"); ok {
		t.Error("Node(n3) found a node")
	}
	if n, ok := m.Get("n1"); !ok || n.name != "n1" {
		t.Errorf("Get(n1) = %v, %v", n, ok)
	}
	if got := m.Endpoints(); len(got) != 2 || got[0] != "http://n1" {
		t.Errorf("Endpoints() = %v", got)
	}
	eps := m.Endpoints()
	eps[0] = "x"
	if m.Endpoints()[0] != "http://n1" {
		t.Error("Endpoints shares its slice")
	}
}

// SplitLeaders puts every node some answering status names as leader last
// (an isolated old leader too), in node order; silent nodes go first.
func TestSplitLeadersStopsLeadersLast(t *testing.T) {
	c := fake.New(3)
	names := func(ns []cluster.Node) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.Name())
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		name        string
		sts         []cluster.MemberStatus
		first, last string
	}{
		{"one leader", statuses(c, [3]uint64{1, 2, 0}, [3]uint64{2, 2, 0}, [3]uint64{3, 2, 0}), "n1,n3", "n2"},
		{"isolated old leader", statuses(c, [3]uint64{1, 1, 0}, [3]uint64{2, 3, 0}, [3]uint64{3, 3, 0}), "n2", "n1,n3"},
		{"silent leader", statuses(c, [3]uint64{1, 3, 0}, [3]uint64{2, 3, 0}), "n1,n2,n3", ""},
		{"nobody answers", nil, "n1,n2,n3", ""},
	}
	for _, tt := range tests {
		first, last := cluster.SplitLeaders(c.Nodes(), tt.sts)
		if names(first) != tt.first || names(last) != tt.last {
			t.Errorf("%s: first %q last %q, want %q %q", tt.name, names(first), names(last), tt.first, tt.last)
		}
	}
}
