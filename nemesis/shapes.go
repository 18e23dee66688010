package nemesis

import (
	"math/rand/v2"
	"slices"

	"github.com/quorum-kv/quorum/cluster"
)

// The grouping functions below are pure: node names in (and a *rand.Rand
// only where the shape itself is random), groups or cut links out. The
// random shapes are split into a shuffle and a deterministic shape of the
// shuffled order, so tests can pin down exactly which links a given order
// cuts. Cut sets are normalized (Link.Key) and sorted; a cut link is cut in
// both directions (cluster.Partitioner's contract).

// minority is the largest number of nodes that is not a majority of n.
func minority(n int) int { return (n - 1) / 2 }

// majority is the smallest number of nodes that is a majority of n.
func majority(n int) int { return n/2 + 1 }

// pick returns k distinct names chosen at random from names, in the order
// they have in names. It draws from rng even when k == len(names) so that
// the number of draws depends only on len(names).
func pick(names []string, k int, rng *rand.Rand) []string {
	idx := rng.Perm(len(names))[:k]
	slices.Sort(idx)
	out := make([]string, k)
	for i, j := range idx {
		out[i] = names[j]
	}
	return out
}

// shuffled returns a random permutation of names (a new slice).
func shuffled(names []string, rng *rand.Rand) []string {
	out := slices.Clone(names)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// inOrder returns the members of subset in the order they have in names.
func inOrder(names, subset []string) []string {
	out := make([]string, 0, len(subset))
	for _, n := range names {
		if slices.Contains(subset, n) {
			out = append(out, n)
		}
	}
	return out
}

// without returns names minus drop, keeping order.
func without(names []string, drop ...string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !slices.Contains(drop, n) {
			out = append(out, n)
		}
	}
	return out
}

// cutBetween returns every link with one end in a and the other in b: the
// cut that separates a from b (links inside a or inside b stay up).
func cutBetween(a, b []string) []cluster.Link {
	var cut []cluster.Link
	for _, x := range a {
		for _, y := range b {
			if x != y {
				cut = append(cut, cluster.Link{A: x, B: y})
			}
		}
	}
	return cluster.SortLinks(cut)
}

// allLinks returns every link between two distinct names.
func allLinks(names []string) []cluster.Link {
	var ls []cluster.Link
	for i, x := range names {
		for _, y := range names[i+1:] {
			ls = append(ls, cluster.Link{A: x, B: y})
		}
	}
	return cluster.SortLinks(ls)
}

// halves splits order in two, the smaller half first (Jepsen's bisect):
// for 5 nodes, the first 2 and the last 3.
func halves(order []string) (a, b []string) {
	m := len(order) / 2
	return slices.Clone(order[:m]), slices.Clone(order[m:])
}

// bridgeCut cuts order into halves (smaller first) joined only through the
// bridge, the first node of the larger half, which keeps every link (as
// Jepsen's nemesis/bridge). The sides returned exclude the bridge.
func bridgeCut(order []string) (sideA, sideB []string, bridge string, cut []cluster.Link) {
	a, b := halves(order)
	bridge, sideB = b[0], b[1:]
	return a, sideB, bridge, cutBetween(a, sideB)
}

// ringCut arranges order in a ring and cuts every link between nodes more
// than k places apart, with k the smallest reach such that each node sees a
// majority (itself and k neighbours on each side: 2k+1 >= majority). Each
// node then sees the 2k+1 nodes around it: a majority, and for n >= 4 a
// different window for each node because 2k+1 < n.
//
// Jepsen's majorities-ring drops traffic in one direction only; with
// links cut both ways, this reach-k ring is the symmetric equivalent (for 5
// nodes the same shape: each node sees its two ring neighbours). For 3
// nodes no ring works (reach 1 sees everyone), so the ring is opened into a
// path: the one link between order[0] and order[2] is cut; the ends see
// different majorities and the middle node sees all three. Fewer than 3
// nodes have no such cut (nil).
func ringCut(order []string) []cluster.Link {
	n := len(order)
	switch {
	case n < 3:
		return nil
	case n == 3:
		return cluster.SortLinks([]cluster.Link{{A: order[0], B: order[2]}})
	}
	k := majority(n) / 2
	var cut []cluster.Link
	for i := range n {
		for j := i + 1; j < n; j++ {
			if d := min(j-i, n-(j-i)); d > k {
				cut = append(cut, cluster.Link{A: order[i], B: order[j]})
			}
		}
	}
	return cluster.SortLinks(cut)
}
