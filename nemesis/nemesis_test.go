package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

func opts(seed uint64) Options {
	o := DefaultOptions()
	o.Rand = seeded(seed)
	return o
}

func mustNew(t *testing.T, name string, o Options) Nemesis {
	t.Helper()
	n, err := New(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProcessNemesesActOnTheirTargetsAndHealUndoesIt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		targets  int
		want     string // cluster.Op of the injection
		after    cluster.State
		undo     string
		byLeader bool
	}{
		{"kill-one", 1, "kill", cluster.Stopped, "start", false},
		{"kill-leader", 1, "kill", cluster.Stopped, "start", true},
		{"kill-minority", 2, "kill", cluster.Stopped, "start", false},
		{"kill-majority", 3, "kill", cluster.Stopped, "start", false},
		{"kill-all", 5, "kill", cluster.Stopped, "start", false},
		{"pause-one", 1, "pause", cluster.Paused, "resume", false},
		{"pause-leader", 1, "pause", cluster.Paused, "resume", true},
		{"pause-minority", 2, "pause", cluster.Paused, "resume", false},
		{"pause-majority", 3, "pause", cluster.Paused, "resume", false},
		{"pause-all", 5, "pause", cluster.Paused, "resume", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake(5)
			c.setLeader("n4")
			n := mustNew(t, tc.name, opts(1))
			if n.Name() != tc.name {
				t.Errorf("Name() = %q", n.Name())
			}
			if err := n.Check(c); err != nil {
				t.Fatalf("Check: %v", err)
			}
			f, err := n.Inject(context.Background(), c)
			if err != nil {
				t.Fatalf("Inject: %v", err)
			}
			if len(f.Targets) != tc.targets || f.Nemesis != tc.name {
				t.Fatalf("fault %+v: want %d targets", f, tc.targets)
			}
			if tc.byLeader && (f.Targets[0] != "n4" || f.Note != "") {
				t.Errorf("leader fault %+v, want target n4 and no note", f)
			}
			var wantCalls, wantUndo []string
			for _, nd := range c.nodes {
				want := cluster.Running
				if slices.Contains(f.Targets, nd.name) {
					want = tc.after
					wantCalls = append(wantCalls, tc.want+" "+nd.name)
					wantUndo = append(wantUndo, tc.undo+" "+nd.name)
				}
				if nd.State() != want {
					t.Errorf("after inject %s is %s, want %s", nd.name, nd.State(), want)
				}
			}
			if got := c.log.take(); !slices.Equal(got, wantCalls) {
				t.Errorf("inject calls %v, want %v", got, wantCalls)
			}
			if err := n.Heal(context.Background(), c, f); err != nil {
				t.Fatalf("Heal: %v", err)
			}
			if got := c.log.take(); !slices.Equal(got, wantUndo) {
				t.Errorf("heal calls %v, want %v", got, wantUndo)
			}
			if s := c.states(); strings.Contains(s, "stopped") || strings.Contains(s, "paused") {
				t.Errorf("after heal: %s", s)
			}
		})
	}
}

