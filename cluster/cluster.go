// Package cluster is the seam between Quorum's harness and the servers it
// tests: a Backend starts a Cluster of Nodes running any server that takes
// etcd's flags and speaks etcd's v3 API. The harness and the benchmark
// start clusters through Backend (with a StartConfig: server, size,
// directory, seed, logger, member settings); nemeses and workloads are
// written against Cluster and Node only. The backends are cluster/local
// (processes on loopback, with fault proxies on the peer links),
// cluster/docker (containers on a network of the run's own) and
// cluster/fake (in memory, for unit tests).
//
// Optional capabilities (Partitioner, LinkShaper, ProcessNode, Joiner,
// HealthWaiter, LeaderFinder, MembershipCluster) are separate small interfaces that callers
// discover with a type assertion at run time, so a backend that cannot cut
// links simply does not implement Partitioner.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is the life-cycle state of a Node as its backend last observed it.
type State int

const (
	// Stopped: no server process (never started, stopped, killed or exited).
	Stopped State = iota
	// Running: the server process exists and is not frozen.
	Running
	// Paused: the server process exists and is frozen (SIGSTOP or equivalent).
	Paused
)

// String returns "stopped", "running" or "paused".
func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Running:
		return "running"
	case Paused:
		return "paused"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ErrInvalidState is wrapped by Node operations that are not allowed in the
// node's current state (for example Pause on a stopped node, Wipe on a running
// one). Callers branch on it with errors.Is.
var ErrInvalidState = errors.New("operation not allowed in node state")

// ErrUnknownNode is wrapped when a node name does not belong to the cluster.
var ErrUnknownNode = errors.New("unknown node")

// ErrNoLeader is wrapped by Leader when no leader is agreed on by a majority.
var ErrNoLeader = errors.New("no leader")

// Node is one member of a Cluster.
//
// Methods are safe for concurrent use; operations on one node are
// serialized. Start, Stop, Kill and Resume are idempotent: asking for the
// state the node is already in succeeds without doing anything. The allowed
// transitions are those of NextState.
type Node interface {
	// Name is the member name, "n1".."nN"; it never changes.
	Name() string
	// ClientURL is the URL clients dial, e.g. http://127.0.0.1:41234.
	ClientURL() string
	// PeerURL is the member's advertised peer URL (on backends with fault
	// proxies, the proxy's address rather than the server's listener).
	PeerURL() string
	// Start starts the server on its existing data (a restart after
	// Stop/Kill). It returns once the process is up and its client port
	// accepts connections, not once the member is healthy: use WaitHealthy.
	Start(ctx context.Context) error
	// Stop sends SIGTERM and waits for the process to exit, sending SIGKILL
	// after the backend's grace period or as soon as ctx is done.
	Stop(ctx context.Context) error
	// Kill sends SIGKILL and waits for the process to exit.
	Kill(ctx context.Context) error
	// Pause freezes the process (SIGSTOP). The node must be running.
	Pause(ctx context.Context) error
	// Resume unfreezes a paused process (SIGCONT).
	Resume(ctx context.Context) error
	// Wipe deletes the node's data directory. The node must be stopped.
	// Starting a wiped node makes it bootstrap as a fresh member with the
	// same identity; whether the cluster accepts that is up to the server.
	Wipe(ctx context.Context) error
	// State is the node's current state. A process that exits on its own
	// (a crash) is reported as Stopped.
	State() State
}

// Cluster is a set of Nodes forming one server cluster.
type Cluster interface {
	// Nodes returns the nodes in name order (n1, n2, ...). The slice is a
	// fresh copy the caller owns; the Nodes are shared.
	Nodes() []Node
	// Node returns the node with the given name.
	Node(name string) (Node, bool)
	// Endpoints returns every node's client URL in node order (whatever the
	// node's state); the slice is the caller's.
	Endpoints() []string
	// Close resumes paused nodes, stops every node, heals every fault and
	// releases all resources. It is idempotent: later calls return the first
	// call's result. Logs and data stay in the backend's run directory. If ctx
	// is already done, Close still leaves no process behind (it kills).
	Close(ctx context.Context) error
}

// Link is an unordered pair of node names: Link{"n1","n2"} and
// Link{"n2","n1"} are the same link. Compare links with Key or Equal.
type Link struct{ A, B string }

// Key returns the link with A <= B, suitable as a map key.
func (l Link) Key() Link {
	if l.B < l.A {
		return Link{A: l.B, B: l.A}
	}
	return l
}

// Equal reports whether l and o name the same pair, in either order.
func (l Link) Equal(o Link) bool { return l.Key() == o.Key() }

// Has reports whether name is one end of the link.
func (l Link) Has(name string) bool { return l.A == name || l.B == name }

// String returns "A-B" with the names ordered.
func (l Link) String() string { k := l.Key(); return k.A + "-" + k.B }

