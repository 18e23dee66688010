package nemesis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/cluster"
)

// links parses "n1-n3 n2-n4" into links.
func links(s string) []cluster.Link {
	var out []cluster.Link
	for _, f := range strings.Fields(s) {
		a, b, _ := strings.Cut(f, "-")
		out = append(out, cluster.Link{A: a, B: b})
	}
	return out
}

func nodesN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("n%d", i+1)
	}
	return out
}

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b9)) }

// sees returns, for each node, the set of nodes it can talk to (itself
// included) when cut is cut in both directions.
func sees(nodes []string, cut []cluster.Link) map[string][]string {
	out := make(map[string][]string)
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b || !slices.ContainsFunc(cut, func(l cluster.Link) bool { return l.Equal(cluster.Link{A: a, B: b}) }) {
				out[a] = append(out[a], b)
			}
		}
	}
	return out
}

func TestHalvesCutsEveryLinkBetweenTheSmallerFirstHalfAndTheRest(t *testing.T) {
	for _, tc := range []struct {
		n      int
		a, b   []string
		cut    string
		nLinks int
	}{
		{3, nodesN(1), []string{"n2", "n3"}, "n1-n2 n1-n3", 2},
		{4, []string{"n1", "n2"}, []string{"n3", "n4"}, "n1-n3 n1-n4 n2-n3 n2-n4", 4},
		{5, []string{"n1", "n2"}, []string{"n3", "n4", "n5"}, "n1-n3 n1-n4 n1-n5 n2-n3 n2-n4 n2-n5", 6},
		{7, []string{"n1", "n2", "n3"}, []string{"n4", "n5", "n6", "n7"},
			"n1-n4 n1-n5 n1-n6 n1-n7 n2-n4 n2-n5 n2-n6 n2-n7 n3-n4 n3-n5 n3-n6 n3-n7", 12},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			a, b := halves(nodesN(tc.n))
			if !slices.Equal(a, tc.a) || !slices.Equal(b, tc.b) {
				t.Fatalf("halves = %v | %v, want %v | %v", a, b, tc.a, tc.b)
			}
			cut := cutBetween(a, b)
			if got, want := joinLinks(cut), joinLinks(links(tc.cut)); got != want {
				t.Errorf("cut = %s, want %s", got, want)
			}
			if len(cut) != tc.nLinks {
				t.Errorf("%d links cut, want %d", len(cut), tc.nLinks)
			}
		})
	}
}

func TestBridgeKeepsEveryLinkOfTheBridgeNode(t *testing.T) {
	for _, tc := range []struct {
		n      int
		bridge string
		cut    string
	}{
		{3, "n2", "n1-n3"},
		{4, "n3", "n1-n4 n2-n4"},
		{5, "n3", "n1-n4 n1-n5 n2-n4 n2-n5"},
		{6, "n4", "n1-n5 n1-n6 n2-n5 n2-n6 n3-n5 n3-n6"},
		{7, "n4", "n1-n5 n1-n6 n1-n7 n2-n5 n2-n6 n2-n7 n3-n5 n3-n6 n3-n7"},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			a, b, bridge, cut := bridgeCut(nodesN(tc.n))
			if bridge != tc.bridge {
				t.Errorf("bridge = %s, want %s", bridge, tc.bridge)
			}
			if got, want := joinLinks(cut), joinLinks(links(tc.cut)); got != want {
				t.Errorf("cut = %s, want %s", got, want)
			}
			if len(a)+len(b)+1 != tc.n || slices.Contains(a, bridge) || slices.Contains(b, bridge) {
				t.Errorf("sides %v %v and bridge %s do not split %d nodes", a, b, bridge, tc.n)
			}
			for _, l := range cut {
				if l.Has(bridge) {
					t.Errorf("bridge link %s cut", l)
				}
			}
		})
	}
}

func TestMajoritiesRingCutsLinksBeyondReach(t *testing.T) {
	for _, tc := range []struct {
		n   int
		cut string
	}{
		{1, ""},
		{2, ""},
		{3, "n1-n3"}, // a path: the ring opened at one link
		{4, "n1-n3 n2-n4"},
		{5, "n1-n3 n1-n4 n2-n4 n2-n5 n3-n5"},
		{6, "n1-n4 n2-n5 n3-n6"},
		{7, "n1-n4 n1-n5 n2-n5 n2-n6 n3-n6 n3-n7 n4-n7"},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			if got, want := joinLinks(ringCut(nodesN(tc.n))), joinLinks(links(tc.cut)); got != want {
				t.Errorf("cut = %s, want %s", got, want)
			}
		})
	}
}

func TestMajoritiesRingEveryNodeSeesADifferentMajority(t *testing.T) {
	for n := 3; n <= 7; n++ {
		for seed := range uint64(20) {
			nodes := nodesN(n)
			order := shuffled(nodes, seeded(seed))
			cut := ringCut(order)
			seen := make(map[string]string)
			for node, vis := range sees(nodes, cut) {
				if len(vis) < majority(n) {
					t.Errorf("n=%d order %v: %s sees %v, not a majority", n, order, node, vis)
				}
				key := strings.Join(vis, ",")
				if other, dup := seen[key]; dup {
					t.Errorf("n=%d order %v: %s and %s both see %s", n, order, node, other, key)
				}
				seen[key] = node
			}
		}
	}
}

func TestPickChoosesKDistinctNodesInNodeOrderReproducibly(t *testing.T) {
	nodes := nodesN(7)
	for k := 0; k <= 7; k++ {
		got := pick(nodes, k, seeded(42))
		again := pick(nodes, k, seeded(42))
		if !slices.Equal(got, again) {
			t.Errorf("k=%d: same seed gave %v then %v", k, got, again)
		}
		if len(got) != k || len(slices.Compact(slices.Clone(got))) != k {
			t.Errorf("k=%d: got %v", k, got)
		}
		if !slices.IsSortedFunc(got, func(a, b string) int { return slices.Index(nodes, a) - slices.Index(nodes, b) }) {
			t.Errorf("k=%d: %v not in node order", k, got)
		}
	}
	// Different seeds do not all choose the same node.
	first := make(map[string]bool)
	for seed := range uint64(30) {
		first[pick(nodes, 1, seeded(seed))[0]] = true
	}
	if len(first) < 2 {
		t.Errorf("30 seeds all picked %v", first)
	}
}

func TestMinorityAndMajoritySizes(t *testing.T) {
	for _, tc := range []struct{ n, min, maj int }{
		{1, 0, 1}, {2, 0, 2}, {3, 1, 2}, {4, 1, 3}, {5, 2, 3}, {6, 2, 4}, {7, 3, 4},
	} {
		if got := minority(tc.n); got != tc.min {
			t.Errorf("minority(%d) = %d, want %d", tc.n, got, tc.min)
		}
		if got := majority(tc.n); got != tc.maj {
			t.Errorf("majority(%d) = %d, want %d", tc.n, got, tc.maj)
		}
	}
}