func TestLeaderNemesesFallBackToARandomMemberAndSaySo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block bool // Leader hangs until the LeaderTimeout
		note  string
	}{
		{"no leader", false, "no leader"},
		{"leader lookup times out", true, "deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake(3)
			c.blockLeader = tc.block
			o := opts(7)
			o.LeaderTimeout = 20 * time.Millisecond
			for _, name := range []string{"kill-leader", "pause-leader", "partition-leader"} {
				cc := cluster.Cluster(c)
				if strings.HasPrefix(name, "partition") {
					cc = netCluster{c}
				}
				f, err := mustNew(t, name, o).Inject(context.Background(), cc)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if len(f.Targets) != 1 || !strings.Contains(f.Note, tc.note) || !strings.Contains(f.Note, "random member "+f.Targets[0]) {
					t.Errorf("%s: fault %+v, want one target and a note saying %q", name, f, tc.note)
				}
				if !strings.Contains(f.String(), f.Note) {
					t.Errorf("%s: description %q omits the note", name, f.String())
				}
				if err := mustNew(t, name, o).Heal(context.Background(), cc, f); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestSameSeedAndClusterGiveTheSameFaults(t *testing.T) {
	run := func(seed uint64) []string {
		c := netCluster{newFake(7)}
		ns, err := Parse("kill-one,pause-minority,partition-halves,partition-majorities-ring,partition-bridge,kill-leader", opts(seed))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for range 3 {
			for _, n := range ns {
				f, err := n.Inject(context.Background(), c)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, n.Name()+" "+f.String())
				if err := n.Heal(context.Background(), c, f); err != nil {
					t.Fatal(err)
				}
			}
		}
		return out
	}
	a, b, other := run(3), run(3), run(4)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("seeds 3 and 4 gave identical faults %v", a)
	}
}

func TestPartitionNemesesCutTheirShapeAndHealRestoresEveryLink(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cut     int
		targets []string // nil: not checked
		check   func(t *testing.T, f Fault)
	}{
		{"partition-one", 4, nil, func(t *testing.T, f Fault) {
			if len(f.Targets) != 1 || joinLinks(f.Cut) != joinLinks(cutBetween(f.Targets, without(nodesN(5), f.Targets...))) {
				t.Errorf("fault %+v does not isolate its target", f)
			}
		}},
		{"partition-leader", 4, []string{"n2"}, func(t *testing.T, f Fault) {
			if got := joinLinks(f.Cut); got != "n1-n2,n2-n3,n2-n4,n2-n5" {
				t.Errorf("cut %s", got)
			}
		}},
		{"partition-halves", 6, nil, func(t *testing.T, f Fault) {
			if len(f.Groups) != 2 || len(f.Groups[0]) != 2 || len(f.Groups[1]) != 3 {
				t.Errorf("groups %v, want 2 and 3 nodes", f.Groups)
			}
			if joinLinks(f.Cut) != joinLinks(cutBetween(f.Groups[0], f.Groups[1])) {
				t.Errorf("cut %s does not separate %v", joinLinks(f.Cut), f.Groups)
			}
		}},
		{"partition-majorities-ring", 5, nil, func(t *testing.T, f Fault) {
			for node, vis := range sees(nodesN(5), f.Cut) {
				if len(vis) != 3 {
					t.Errorf("%s sees %v", node, vis)
				}
			}
		}},
		{"partition-bridge", 4, nil, func(t *testing.T, f Fault) {
			if len(f.Targets) != 1 || slices.ContainsFunc(f.Cut, func(l cluster.Link) bool { return l.Has(f.Targets[0]) }) {
				t.Errorf("bridge %v has a cut link in %s", f.Targets, joinLinks(f.Cut))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFake(5)
			fc.setLeader("n2")
			c := netCluster{fc}
			n := mustNew(t, tc.name, opts(11))
			if err := n.Check(c); err != nil {
				t.Fatal(err)
			}
			f, err := n.Inject(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Cut) != tc.cut {
				t.Errorf("cut %s: %d links, want %d", joinLinks(f.Cut), len(f.Cut), tc.cut)
			}
			if tc.targets != nil && !slices.Equal(f.Targets, tc.targets) {
				t.Errorf("targets %v, want %v", f.Targets, tc.targets)
			}
			tc.check(t, f)
			if got := joinLinks(fc.cutSet()); got != joinLinks(f.Cut) {
				t.Errorf("cluster cut %s, fault says %s", got, joinLinks(f.Cut))
			}
			if err := n.Heal(context.Background(), c, f); err != nil {
				t.Fatal(err)
			}
			if got := fc.log.take(); !slices.Equal(got, []string{"partition " + joinLinks(f.Cut), "heal"}) {
				t.Errorf("calls %v", got)
			}
			if len(fc.cutSet()) != 0 || fc.states() != "n1=running n2=running n3=running n4=running n5=running" {
				t.Errorf("after heal: cut %v, %s", fc.cutSet(), fc.states())
			}
		})
	}
}

func TestLatencyShapesEveryLinkAndHealRemovesIt(t *testing.T) {
	fc := newFake(5)
	c := netCluster{fc}
	o := opts(1)
	o.Delay, o.Jitter = 30*time.Millisecond, 10*time.Millisecond
	n := mustNew(t, "latency", o)
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Shaped) != 10 || fc.shapedLinks() != 10 || f.Delay != o.Delay || f.Jitter != o.Jitter {
		t.Errorf("fault %+v, cluster has %d shaped links; want all 10", f, fc.shapedLinks())
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	if fc.shapedLinks() != 0 {
		t.Errorf("%d links still shaped", fc.shapedLinks())
	}
	if got := fc.log.take(); !slices.Equal(got, []string{"latency 10 links 30ms/10ms", "latency 10 links 0s/0s"}) {
		t.Errorf("calls %v", got)
	}
}

func TestCheckRefusesWhatTheClusterCannotDo(t *testing.T) {
	for _, tc := range []struct {
		nemesis string
		c       cluster.Cluster
		err     string // "" = accepted
	}{
		{"partition-halves", newFake(5), "cluster.Partitioner"},
		{"partition-one", newFake(5), "cluster.Partitioner"},
		{"latency", partCluster{newFake(5)}, "cluster.LinkShaper"},
		{"latency", netCluster{newFake(1)}, "at least 2 nodes"},
		{"partition-one", netCluster{newFake(1)}, "at least 2 nodes"},
		{"partition-one", netCluster{newFake(2)}, ""},
		{"partition-halves", netCluster{newFake(2)}, "at least 3 nodes"},
		{"partition-halves", netCluster{newFake(3)}, ""},
		{"partition-bridge", netCluster{newFake(2)}, "at least 3 nodes"},
		{"partition-bridge", netCluster{newFake(3)}, ""},
		{"partition-majorities-ring", netCluster{newFake(2)}, "at least 3 nodes"},
		{"partition-majorities-ring", partCluster{newFake(7)}, ""},
		{"kill-minority", newFake(2), "at least 3 nodes"},
		{"pause-minority", newFake(3), ""},
		{"kill-one", newFake(0), "at least 1 nodes"},
		{"kill-all", newFake(1), ""},
		{"pause-majority", newFake(1), ""},
	} {
		t.Run(fmt.Sprintf("%s/%T-%d", tc.nemesis, tc.c, len(tc.c.Nodes())), func(t *testing.T) {
			err := mustNew(t, tc.nemesis, opts(1)).Check(tc.c)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Check = %v, want an error mentioning %q", err, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.nemesis) {
				t.Errorf("error %q does not name the nemesis", err)
			}
		})
	}
}