// DirectedLink is traffic from one node to another, as counted by fault
// proxies: bytes written by From's process and read by To's.
type DirectedLink struct{ From, To string }

// String returns "From->To".
func (d DirectedLink) String() string { return d.From + "->" + d.To }

// Partitioner is implemented by clusters that can cut links between nodes.
type Partitioner interface {
	// Partition cuts exactly the links named, in both directions, replacing
	// any previous cut set: links cut before and not named now are healed.
	// Traffic on a cut link is silently dropped (like packet loss), not
	// refused. An empty cut is the same as Heal.
	Partition(ctx context.Context, cut []Link) error
	// Heal restores every cut link.
	Heal(ctx context.Context) error
}

// LinkShaper is implemented by clusters that can delay traffic on links.
type LinkShaper interface {
	// SetLatency delays every byte on the named links, in both directions,
	// by delay plus a random extra in [0, jitter), preserving byte order.
	// delay == 0 && jitter == 0 removes shaping from those links. Links not
	// named keep their current shaping.
	SetLatency(ctx context.Context, links []Link, delay, jitter time.Duration) error
}

// DiskFaulter is implemented by clusters whose members' disks can lose
// what was written but not fsynced, as a power cut does.
type DiskFaulter interface {
	// LoseUnsynced throws away every write of the named member's process
	// that it had not fsynced; the member must be stopped (killed). It
	// returns a description of what was lost.
	LoseUnsynced(ctx context.Context, name string) (string, error)
}

// DataDirer is implemented by nodes whose data directory is on this
// machine's file system, so that a nemesis can corrupt its files while
// the member is stopped.
type DataDirer interface {
	DataDir() string
}

// LossShaper is implemented by clusters that can lose traffic on links.
type LossShaper interface {
	// SetLoss makes traffic on the named links, in both directions, lost
	// with probability p, as packet loss under TCP looks to its ends:
	// stalls of a retransmission timeout, growing on consecutive losses,
	// never reordered or corrupted bytes. p == 0 removes the loss; links
	// not named keep theirs.
	SetLoss(ctx context.Context, links []Link, p float64) error
}

// ValidateLinks checks that every link joins two distinct known nodes and
// returns the links normalized (Key) with duplicates removed, in input order.
func ValidateLinks(c Cluster, links []Link) ([]Link, error) {
	seen := make(map[Link]bool, len(links))
	out := make([]Link, 0, len(links))
	for _, l := range links {
		k := l.Key()
		if k.A == k.B {
			return nil, fmt.Errorf("link %s: a node cannot be linked to itself", k)
		}
		for _, n := range []string{k.A, k.B} {
			if _, ok := c.Node(n); !ok {
				return nil, fmt.Errorf("link %s: %w %q", k, ErrUnknownNode, n)
			}
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// Isolate returns the links that cut the named nodes off from every other
// node of c (the links inside the group stay up).
func Isolate(c Cluster, names ...string) []Link {
	in := make(map[string]bool, len(names))
	for _, n := range names {
		in[n] = true
	}
	var cut []Link
	for _, a := range c.Nodes() {
		if !in[a.Name()] {
			continue
		}
		for _, b := range c.Nodes() {
			if !in[b.Name()] {
				cut = append(cut, Link{A: a.Name(), B: b.Name()}.Key())
			}
		}
	}
	return cut
}

// SortLinks normalizes links (Key), sorts them by (A, B) and removes
// duplicates, reusing ls's storage; it returns the result.
func SortLinks(ls []Link) []Link {
	for i := range ls {
		ls[i] = ls[i].Key()
	}
	slices.SortFunc(ls, func(x, y Link) int {
		if c := strings.Compare(x.A, y.A); c != 0 {
			return c
		}
		return strings.Compare(x.B, y.B)
	})
	return slices.Compact(ls)
}

// Members is a cluster's nodes in name order, with the lookups every
// backend implements alike; a backend keeps its own node type in one and
// answers Nodes, Node and Endpoints from it. Not safe for concurrent
// modification: backends fill it once, before the cluster is shared.
type Members[N Node] []N

// Nodes returns the nodes as cluster.Nodes, in a fresh slice the caller owns.
func (m Members[N]) Nodes() []Node {
	out := make([]Node, len(m))
	for i, n := range m {
		out[i] = n
	}
	return out
}

// Get returns the named node with its backend type.
func (m Members[N]) Get(name string) (N, bool) {
	for _, n := range m {
		if n.Name() == name {
			return n, true
		}
	}
	var zero N
	return zero, false
}

// Node returns the named node.
func (m Members[N]) Node(name string) (Node, bool) {
	if n, ok := m.Get(name); ok {
		return n, true
	}
	return nil, false
}

// Endpoints returns every node's client URL in node order, in a fresh slice.
func (m Members[N]) Endpoints() []string {
	out := make([]string, len(m))
	for i, n := range m {
		out[i] = n.ClientURL()
	}
	return out
}
