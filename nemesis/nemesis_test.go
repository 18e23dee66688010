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
	"github.com/quorum-kv/quorum/cluster/fake"
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

// nodesOnly shows a fake.Cluster without its network capabilities
// (cluster.Partitioner, cluster.LinkShaper), as a backend that cannot cut
// or delay links; it still finds the leader.
type nodesOnly struct {
	cluster.Cluster
	cluster.LeaderFinder
}

func withoutNetwork(c *fake.Cluster) nodesOnly { return nodesOnly{c, c} }

// partitionOnly shows a fake.Cluster that can cut links but not delay them.
type partitionOnly struct {
	nodesOnly
	cluster.Partitioner
}

func withoutLatency(c *fake.Cluster) partitionOnly { return partitionOnly{withoutNetwork(c), c} }

// states returns "n1=running n2=stopped ..." in node order.
func states(c *fake.Cluster) string {
	var s []string
	for _, n := range c.Nodes() {
		s = append(s, n.Name()+"="+n.State().String())
	}
	return strings.Join(s, " ")
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
			c := fake.New(5)
			c.SetLeader("n4")
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
			for _, nd := range c.Nodes() {
				want := cluster.Running
				if slices.Contains(f.Targets, nd.Name()) {
					want = tc.after
					wantCalls = append(wantCalls, tc.want+" "+nd.Name())
					wantUndo = append(wantUndo, tc.undo+" "+nd.Name())
				}
				if nd.State() != want {
					t.Errorf("after inject %s is %s, want %s", nd.Name(), nd.State(), want)
				}
			}
			if got := c.CallStrings(); !slices.Equal(got, wantCalls) {
				t.Errorf("inject calls %v, want %v", got, wantCalls)
			}
			if err := n.Heal(context.Background(), c, f); err != nil {
				t.Fatalf("Heal: %v", err)
			}
			if got, want := c.CallStrings(), slices.Concat(wantCalls, wantUndo); !slices.Equal(got, want) {
				t.Errorf("calls after heal %v, want %v", got, want)
			}
			if s := states(c); strings.Contains(s, "stopped") || strings.Contains(s, "paused") {
				t.Errorf("after heal: %s", s)
			}
		})
	}
}

func TestLeaderNemesesFallBackToARandomMemberAndSaySo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c *fake.Cluster) // makes each of the 3 leader lookups fail
		note  string
	}{
		{"no leader", func(c *fake.Cluster) {
			// Every link cut: no node reaches a majority. partition-leader,
			// the last, replaces this cut with its own.
			if err := c.Partition(context.Background(), links("n1-n2 n1-n3 n2-n3")); err != nil {
				t.Fatal(err)
			}
		}, "no leader"},
		{"leader lookup times out", func(c *fake.Cluster) {
			for range 3 {
				c.BlockNext("leader", "") // hangs until the LeaderTimeout
			}
		}, "deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.New(3)
			tc.setup(c)
			o := opts(7)
			o.LeaderTimeout = 20 * time.Millisecond
			for _, name := range []string{"kill-leader", "pause-leader", "partition-leader"} {
				cc := cluster.Cluster(withoutNetwork(c))
				if strings.HasPrefix(name, "partition") {
					cc = c
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
		c := fake.New(7)
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
			c := fake.New(5)
			c.SetLeader("n2")
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
			if got := joinLinks(c.Cut()); got != joinLinks(f.Cut) {
				t.Errorf("cluster cut %s, fault says %s", got, joinLinks(f.Cut))
			}
			if err := n.Heal(context.Background(), c, f); err != nil {
				t.Fatal(err)
			}
			if got, want := c.CallStrings(), []string{fake.Call{Op: "partition", Links: f.Cut}.String(), "heal"}; !slices.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
			if len(c.Cut()) != 0 || states(c) != "n1=running n2=running n3=running n4=running n5=running" {
				t.Errorf("after heal: cut %v, %s", c.Cut(), states(c))
			}
		})
	}
}

