package nemesis

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/fake"
	"github.com/quorum-kv/quorum/history"
)

// plainNode is a node that cannot join a running cluster (no
// cluster.Joiner), as on a backend without the capability.
type plainNode struct{ cluster.Node }

// noJoin shows a fake.Cluster whose nodes cannot join a running cluster.
type noJoin struct{ *fake.Cluster }

func (c noJoin) Nodes() []cluster.Node {
	var out []cluster.Node
	for _, n := range c.Cluster.Nodes() {
		out = append(out, plainNode{n})
	}
	return out
}

func (c noJoin) Node(name string) (cluster.Node, bool) {
	n, ok := c.Cluster.Node(name)
	if !ok {
		return nil, false
	}
	return plainNode{n}, true
}

func TestMemberNemesesCheckRefusesSmallClustersAndNodesThatCannotJoin(t *testing.T) {
	for _, name := range []string{"member-replace", "member-replace-learner", "member-shrink"} {
		n := mustNew(t, name, opts(1))
		if err := n.Check(fake.New(2)); err == nil || !strings.Contains(err.Error(), "at least 3 nodes") {
			t.Errorf("%s on 2 nodes: %v, want a refusal naming the size", name, err)
		}
		err := n.Check(noJoin{fake.New(3)})
		if err == nil || !strings.Contains(err.Error(), "cluster.Joiner") {
			t.Errorf("%s on nodes without Joiner: %v, want a refusal naming cluster.Joiner", name, err)
		}
		if err := n.Check(fake.New(3)); err != nil {
			t.Errorf("%s on the fake: %v", name, err)
		}
	}
}

// member-replace removes the member through the API, stops and wipes it,
// adds it back with its peer URL and starts it with the initial cluster
// etcdctl would print; the member keeps its name and gets a new ID.
func TestMemberReplaceRemovesWipesAddsBackAndJoinsWithTheImpliedInitialCluster(t *testing.T) {
	c := fake.New(3)
	n := mustNew(t, "member-replace", opts(5))
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Targets) != 1 || len(f.Down) != 0 {
		t.Fatalf("targets %v, down %v: want one target, back up when Apply returns", f.Targets, f.Down)
	}
	tg := f.Targets[0]
	want := []string{"member-remove " + tg, "stop " + tg, "wipe " + tg, "member-add " + tg, "join " + tg}
	if got := c.CallStrings(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	node, _ := c.Node(tg)
	joins := node.(*fake.Node).Joins()
	ms := c.Members()
	if len(ms) != 3 || len(joins) != 1 {
		t.Fatalf("members %v, joins %v", ms, joins)
	}
	added := ms[2]
	if added.Name != tg || added.ID != joins[0].MemberID || added.ID <= 0x1003 || added.Learner {
		t.Errorf("added member %+v, join %+v", added, joins[0])
	}
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Name+"="+m.PeerURLs[0])
	}
	if want := strings.Join(parts, ","); joins[0].InitialCluster != want {
		t.Errorf("initial cluster %q, want %q", joins[0].InitialCluster, want)
	}
	if !strings.Contains(f.Note, "removed "+tg) || !strings.Contains(f.Note, "added back as") {
		t.Errorf("note %q: want what was done", f.Note)
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatalf("heal after a full replacement: %v", err)
	}
	if got := c.CallStrings(); len(got) != len(want) {
		t.Errorf("heal after a full replacement acted: %v", got[len(want):])
	}
}