func TestFailedInjectionReturnsTheFaultAndHealUndoesThePartDone(t *testing.T) {
	c := newFake(3)
	boom := errors.New("boom")
	c.node("n2").fail(cluster.OpKill, boom)
	n := mustNew(t, "kill-all", opts(1))
	f, err := n.Inject(context.Background(), c)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "kill n2") {
		t.Fatalf("Inject error %v, want boom naming n2", err)
	}
	if !slices.Equal(f.Targets, nodesN(3)) {
		t.Errorf("targets %v", f.Targets)
	}
	if got := c.states(); got != "n1=stopped n2=running n3=running" {
		t.Errorf("after failed inject: %s", got)
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	if got := c.log.take(); !slices.Equal(got, []string{"kill n1", "kill n2: failed", "start n1"}) {
		t.Errorf("calls %v", got)
	}
}

func TestHealTriesEveryTargetAndJoinsErrors(t *testing.T) {
	c := newFake(3)
	n := mustNew(t, "pause-all", opts(1))
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	c.node("n1").fail(cluster.OpResume, errors.New("resume broke"))
	err = n.Heal(context.Background(), c, f)
	if err == nil || !strings.Contains(err.Error(), "resume n1: resume broke") {
		t.Errorf("Heal = %v", err)
	}
	if got := c.states(); got != "n1=paused n2=running n3=running" {
		t.Errorf("after heal: %s", got)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in    string
		names []string
		err   string
	}{
		{"none", []string{}, ""},
		{"", []string{}, ""},
		{"kill-leader", []string{"kill-leader"}, ""},
		{" kill-leader , partition-halves,latency", []string{"kill-leader", "partition-halves", "latency"}, ""},
		{"kill-one,kill-one", []string{"kill-one", "kill-one"}, ""},
		{"kill-leader,explode", nil, `unknown nemesis "explode"; valid: none, kill-one,`},
		{"kill-leader,,pause-one", nil, "empty name"},
		{"none,kill-one", nil, "cannot be combined"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ns, err := Parse(tc.in, opts(1))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, n := range ns {
				got = append(got, n.Name())
			}
			if !slices.Equal(got, tc.names) {
				t.Errorf("got %v, want %v", got, tc.names)
			}
		})
	}
	if _, err := Parse("kill-one", DefaultOptions()); err == nil || !strings.Contains(err.Error(), "Rand") {
		t.Errorf("Parse without Rand: %v", err)
	}
}

func TestEveryListedNameBuildsTheNemesisOfThatName(t *testing.T) {
	names := Names()
	if names[0] != None || len(names) != 17 {
		t.Fatalf("Names() = %v", names)
	}
	for _, name := range names[1:] {
		if n := mustNew(t, name, opts(1)); n.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, n.Name())
		}
	}
}
