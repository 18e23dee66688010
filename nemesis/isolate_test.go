package nemesis

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/fake"
)

func isolateOpts(seed uint64) Options {
	o := DefaultOptions()
	o.Rand = rand.New(rand.NewPCG(seed, seed))
	return o
}

// isolate-minority and isolate-majority always take the leader, cut each
// target off from every other member, and leave exactly the members that
// the quorum arithmetic says: a minority lost keeps a quorum reachable, a
// majority lost does not.
func TestIsolateTakesTheLeaderAndCutsEachTargetAlone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		targets   int
		reach     int
		writeable bool
	}{
		{"isolate-minority", 3, 1, 2, true},
		{"isolate-minority", 5, 2, 3, true},
		{"isolate-minority", 7, 3, 4, true},
		{"isolate-majority", 2, 2, 1, false},
		{"isolate-majority", 3, 2, 1, false},
		{"isolate-majority", 5, 3, 2, false},
	} {
		for seed := range uint64(5) {
			c := fake.New(tc.size)
			leader := "n" + string(rune('1'+seed%uint64(tc.size)))
			c.SetLeader(leader)
			n, err := New(tc.name, isolateOpts(seed))
			if err != nil {
				t.Fatal(err)
			}
			f, err := n.Inject(context.Background(), c)
			if err != nil {
				t.Fatalf("%s on %d: %v", tc.name, tc.size, err)
			}
			if len(f.Targets) != tc.targets || !slices.Contains(f.Targets, leader) {
				t.Errorf("%s on %d led by %s: targets %v, want %d of them, the leader among them", tc.name, tc.size, leader, f.Targets, tc.targets)
			}
			names := nodeNames(c)
			var want []cluster.Link
			for _, a := range names {
				for _, b := range names {
					if a < b && (slices.Contains(f.Targets, a) || slices.Contains(f.Targets, b)) {
						want = append(want, cluster.Link{A: a, B: b})
					}
				}
			}
			if got := c.Cut(); !slices.Equal(cluster.SortLinks(got), cluster.SortLinks(want)) {
				t.Errorf("%s targets %v: cut %v, want %v", tc.name, f.Targets, got, want)
			}
			if r := f.Reach(names); r != tc.reach || (r >= tc.size/2+1) != tc.writeable {
				t.Errorf("%s on %d: Reach %d, want %d", tc.name, tc.size, r, tc.reach)
			}
			if err := n.Heal(context.Background(), c, f); err != nil || len(c.Cut()) != 0 {
				t.Errorf("heal: %v, cut left %v", err, c.Cut())
			}
		}
	}
}

// Reach counts what one serving member reaches directly: killed and paused
// members are gone, cut links do not count, the bridge sees both sides.
func TestReachFollowsDownMembersAndCutLinks(t *testing.T) {
	names := []string{"n1", "n2", "n3", "n4", "n5"}
	for _, tc := range []struct {
		what string
		f    Fault
		want int
	}{
		{"nothing", Fault{}, 5},
		{"two killed", Fault{Down: []string{"n1", "n4"}}, 3},
		{"halves 2|3", Fault{Cut: cutBetween([]string{"n1", "n2"}, []string{"n3", "n4", "n5"})}, 3},
		{"bridge n3", Fault{Cut: cutBetween([]string{"n1", "n2"}, []string{"n4", "n5"})}, 5},
		{"all down", Fault{Down: names}, 0},
	} {
		if got := tc.f.Reach(names); got != tc.want {
			t.Errorf("%s: Reach %d, want %d", tc.what, got, tc.want)
		}
	}
}

func TestMinNodesIsWhatCheckRefuses(t *testing.T) {
	for _, name := range Names()[1:] {
		min, why, err := MinNodes(name)
		if err != nil || why == "" {
			t.Fatalf("MinNodes(%s) = %d, %q, %v", name, min, why, err)
		}
		o := isolateOpts(1)
		o.Dir = t.TempDir() // the snapshot nemesis needs one
		n, _ := New(name, o)
		if min > 1 {
			if err := n.Check(fake.New(min - 1)); err == nil {
				t.Errorf("%s: Check passes %d nodes, MinNodes says %d", name, min-1, min)
			}
		}
		if err := n.Check(fake.New(min)); err != nil {
			t.Errorf("%s: Check refuses %d nodes (MinNodes): %v", name, min, err)
		}
	}
	if _, _, err := MinNodes("no-such"); err == nil {
		t.Error("MinNodes of an unknown name succeeded")
	}
}