// The learner variant adds the member as a learner and retries the
// promotion while etcd says the learner is not in sync yet.
func TestMemberReplaceLearnerRetriesPromotionUntilInSync(t *testing.T) {
	c := fake.New(3)
	n := mustNew(t, "member-replace-learner", opts(5))
	f, err := n.(Planner).Plan(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	tg := f.Targets[0]
	notReady := errors.New("etcdserver: can only promote a learner member which is in sync with leader")
	c.FailNext("member-promote", tg, notReady)
	c.FailNext("member-promote", tg, notReady)
	if err := n.(Planner).Apply(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	promotes := 0
	for _, call := range c.CallStrings() {
		if strings.HasPrefix(call, "member-promote "+tg) {
			promotes++
		}
	}
	ms := c.Members()
	if promotes != 3 || ms[2].Learner || ms[2].Name != tg {
		t.Errorf("%d promotions, members %+v; want 3 and a voting %s", promotes, ms, tg)
	}
}

// etcd's strict reconfiguration check answers "unhealthy cluster" right
// after a start or a change; the nemesis waits and retries, and gives up
// on any other error.
func TestMemberReplaceRetriesUnhealthyClusterAndStopsOnOtherErrors(t *testing.T) {
	c := fake.New(3)
	n := mustNew(t, "member-replace", opts(5))
	f, _ := n.(Planner).Plan(context.Background(), c)
	tg := f.Targets[0]
	c.FailNext("member-remove", tg, errors.New("etcdserver: unhealthy cluster"))
	c.FailNext("member-add", tg, errors.New("etcdserver: unhealthy cluster"))
	if err := n.(Planner).Apply(context.Background(), c, f); err != nil {
		t.Fatalf("apply with transient refusals: %v", err)
	}
	c2 := fake.New(3)
	f2, _ := n.(Planner).Plan(context.Background(), c2)
	c2.FailNext("member-remove", f2.Targets[0], errors.New("etcdserver: permission denied"))
	if err := n.(Planner).Apply(context.Background(), c2, f2); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("apply with a lasting refusal: %v", err)
	}
}

// Heal finishes a replacement cut short at any step: after the removal
// (MemberAdd failed), and after the add (the start failed).
func TestMemberReplaceHealFinishesAPartialReplacement(t *testing.T) {
	for _, step := range []string{"member-add", "join"} {
		t.Run(step, func(t *testing.T) {
			c := fake.New(3)
			n := mustNew(t, "member-replace", opts(9))
			f, _ := n.(Planner).Plan(context.Background(), c)
			tg := f.Targets[0]
			c.FailNext(step, tg, errors.New("injected"))
			if err := n.(Planner).Apply(context.Background(), c, f); err == nil {
				t.Fatal("apply succeeded despite the injected failure")
			}
			if st := c.States()[tg]; st != cluster.Stopped {
				t.Fatalf("%s is %v after the failed apply", tg, st)
			}
			if err := n.Heal(context.Background(), c, f); err != nil {
				t.Fatalf("heal: %v", err)
			}
			ms := c.Members()
			names := map[string]int{}
			for _, m := range ms {
				names[m.Name]++
			}
			if len(ms) != 3 || names[tg] != 1 || c.States()[tg] != cluster.Running {
				t.Errorf("after heal: members %+v, %s %v", ms, tg, c.States()[tg])
			}
		})
	}
}

// member-shrink takes a 5-member cluster down to 3 (removing 2) and its
// heal grows it back to 5.
func TestMemberShrinkRemovesAMinorityAndHealGrowsBack(t *testing.T) {
	c := fake.New(5)
	n := mustNew(t, "member-shrink", opts(3))
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Targets) != 2 || !slices.Equal(f.Down, f.Targets) {
		t.Fatalf("fault %+v: want 2 targets, down", f)
	}
	if ms := c.Members(); len(ms) != 3 {
		t.Fatalf("after shrink: %d members, want 3", len(ms))
	}
	for _, tg := range f.Targets {
		if c.States()[tg] != cluster.Stopped {
			t.Errorf("%s is %v, want stopped", tg, c.States()[tg])
		}
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	ms := c.Members()
	if len(ms) != 5 {
		t.Fatalf("after heal: %d members, want 5", len(ms))
	}
	for _, m := range ms {
		if m.Name == "" || m.Learner {
			t.Errorf("member %+v not a started voter", m)
		}
	}
}

func TestAdminNemesesPlanTargetsAndSnapshotNeedsADirectory(t *testing.T) {
	c := fake.New(3)
	for name, want := range map[string]int{"compact": 0, "defrag": 3, "defrag-one": 1, "snapshot": 1} {
		o := opts(2)
		o.Dir = t.TempDir()
		n := mustNew(t, name, o)
		f, err := n.(Planner).Plan(context.Background(), c)
		if err != nil || len(f.Targets) != want || f.Nemesis != name {
			t.Errorf("%s: plan %+v, %v; want %d targets", name, f, err, want)
		}
		if err := n.Heal(context.Background(), c, f); err != nil || len(c.Calls()) != 0 {
			t.Errorf("%s: heal %v, calls %v; want nothing done", name, err, c.CallStrings())
		}
	}
	n := mustNew(t, "snapshot", opts(2))
	if err := n.Check(c); err == nil || !strings.Contains(err.Error(), "Options.Dir") {
		t.Errorf("snapshot without a directory: %v", err)
	}
}

// The Schedule records the Fault that a Describer's Apply completed.
func TestScheduleRecordsTheDescribedFault(t *testing.T) {
	c := fake.New(3)
	n := mustNew(t, "member-replace", opts(4))
	sched, err := NewSchedule(Config{Nemeses: []Nemesis{n}, Interval: time.Millisecond, HealTimeout: time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	var tick time.Duration
	rec := history.NewRecorder(func() time.Duration { tick++; return tick })
	if err := sched.fault(context.Background(), c, rec, n); err != nil {
		t.Fatal(err)
	}
	evs := rec.Events()
	if len(evs) != 2 || evs[0].Value == nil || !strings.Contains(*evs[0].Value, "added back as") {
		t.Errorf("events %+v: want the start's value to say what Apply did", evs)
	}
}