func TestLatencyShapesEveryLinkAndHealRemovesIt(t *testing.T) {
	c := fake.New(5)
	o := opts(1)
	o.Delay, o.Jitter = 30*time.Millisecond, 10*time.Millisecond
	n := mustNew(t, "latency", o)
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Shaped) != 10 || len(c.Latency()) != 10 || f.Delay != o.Delay || f.Jitter != o.Jitter {
		t.Errorf("fault %+v, cluster has %d shaped links; want all 10", f, len(c.Latency()))
	}
	for l, sh := range c.Latency() {
		if sh != (fake.Shaping{Delay: o.Delay, Jitter: o.Jitter}) {
			t.Errorf("link %s shaped %v", l, sh)
		}
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	if len(c.Latency()) != 0 {
		t.Errorf("%d links still shaped", len(c.Latency()))
	}
	all := "n1-n2 n1-n3 n1-n4 n1-n5 n2-n3 n2-n4 n2-n5 n3-n4 n3-n5 n4-n5"
	want := []string{"latency [" + all + "] 30ms±10ms", "latency [" + all + "] 0s±0s"}
	if got := c.CallStrings(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

func TestCheckRefusesWhatTheClusterCannotDo(t *testing.T) {
	for _, tc := range []struct {
		nemesis string
		c       cluster.Cluster
		err     string // "" = accepted
	}{
		{"partition-halves", withoutNetwork(fake.New(5)), "cluster.Partitioner"},
		{"partition-one", withoutNetwork(fake.New(5)), "cluster.Partitioner"},
		{"latency", withoutLatency(fake.New(5)), "cluster.LinkShaper"},
		{"latency", fake.New(1), "at least 2 nodes"},
		{"partition-one", fake.New(1), "at least 2 nodes"},
		{"partition-one", fake.New(2), ""},
		{"partition-halves", fake.New(1), "at least 2 nodes"},
		{"partition-halves", fake.New(2), ""},
		{"isolate-minority", withoutNetwork(fake.New(5)), "cluster.Partitioner"},
		{"isolate-minority", fake.New(2), "at least 3 nodes"},
		{"isolate-majority", fake.New(1), "at least 2 nodes"},
		{"isolate-majority", fake.New(2), ""},
		{"partition-bridge", fake.New(2), "at least 3 nodes"},
		{"partition-bridge", fake.New(3), ""},
		{"partition-majorities-ring", fake.New(2), "at least 3 nodes"},
		{"partition-majorities-ring", withoutLatency(fake.New(7)), ""},
		{"kill-minority", withoutNetwork(fake.New(2)), "at least 3 nodes"},
		{"pause-minority", withoutNetwork(fake.New(3)), ""},
		{"kill-one", withoutNetwork(fake.New(0)), "at least 1 nodes"},
		{"kill-all", withoutNetwork(fake.New(1)), ""},
		{"pause-majority", withoutNetwork(fake.New(1)), ""},
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
	c := fake.New(3)
	boom := errors.New("boom")
	c.FailNext(string(cluster.OpKill), "n2", boom)
	n := mustNew(t, "kill-all", opts(1))
	f, err := n.Inject(context.Background(), c)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "kill n2") {
		t.Fatalf("Inject error %v, want boom naming n2", err)
	}
	if !slices.Equal(f.Targets, nodesN(3)) {
		t.Errorf("targets %v", f.Targets)
	}
	if got := states(c); got != "n1=stopped n2=running n3=running" {
		t.Errorf("after failed inject: %s", got)
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	// n3 is never killed; Heal starts every target (a no-op on n2 and n3).
	if got, want := c.CallStrings(), []string{"kill n1", "kill n2 -> boom", "start n1", "start n2", "start n3"}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if got := states(c); got != "n1=running n2=running n3=running" {
		t.Errorf("after heal: %s", got)
	}
}

func TestHealTriesEveryTargetAndJoinsErrors(t *testing.T) {
	c := fake.New(3)
	n := mustNew(t, "pause-all", opts(1))
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	c.FailNext(string(cluster.OpResume), "n1", errors.New("resume broke"))
	err = n.Heal(context.Background(), c, f)
	if err == nil || !strings.Contains(err.Error(), "resume n1: resume broke") {
		t.Errorf("Heal = %v", err)
	}
	if got := states(c); got != "n1=paused n2=running n3=running" {
		t.Errorf("after heal: %s", got)
	}
	if got, want := c.CallStrings()[3:], []string{"resume n1 -> resume broke", "resume n2", "resume n3"}; !slices.Equal(got, want) {
		t.Errorf("heal calls %v, want %v", got, want)
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
	if names[0] != None || len(names) != 32 {
		t.Fatalf("Names() = %v", names)
	}
	for _, name := range names[1:] {
		if n := mustNew(t, name, opts(1)); n.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, n.Name())
		}
	}
}

func TestDropMakesEveryLinkLossyAndHealRestoresIt(t *testing.T) {
	c := fake.New(3)
	o := opts(1)
	o.Loss = 0.25
	n := mustNew(t, "drop", o)
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	loss := c.Loss()
	if len(loss) != 3 || f.Loss != 0.25 || len(f.Shaped) != 3 {
		t.Fatalf("fault %+v, loss %v", f, loss)
	}
	for l, p := range loss {
		if p != 0.25 {
			t.Errorf("link %s loss %v", l, p)
		}
	}
	if !strings.Contains(f.String(), "loss=0.25 on 3 links") {
		t.Errorf("fault reads %q", f.String())
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	if len(c.Loss()) != 0 {
		t.Fatalf("loss left after heal: %v", c.Loss())
	}
}
