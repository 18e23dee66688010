// Package nemesis injects Jepsen-style faults into a cluster.Cluster —
// process kills and pauses, network partitions and link latency — and runs
// them on a Schedule that records every fault as an interval in the history.
// Nemeses are written against the cluster interfaces only: a backend that
// cannot cut links simply lacks cluster.Partitioner, and Check says so before
// the run starts. Every random choice comes from an injected *rand.Rand, so
// the same seed and the same cluster answers (node list, leader) give the
// same faults.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// Nemesis is one kind of fault.
//
// A Nemesis is used by one goroutine at a time (it draws from its
// *rand.Rand). Inject and Heal may be called any number of times, but the
// Fault an Inject returned must be healed before the next Inject of a
// nemesis acting on the same resource (the Schedule runs one fault at a
// time).
type Nemesis interface {
	// Name is the fault's name as given to Parse, e.g. "kill-leader"; it is
	// the F of the fault's events in the history.
	Name() string
	// Check refuses, with a message naming what is missing, a nemesis the
	// cluster cannot do: too few nodes, or a missing capability such as
	// cluster.Partitioner. It does not talk to the nodes.
	Check(c cluster.Cluster) error
	// Inject chooses targets and applies the fault. It returns what it
	// chose even when it fails part way: healing that Fault is always safe
	// and undoes whatever was done.
	Inject(ctx context.Context, c cluster.Cluster) (Fault, error)
	// Heal undoes exactly the Fault that Inject returned. It tries every
	// target even when one fails and joins the errors.
	Heal(ctx context.Context, c cluster.Cluster, f Fault) error
}

// Planner is implemented by nemeses whose Inject is Plan followed by Apply.
// The Schedule uses it to record the fault's start, with its targets,
// before the fault takes effect, so that the history interval covers the
// whole fault. All nemeses of this package implement it.
type Planner interface {
	// Plan chooses the targets without changing the cluster (it may ask
	// the cluster for its leader).
	Plan(ctx context.Context, c cluster.Cluster) (Fault, error)
	// Apply injects the planned fault. On error, part of it may be in
	// effect: Heal the Fault.
	Apply(ctx context.Context, c cluster.Cluster, f Fault) error
}

// Describer is implemented by planners whose Apply learns what the Fault
// should say once it is done — the revision compacted, a snapshot's size,
// a re-added member's new ID: ApplyAndDescribe is Apply returning the
// Fault with its Note completed (its targets unchanged), which the
// Schedule records instead of the planned one. On error the returned
// Fault is still the one to heal.
type Describer interface {
	ApplyAndDescribe(ctx context.Context, c cluster.Cluster, f Fault) (Fault, error)
}

// Fault describes one injected fault: what Heal must undo. The slices are
// owned by the Fault; nemeses never modify a Fault after returning it.
type Fault struct {
	// Nemesis is the Name of the nemesis that made the fault.
	Nemesis string
	// Targets are the nodes acted on, in node order: killed or paused
	// nodes, the isolated nodes of partition-one/-leader and isolate-*,
	// the bridge node.
	Targets []string
	// Down are the nodes the fault stops serving (killed or paused).
	Down []string
	// Groups are the sides a partition separates, each in node order
	// (nil for the majorities ring, whose cut has no clean sides).
	Groups [][]string
	// Cut are the links a partition cuts (normalized with Key, sorted).
	Cut []cluster.Link
	// Shaped are the links given latency, with Delay and Jitter.
	Shaped        []cluster.Link
	Delay, Jitter time.Duration
	// Loss is the loss probability the drop nemesis set on Shaped.
	Loss float64
	// File is the file a corruption fault damaged.
	File string
	// Note is free text for a human: the ring order, or why the leader
	// could not be targeted and a random member was chosen instead.
	Note string
}

// String describes the fault's targets; it is the Value of the fault's
// events in the history.
func (f Fault) String() string {
	var parts []string
	if len(f.Targets) > 0 {
		parts = append(parts, "targets="+strings.Join(f.Targets, ","))
	}
	if len(f.Groups) > 0 {
		gs := make([]string, len(f.Groups))
		for i, g := range f.Groups {
			gs[i] = "[" + strings.Join(g, " ") + "]"
		}
		parts = append(parts, "groups="+strings.Join(gs, ""))
	}
	if len(f.Cut) > 0 {
		parts = append(parts, "cut="+joinLinks(f.Cut))
	}
	if len(f.Shaped) > 0 && f.Loss > 0 {
		parts = append(parts, fmt.Sprintf("loss=%g on %d links", f.Loss, len(f.Shaped)))
	} else if len(f.Shaped) > 0 {
		parts = append(parts, fmt.Sprintf("latency=%v+[0,%v) on %d links", f.Delay, f.Jitter, len(f.Shaped)))
	}
	if f.Note != "" {
		parts = append(parts, "("+f.Note+")")
	}
	return strings.Join(parts, " ")
}

