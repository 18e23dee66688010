package nemesis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// A minimal in-memory cluster for these tests (cluster/fake did not exist
// yet when they were written). Every state-changing call is appended to a
// shared log, so tests can pin down exactly what a nemesis did.

type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
}

func (l *callLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

type fakeNode struct {
	name string
	log  *callLog

	mu     sync.Mutex
	state  cluster.State
	failOn map[cluster.Op]error
}

var _ cluster.Node = (*fakeNode)(nil)

func (n *fakeNode) Name() string      { return n.name }
func (n *fakeNode) ClientURL() string { return "http://" + n.name + ":2379" }
func (n *fakeNode) PeerURL() string   { return "http://" + n.name + ":2380" }
func (n *fakeNode) State() cluster.State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}
func (n *fakeNode) Start(ctx context.Context) error  { return n.do(ctx, cluster.OpStart) }
func (n *fakeNode) Stop(ctx context.Context) error   { return n.do(ctx, cluster.OpStop) }
func (n *fakeNode) Kill(ctx context.Context) error   { return n.do(ctx, cluster.OpKill) }
func (n *fakeNode) Pause(ctx context.Context) error  { return n.do(ctx, cluster.OpPause) }
func (n *fakeNode) Resume(ctx context.Context) error { return n.do(ctx, cluster.OpResume) }
func (n *fakeNode) Wipe(ctx context.Context) error   { return n.do(ctx, cluster.OpWipe) }

func (n *fakeNode) fail(op cluster.Op, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failOn == nil {
		n.failOn = make(map[cluster.Op]error)
	}
	n.failOn[op] = err
}

func (n *fakeNode) do(ctx context.Context, op cluster.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.failOn[op]; err != nil {
		n.log.add("%s %s: failed", op, n.name)
		return err
	}
	next, noop, err := cluster.NextState(n.state, op)
	if err != nil {
		return err
	}
	if !noop {
		n.log.add("%s %s", op, n.name)
		n.state = next
	}
	return nil
}

// fakeCluster has no optional capability; netCluster and partCluster add
// them. It implements cluster.LeaderFinder: leader "" means no leader, and
// blockLeader makes Leader wait for its context.
type fakeCluster struct {
	nodes []*fakeNode
	log   *callLog

	mu          sync.Mutex
	leader      string
	blockLeader bool
	cut         []cluster.Link
	latency     map[cluster.Link]time.Duration
}

var _ cluster.LeaderFinder = (*fakeCluster)(nil)

func newFake(n int) *fakeCluster {
	c := &fakeCluster{log: &callLog{}, latency: make(map[cluster.Link]time.Duration)}
	for i := 1; i <= n; i++ {
		c.nodes = append(c.nodes, &fakeNode{name: fmt.Sprintf("n%d", i), log: c.log, state: cluster.Running})
	}
	return c
}

func (c *fakeCluster) Nodes() []cluster.Node {
	out := make([]cluster.Node, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n
	}
	return out
}

func (c *fakeCluster) Node(name string) (cluster.Node, bool) {
	for _, n := range c.nodes {
		if n.name == name {
			return n, true
		}
	}
	return nil, false
}

func (c *fakeCluster) node(name string) *fakeNode {
	n, _ := c.Node(name)
	return n.(*fakeNode)
}

func (c *fakeCluster) Endpoints() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.ClientURL())
	}
	return out
}

func (c *fakeCluster) Close(context.Context) error { return nil }

func (c *fakeCluster) setLeader(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = name
}

func (c *fakeCluster) Leader(ctx context.Context) (cluster.Node, error) {
	c.mu.Lock()
	leader, block := c.leader, c.blockLeader
	c.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, fmt.Errorf("fake leader: %w", ctx.Err())
	}
	if leader == "" {
		return nil, fmt.Errorf("fake: %w", cluster.ErrNoLeader)
	}
	n, _ := c.Node(leader)
	return n, nil
}

// states returns "n1=running n2=stopped ...".
func (c *fakeCluster) states() string {
	var s []string
	for _, n := range c.nodes {
		s = append(s, n.name+"="+n.State().String())
	}
	return strings.Join(s, " ")
}

func (c *fakeCluster) partition(ctx context.Context, cut []cluster.Link) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cut, err := cluster.ValidateLinks(c, cut)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	c.log.add("partition %s", joinLinks(cut))
	return nil
}

func (c *fakeCluster) heal(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = nil
	c.log.add("heal")
	return nil
}

func (c *fakeCluster) setLatency(ctx context.Context, links []cluster.Link, delay, jitter time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	links, err := cluster.ValidateLinks(c, links)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range links {
		if delay == 0 && jitter == 0 {
			delete(c.latency, l)
		} else {
			c.latency[l] = delay + jitter
		}
	}
	c.log.add("latency %d links %v/%v", len(links), delay, jitter)
	return nil
}

func (c *fakeCluster) cutSet() []cluster.Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.cut)
}

func (c *fakeCluster) shapedLinks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.latency)
}

// netCluster can partition and shape links.
type netCluster struct{ *fakeCluster }

var (
	_ cluster.Partitioner = netCluster{}
	_ cluster.LinkShaper  = netCluster{}
)

func (c netCluster) Partition(ctx context.Context, cut []cluster.Link) error {
	return c.partition(ctx, cut)
}
func (c netCluster) Heal(ctx context.Context) error { return c.heal(ctx) }
func (c netCluster) SetLatency(ctx context.Context, links []cluster.Link, delay, jitter time.Duration) error {
	return c.setLatency(ctx, links, delay, jitter)
}

// partCluster can partition but not shape links.
type partCluster struct{ *fakeCluster }

var _ cluster.Partitioner = partCluster{}

func (c partCluster) Partition(ctx context.Context, cut []cluster.Link) error {
	return c.partition(ctx, cut)
}
func (c partCluster) Heal(ctx context.Context) error { return c.heal(ctx) }
