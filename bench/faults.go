package bench

import (
	"slices"

	"github.com/quorum-kv/quorum/cluster"
)

// Fault names. Every fault is aimed at the current leader; the members it
// takes away ("lost") decide whether quorum predicts the cluster writable.
const (
	// FaultKillLeader: SIGKILL the leader (restarted after the trial).
	FaultKillLeader = "kill-leader"
	// FaultIsolateLeader: cut the leader off from every other member.
	FaultIsolateLeader = "isolate-leader"
	// FaultIsolateMinority: cut off (N-1)/2 members, the leader among
	// them, each from every other member (sizes >= 3).
	FaultIsolateMinority = "isolate-minority"
	// FaultIsolateMajority: cut off N/2+1 members, the leader among them,
	// each from every other member (sizes >= 2): quorum is lost.
	FaultIsolateMajority = "isolate-majority"
	// FaultSplitEven: split an even-sized cluster into two halves (the
	// leader in the first): neither half has a quorum.
	FaultSplitEven = "split-even"
)

// FaultNames lists the faults in report order.
func FaultNames() []string {
	return []string{FaultKillLeader, FaultIsolateLeader, FaultIsolateMinority, FaultIsolateMajority, FaultSplitEven}
}

func faultOrder(f string) int { return slices.Index(FaultNames(), f) }

// faultPlan is one fault made concrete for a cluster.
type faultPlan struct {
	// Kill are members to SIGKILL; Cut the links to cut.
	Kill []string
	Cut  []cluster.Link
	// Targets are the members taken away; len(Targets) members are lost,
	// except for a split, where Lost is half the cluster.
	Targets []string
	Lost    int
}

// planFault makes fault concrete for members names (in order) led by
// leader. ok is false when the fault does not apply to this size (a
// partition of one member, a minority of zero, a split of an odd size).
// It is pure.
func planFault(fault string, names []string, leader string) (p faultPlan, ok bool) {
	n := len(names)
	// The leader first, then the others in name order.
	order := append([]string{leader}, slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == leader })...)
	switch fault {
	case FaultKillLeader:
		return faultPlan{Kill: []string{leader}, Targets: []string{leader}, Lost: 1}, true
	case FaultIsolateLeader:
		if n < 2 {
			return p, false
		}
		return isolateEach(names, order[:1]), true
	case FaultIsolateMinority:
		k := (n - 1) / 2
		if k < 1 {
			return p, false
		}
		return isolateEach(names, order[:k]), true
	case FaultIsolateMajority:
		if n < 2 {
			return p, false
		}
		return isolateEach(names, order[:n/2+1]), true
	case FaultSplitEven:
		if n < 2 || n%2 != 0 {
			return p, false
		}
		a, b := order[:n/2], order[n/2:]
		var cut []cluster.Link
		for _, x := range a {
			for _, y := range b {
				cut = append(cut, cluster.Link{A: x, B: y}.Key())
			}
		}
		cut = cluster.SortLinks(cut)
		return faultPlan{Cut: cut, Targets: slices.Clone(a), Lost: n / 2}, true
	}
	return p, false
}

// isolateEach cuts every link that touches one of targets: each target is
// alone, as if it had failed.
func isolateEach(names, targets []string) faultPlan {
	var cut []cluster.Link
	for i, a := range names {
		for _, b := range names[i+1:] {
			if slices.Contains(targets, a) || slices.Contains(targets, b) {
				cut = append(cut, cluster.Link{A: a, B: b}.Key())
			}
		}
	}
	cut = cluster.SortLinks(cut)
	return faultPlan{Cut: cut, Targets: slices.Clone(targets), Lost: len(targets)}
}
