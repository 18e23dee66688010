// Package fake is an in-memory cluster.Cluster, and a cluster.Backend that
// starts such clusters, for unit tests of code written against the cluster
// interfaces (nemeses, schedules, the harness): no processes, no network. It follows the same state table as the real
// backends (cluster.NextState), records every call, lets tests inject
// failures, and models leadership just enough for leader-targeting faults:
// the leader is sticky while it stays in a connected majority of running
// nodes, otherwise the lowest-named node of such a majority takes over.
//
// Like a real backend, it honours contexts: every method but Close called
// with a done context returns the context's error without any effect, and
// BlockNext makes a call hang until its context is done.
package fake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// ErrNotHealthy is returned by WaitHealthy when the fake cluster is not
// healthy; the fake never waits, since nothing changes in it by itself.
var ErrNotHealthy = errors.New("fake cluster not healthy")

// Call is one recorded operation.
type Call struct {
	Op     string // a cluster.Op, or "partition", "heal", "latency", "close"
	Node   string // for node operations
	Links  []cluster.Link
	Delay  time.Duration
	Jitter time.Duration
	Loss   float64 // for "loss"
	Err    error   // what the call returned
}

// String renders the call compactly, e.g. "kill n1", "partition [n1-n2]".
func (c Call) String() string {
	var b strings.Builder
	b.WriteString(c.Op)
	if c.Node != "" {
		b.WriteString(" " + c.Node)
	}
	if c.Links != nil {
		names := make([]string, len(c.Links))
		for i, l := range c.Links {
			names[i] = l.String()
		}
		b.WriteString(" [" + strings.Join(names, " ") + "]")
	}
	if c.Op == "latency" {
		fmt.Fprintf(&b, " %v±%v", c.Delay, c.Jitter)
	}
	if c.Err != nil {
		b.WriteString(" -> " + c.Err.Error())
	}
	return b.String()
}

// Shaping is the latency set on a link.
type Shaping struct{ Delay, Jitter time.Duration }

type failKey struct{ op, node string }

// injection is what FailNext or BlockNext queued for one call.
type injection struct {
	err   error // returned at once, unless block
	block bool  // wait for the call's context to be done
}

// Cluster is the fake. All methods are safe for concurrent use; one mutex
// guards the whole fake, so calls are totally ordered as recorded.
type Cluster struct {
	mu       sync.Mutex
	nodes    cluster.Members[*Node]
	calls    []Call
	cut      map[cluster.Link]bool
	shape    map[cluster.Link]Shaping
	loss     map[cluster.Link]float64 // SetLoss; nil until the first call
	leader   string
	closed   bool
	injected map[failKey][]injection
	members  []cluster.Member // nil until first asked (membership.go)
	nextID   uint64
}

var (
	_ cluster.Cluster      = (*Cluster)(nil)
	_ cluster.Partitioner  = (*Cluster)(nil)
	_ cluster.LinkShaper   = (*Cluster)(nil)
	_ cluster.HealthWaiter = (*Cluster)(nil)
	_ cluster.LeaderFinder = (*Cluster)(nil)
	_ cluster.Node         = (*Node)(nil)
)

// New returns a cluster of size running nodes n1..nSize, led by n1.
func New(size int) *Cluster {
	c := &Cluster{
		cut:      map[cluster.Link]bool{},
		shape:    map[cluster.Link]Shaping{},
		injected: map[failKey][]injection{},
	}
	for i := 1; i <= size; i++ {
		c.nodes = append(c.nodes, &Node{c: c, name: "n" + strconv.Itoa(i), state: cluster.Running})
	}
	if size > 0 {
		c.leader = "n1"
	}
	return c
}

// FailNext makes the next call of op (a cluster.Op, or "partition", "heal",
// "latency", "close", "leader") on node ("" for cluster-wide operations)
// return err without any effect. Calls of FailNext and BlockNext for the
// same op and node queue up, one per call of op.
func (c *Cluster) FailNext(op, node string, err error) {
	c.inject(op, node, injection{err: err})
}

// BlockNext makes the next call of op on node (as for FailNext) hang until
// its context is done, like a backend that does not answer, and then
// return the context's error without any effect. Other calls proceed
// meanwhile; the blocked call is recorded when it returns.
func (c *Cluster) BlockNext(op, node string) {
	c.inject(op, node, injection{block: true})
}

func (c *Cluster) inject(op, node string, in injection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := failKey{op, node}
	c.injected[k] = append(c.injected[k], in)
}