// Reach is the most members that one serving member can talk to directly,
// itself included, while f is in force on a cluster of the given members:
// the largest quorum a leader could gather. A fault leaves a cluster of n
// members writable, by Raft's arithmetic, when Reach >= n/2+1.
func (f Fault) Reach(names []string) int {
	cut := make(map[cluster.Link]bool, len(f.Cut))
	for _, l := range f.Cut {
		cut[l.Key()] = true
	}
	best := 0
	for _, a := range names {
		if slices.Contains(f.Down, a) {
			continue
		}
		reach := 1
		for _, b := range names {
			if b != a && !slices.Contains(f.Down, b) && !cut[cluster.Link{A: a, B: b}.Key()] {
				reach++
			}
		}
		best = max(best, reach)
	}
	return best
}

func joinLinks(ls []cluster.Link) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, ",")
}

// Options are the knobs shared by the nemeses that Parse and New build.
type Options struct {
	// Rand makes every random choice (targets, groups, ring order). It is
	// required. It is not safe for concurrent use: share it only with
	// things driven by the same goroutine (e.g. Config.Rand of the
	// Schedule that runs these nemeses).
	Rand *rand.Rand
	// LeaderTimeout bounds the leader lookup of *-leader nemeses; when it
	// expires or there is no leader, a random member is targeted and the
	// Fault's Note says so. Default 5s.
	LeaderTimeout time.Duration
	// Delay and Jitter of the latency nemesis: each byte is delayed by
	// Delay plus a random extra in [0, Jitter). Default 50ms and 50ms.
	Delay, Jitter time.Duration
	// Loss of the drop nemesis: the probability that a chunk of traffic
	// on a link is lost (and retransmitted after a timeout). Default 0.1.
	Loss float64
	// MemberTimeout bounds each wait of the membership nemeses: for a
	// re-added member to be healthy, for a learner to catch up. Default
	// 30s.
	MemberTimeout time.Duration
	// Dir is the run's directory; the snapshot nemesis writes its files
	// under Dir/snapshots and refuses to run (Check) without it.
	Dir string
}

// DefaultOptions returns the defaults, without a Rand.
func DefaultOptions() Options {
	return Options{LeaderTimeout: 5 * time.Second, Delay: 50 * time.Millisecond, Jitter: 50 * time.Millisecond, Loss: 0.1, MemberTimeout: 30 * time.Second}
}

// Validate names the first bad field.
func (o Options) Validate() error {
	switch {
	case o.Rand == nil:
		return errors.New("nemesis options: Rand is required (seeded, so runs can be replayed)")
	case o.LeaderTimeout <= 0:
		return fmt.Errorf("nemesis options: LeaderTimeout %v must be positive", o.LeaderTimeout)
	case o.Delay < 0 || o.Jitter < 0:
		return fmt.Errorf("nemesis options: Delay %v and Jitter %v must not be negative", o.Delay, o.Jitter)
	case o.Loss <= 0 || o.Loss >= 1:
		return fmt.Errorf("nemesis options: Loss %v must be in (0, 1)", o.Loss)
	case o.Delay == 0 && o.Jitter == 0:
		return errors.New("nemesis options: Delay and Jitter are both 0, the latency fault would do nothing")
	case o.MemberTimeout <= 0:
		return fmt.Errorf("nemesis options: MemberTimeout %v must be positive", o.MemberTimeout)
	}
	return nil
}

// nodeNames returns the names of c's nodes in node order.
func nodeNames(c cluster.Cluster) []string {
	nodes := c.Nodes()
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name()
	}
	return names
}

// sized is implemented by every nemesis of this package: the smallest
// cluster it runs on, and why.
type sized interface {
	Name() string
	minNodes() (n int, why string)
}

// needNodes refuses a cluster smaller than the nemesis' minimum.
func needNodes(nem sized, c cluster.Cluster) error {
	min, why := nem.minNodes()
	if n := len(c.Nodes()); n < min {
		return fmt.Errorf("nemesis %s needs at least %d nodes (%s), the cluster has %d", nem.Name(), min, why, n)
	}
	return nil
}

// MinNodes is the smallest cluster size the nemesis called name runs on
// (Check refuses smaller clusters), and why; it fails for an unknown name.
func MinNodes(name string) (int, string, error) {
	for _, r := range registry {
		if r.name == name {
			min, why := r.make(Options{}).(sized).minNodes()
			return min, why, nil
		}
	}
	return 0, "", fmt.Errorf("unknown nemesis %q; valid: %s", name, strings.Join(Names(), ", "))
}

// leaderOrRandom returns the leader's name, or when there is none within
// timeout a random member and a note saying why.
func leaderOrRandom(ctx context.Context, c cluster.Cluster, names []string, rng *rand.Rand, timeout time.Duration) (string, string) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n, err := cluster.Leader(lctx, c)
	if err == nil && n != nil {
		return n.Name(), ""
	}
	if err == nil {
		err = cluster.ErrNoLeader
	}
	pick := names[rng.IntN(len(names))]
	return pick, fmt.Sprintf("no leader: %v; random member %s instead", err, pick)
}
