package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/quorum-kv/quorum/nemesis"
)

// Fault names. A bench fault is a nemesis (package nemesis, the same
// faults `quorum test` injects) held until a write is acknowledged; the
// defaults below are the ones aimed at the current leader, so that every
// trial costs an election. The members the fault takes away decide
// whether quorum predicts the cluster writable (nemesis.Fault.Reach).
// Any other nemesis name (kill-one, pause-leader, partition-bridge, ...)
// is accepted too.
const (
	// FaultKillLeader: SIGKILL the leader (restarted after the trial).
	FaultKillLeader = "kill-leader"
	// FaultIsolateLeader: cut the leader off from every other member; the
	// nemesis partition-leader.
	FaultIsolateLeader = "isolate-leader"
	// FaultIsolateMinority: cut off (N-1)/2 members, the leader among
	// them, each from every other member (sizes >= 3).
	FaultIsolateMinority = "isolate-minority"
	// FaultIsolateMajority: cut off N/2+1 members, the leader among them,
	// each from every other member (sizes >= 2): quorum is lost.
	FaultIsolateMajority = "isolate-majority"
	// FaultSplitEven: split an even-sized cluster into two halves: neither
	// has a quorum. The nemesis partition-halves, on even sizes only.
	FaultSplitEven = "split-even"
)

// FaultNames lists the default faults in report order.
func FaultNames() []string {
	return []string{FaultKillLeader, FaultIsolateLeader, FaultIsolateMinority, FaultIsolateMajority, FaultSplitEven}
}

// aliases are bench's names for nemeses (results keep the bench name).
var aliases = map[string]struct {
	nemesis string
	// evenOnly: the fault applies to even sizes only.
	evenOnly bool
}{
	FaultIsolateLeader: {nemesis: "partition-leader"},
	FaultSplitEven:     {nemesis: "partition-halves", evenOnly: true},
}

// NemesisOf is the nemesis a bench fault name stands for: the alias's, or
// the name itself.
func NemesisOf(fault string) string {
	if a, ok := aliases[fault]; ok {
		return a.nemesis
	}
	return fault
}

// checkFault refuses a name that is neither a bench alias nor a nemesis.
func checkFault(fault string) error {
	if fault == nemesis.None {
		return fmt.Errorf("unknown fault %q (to skip faults, give none alone)", fault)
	}
	if _, _, err := nemesis.MinNodes(NemesisOf(fault)); err != nil {
		valid := FaultNames()
		for _, n := range nemesis.Names()[1:] {
			if !slices.Contains(valid, n) {
				valid = append(valid, n)
			}
		}
		return fmt.Errorf("unknown fault %q; valid: %s", fault, strings.Join(valid, ", "))
	}
	return nil
}

// faultApplies says whether fault runs on a cluster of size members (a
// partition of one member, a minority of zero, a split of an odd size do
// not).
func faultApplies(fault string, size int) bool {
	min, _, err := nemesis.MinNodes(NemesisOf(fault))
	if err != nil || size < min {
		return false
	}
	return !aliases[fault].evenOnly || size%2 == 0
}

// faultOrder is the report order: the defaults first, then the other
// nemeses in their order.
func faultOrder(f string) int {
	if i := slices.Index(FaultNames(), f); i >= 0 {
		return i
	}
	return len(FaultNames()) + slices.Index(nemesis.Names(), f)
}