// refuse returns why a call of op on node must have no effect: what
// FailNext or BlockNext queued for it, or its done context; nil if it may
// proceed. The caller holds mu; a blocked call releases it while it waits.
func (c *Cluster) refuse(ctx context.Context, op, node string) error {
	if err := c.injectedFor(ctx, op, node); err != nil {
		return err
	}
	return ctx.Err()
}

// injectedFor pops and acts on what FailNext or BlockNext queued for a call
// of op on node (a block ends at once if ctx is already done); the caller
// holds mu.
func (c *Cluster) injectedFor(ctx context.Context, op, node string) error {
	k := failKey{op, node}
	q := c.injected[k]
	if len(q) == 0 {
		return nil
	}
	c.injected[k] = q[1:]
	if !q[0].block {
		return q[0].err
	}
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	return ctx.Err()
}

// Calls returns every call so far, in the order they returned (Leader,
// WaitHealthy and the accessors are not recorded); the slice is the
// caller's.
func (c *Cluster) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// CallStrings returns Calls rendered with Call.String, handy in tests.
func (c *Cluster) CallStrings() []string {
	calls := c.Calls()
	out := make([]string, len(calls))
	for i, call := range calls {
		out[i] = call.String()
	}
	return out
}

// Cut returns the links currently cut, sorted; the slice is the caller's.
func (c *Cluster) Cut() []cluster.Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Collect(maps.Keys(c.cut))
	slices.SortFunc(out, func(a, b cluster.Link) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Latency returns the shaping per link; the map is the caller's.
func (c *Cluster) Latency() map[cluster.Link]Shaping {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.shape)
}

// States returns every node's state by name; the map is the caller's.
func (c *Cluster) States() map[string]cluster.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]cluster.State, len(c.nodes))
	for _, n := range c.nodes {
		out[n.name] = n.state
	}
	return out
}

// Closed reports whether Close has been called.
func (c *Cluster) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// SetLeader makes name the sticky leader (Leader returns it only while it
// reaches a majority).
func (c *Cluster) SetLeader(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = name
}

// Nodes returns the nodes in name order; the slice is the caller's.
func (c *Cluster) Nodes() []cluster.Node { return c.nodes.Nodes() }

// Node returns the named node.
func (c *Cluster) Node(name string) (cluster.Node, bool) { return c.nodes.Node(name) }

// Endpoints returns "fake://nK" per node.
func (c *Cluster) Endpoints() []string { return c.nodes.Endpoints() }

func (c *Cluster) record(call Call) error {
	c.calls = append(c.calls, call)
	return call.Err
}

// Partition cuts exactly the given links (replacing the previous cut set).
func (c *Cluster) Partition(ctx context.Context, cut []cluster.Link) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	links, err := cluster.ValidateLinks(c, cut)
	call := Call{Op: "partition", Links: slices.Clone(cut)}
	if err == nil {
		err = c.refuse(ctx, "partition", "")
	}
	if err == nil {
		c.cut = map[cluster.Link]bool{}
		for _, l := range links {
			c.cut[l] = true
		}
	}
	call.Err = err
	return c.record(call)
}

// Heal restores every link.
func (c *Cluster) Heal(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.refuse(ctx, "heal", "")
	if err == nil {
		c.cut = map[cluster.Link]bool{}
	}
	return c.record(Call{Op: "heal", Err: err})
}

// SetLatency records shaping on the links; zero delay and jitter remove it.
func (c *Cluster) SetLatency(ctx context.Context, links []cluster.Link, delay, jitter time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ls, err := cluster.ValidateLinks(c, links)
	if err == nil && (delay < 0 || jitter < 0) {
		err = fmt.Errorf("negative latency %v or jitter %v", delay, jitter)
	}
	if err == nil {
		err = c.refuse(ctx, "latency", "")
	}
	if err == nil {
		for _, l := range ls {
			if delay == 0 && jitter == 0 {
				delete(c.shape, l)
			} else {
				c.shape[l] = Shaping{Delay: delay, Jitter: jitter}
			}
		}
	}
	return c.record(Call{Op: "latency", Links: slices.Clone(links), Delay: delay, Jitter: jitter, Err: err})
}

// Close resumes paused nodes, stops all, heals and removes latency, even
// when ctx is done (as cluster.Cluster requires), and even when FailNext
// or BlockNext make it return an error. Only the first call is recorded
// and has effect; later calls return its result.
func (c *Cluster) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		for i := len(c.calls) - 1; i >= 0; i-- {
			if c.calls[i].Op == "close" {
				return c.calls[i].Err
			}
		}
	}
	err := c.injectedFor(ctx, "close", "")
	c.closed = true
	for _, n := range c.nodes {
		n.state = cluster.Stopped
	}
	c.cut = map[cluster.Link]bool{}
	c.shape = map[cluster.Link]Shaping{}
	c.loss = nil
	return c.record(Call{Op: "close", Err: err})
}

// followers returns the running nodes with an uncut link to the running
// node name (name included), or nil if name is not running; the caller
// holds mu.
func (c *Cluster) followers(name string) []string {
	l, ok := c.Node(name)
	if !ok || l.(*Node).state != cluster.Running {
		return nil
	}
	out := []string{name}
	for _, n := range c.nodes {
		if n.name != name && n.state == cluster.Running && !c.cut[cluster.Link{A: name, B: n.name}.Key()] {
			out = append(out, n.name)
		}
	}
	return out
}

// leaderLocked elects as raft would, roughly: the sticky leader stays while
// it reaches a majority directly; otherwise the lowest-named running node
// that does becomes leader. "" if none can. The caller holds mu.
func (c *Cluster) leaderLocked() string {
	if len(c.followers(c.leader)) > len(c.nodes)/2 {
		return c.leader
	}
	for _, n := range c.nodes {
		if len(c.followers(n.name)) > len(c.nodes)/2 {
			c.leader = n.name
			return n.name
		}
	}
	return ""
}

// Leader returns the leader per the package's model (see the package doc):
// it wraps cluster.ErrNoLeader when no running node reaches a majority.
// FailNext and BlockNext with op "leader" make it fail or hang.
func (c *Cluster) Leader(ctx context.Context) (cluster.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refuse(ctx, "leader", ""); err != nil {
		return nil, fmt.Errorf("fake leader: %w", err)
	}
	l := c.leaderLocked()
	if l == "" {
		return nil, fmt.Errorf("fake: %w: no running node reaches a majority", cluster.ErrNoLeader)
	}
	n, _ := c.Node(l)
	return n, nil
}

// WaitHealthy returns nil if there is a leader with an uncut link to every
// running node, else an error wrapping ErrNotHealthy, at once.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	running := 0
	for _, n := range c.nodes {
		if n.state == cluster.Running {
			running++
		}
	}
	l := c.leaderLocked()
	if f := c.followers(l); l == "" || len(f) != running {
		return fmt.Errorf("%w: %d running, leader %q reaches %v", ErrNotHealthy, running, l, f)
	}
	return nil
}

// Node is a fake member.
type Node struct {
	c     *Cluster
	name  string
	state cluster.State  // guarded by c.mu
	wipes int            // guarded by c.mu
	joins []cluster.Join // guarded by c.mu
	dir   string         // SetDataDirs; guarded by c.mu
}

func (n *Node) Name() string      { return n.name }
func (n *Node) ClientURL() string { return "fake://" + n.name }
func (n *Node) PeerURL() string   { return "fake://" + n.name + "/peer" }

// State returns the node's state.
func (n *Node) State() cluster.State {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.state
}

// Wipes returns how many times the node's data was wiped.
func (n *Node) Wipes() int {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.wipes
}

func (n *Node) do(ctx context.Context, op cluster.Op) error {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	next, _, err := cluster.NextState(n.state, op)
	if err != nil {
		err = fmt.Errorf("%s %s: %w", op, n.name, err)
	} else {
		err = n.c.refuse(ctx, string(op), n.name)
	}
	if err == nil {
		n.state = next
		if op == cluster.OpWipe {
			n.wipes++
		}
	}
	return n.c.record(Call{Op: string(op), Node: n.name, Err: err})
}

func (n *Node) Start(ctx context.Context) error  { return n.do(ctx, cluster.OpStart) }
func (n *Node) Stop(ctx context.Context) error   { return n.do(ctx, cluster.OpStop) }
func (n *Node) Kill(ctx context.Context) error   { return n.do(ctx, cluster.OpKill) }
func (n *Node) Pause(ctx context.Context) error  { return n.do(ctx, cluster.OpPause) }
func (n *Node) Resume(ctx context.Context) error { return n.do(ctx, cluster.OpResume) }
func (n *Node) Wipe(ctx context.Context) error   { return n.do(ctx, cluster.OpWipe) }
