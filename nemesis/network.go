package nemesis

import (
	"context"
	"fmt"
	"strings"

	"github.com/quorum-kv/quorum/cluster"
)

// shape is a kind of partition.
type shape int

const (
	shapeOne    shape = iota // isolate one random member
	shapeLeader              // isolate the leader
	shapeHalves              // random halves, smaller first
	shapeRing                // majorities ring
	shapeBridge              // two halves joined through one bridge node
)

var shapeNames = map[shape]string{
	shapeOne:    "partition-one",
	shapeLeader: "partition-leader",
	shapeHalves: "partition-halves",
	shapeRing:   "partition-majorities-ring",
	shapeBridge: "partition-bridge",
}

// partitionNemesis cuts links through cluster.Partitioner; Heal restores
// them all (the Partitioner holds one cut set, which is this fault's).
type partitionNemesis struct {
	shape shape
	opts  Options
}

var (
	_ Nemesis = (*partitionNemesis)(nil)
	_ Planner = (*partitionNemesis)(nil)
)

func (p *partitionNemesis) Name() string { return shapeNames[p.shape] }

func (p *partitionNemesis) Check(c cluster.Cluster) error {
	if _, err := partitioner(p.Name(), c); err != nil {
		return err
	}
	return needNodes(p, c)
}

func (p *partitionNemesis) minNodes() (int, string) {
	switch p.shape {
	case shapeHalves:
		return 2, "two halves"
	case shapeRing:
		return 3, "with fewer every node sees the same majority"
	case shapeBridge:
		return 3, "two sides and a bridge"
	}
	return 2, "someone to be isolated from"
}

func (p *partitionNemesis) Plan(ctx context.Context, c cluster.Cluster) (Fault, error) {
	if err := p.Check(c); err != nil {
		return Fault{}, err
	}
	names := nodeNames(c)
	f := Fault{Nemesis: p.Name()}
	switch p.shape {
	case shapeOne, shapeLeader:
		t := targetOne
		if p.shape == shapeLeader {
			t = targetLeader
		}
		f.Targets, f.Note = chooseTargets(ctx, c, names, t, p.opts)
		rest := without(names, f.Targets...)
		f.Groups = [][]string{f.Targets, rest}
		f.Cut = cutBetween(f.Targets, rest)
	case shapeHalves:
		a, b := halves(shuffled(names, p.opts.Rand))
		f.Groups = [][]string{inOrder(names, a), inOrder(names, b)}
		f.Cut = cutBetween(a, b)
	case shapeRing:
		order := shuffled(names, p.opts.Rand)
		f.Cut = ringCut(order)
		f.Note = "ring " + strings.Join(order, "-")
	case shapeBridge:
		a, b, bridge, cut := bridgeCut(shuffled(names, p.opts.Rand))
		f.Targets = []string{bridge}
		f.Groups = [][]string{inOrder(names, a), inOrder(names, b)}
		f.Cut = cut
		f.Note = "bridge " + bridge
	}
	return f, nil
}

func (p *partitionNemesis) Apply(ctx context.Context, c cluster.Cluster, f Fault) error {
	return applyCut(ctx, c, p.Name(), f)
}

// partitioner is c's Partitioner, or an error naming the nemesis that
// needs one.
func partitioner(name string, c cluster.Cluster) (cluster.Partitioner, error) {
	pt, ok := c.(cluster.Partitioner)
	if !ok {
		return nil, fmt.Errorf("nemesis %s needs a cluster that can cut links (cluster.Partitioner); %T cannot", name, c)
	}
	return pt, nil
}

// applyCut cuts f.Cut through c's Partitioner, for the nemesis called name.
func applyCut(ctx context.Context, c cluster.Cluster, name string, f Fault) error {
	pt, err := partitioner(name, c)
	if err != nil {
		return err
	}
	if err := pt.Partition(ctx, f.Cut); err != nil {
		return fmt.Errorf("%s: cut %s: %w", name, joinLinks(f.Cut), err)
	}
	return nil
}

func (p *partitionNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f, err := p.Plan(ctx, c)
	if err != nil {
		return f, err
	}
	return f, p.Apply(ctx, c, f)
}

func (p *partitionNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error {
	return healCut(ctx, c, p.Name())
}

// healCut restores every link of c, for the nemesis called name.
func healCut(ctx context.Context, c cluster.Cluster, name string) error {
	pt, err := partitioner(name, c)
	if err != nil {
		return err
	}
	if err := pt.Heal(ctx); err != nil {
		return fmt.Errorf("%s: heal partition: %w", name, err)
	}
	return nil
}

// latencyNemesis delays every link through cluster.LinkShaper.
type latencyNemesis struct{ opts Options }

var (
	_ Nemesis = (*latencyNemesis)(nil)
	_ Planner = (*latencyNemesis)(nil)
)

func (l *latencyNemesis) Name() string { return "latency" }

func (l *latencyNemesis) Check(c cluster.Cluster) error {
	if _, ok := c.(cluster.LinkShaper); !ok {
		return fmt.Errorf("nemesis latency needs a cluster that can delay links (cluster.LinkShaper); %T cannot", c)
	}
	return needNodes(l, c)
}

func (l *latencyNemesis) minNodes() (int, string) { return 2, "a link to delay" }

func (l *latencyNemesis) Plan(_ context.Context, c cluster.Cluster) (Fault, error) {
	if err := l.Check(c); err != nil {
		return Fault{}, err
	}
	return Fault{Nemesis: l.Name(), Shaped: allLinks(nodeNames(c)), Delay: l.opts.Delay, Jitter: l.opts.Jitter}, nil
}

func (l *latencyNemesis) Apply(ctx context.Context, c cluster.Cluster, f Fault) error {
	ls, ok := c.(cluster.LinkShaper)
	if !ok {
		return l.Check(c)
	}
	if err := ls.SetLatency(ctx, f.Shaped, f.Delay, f.Jitter); err != nil {
		return fmt.Errorf("latency: delay %d links by %v+[0,%v): %w", len(f.Shaped), f.Delay, f.Jitter, err)
	}
	return nil
}

func (l *latencyNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f, err := l.Plan(ctx, c)
	if err != nil {
		return f, err
	}
	return f, l.Apply(ctx, c, f)
}

// Heal removes the shaping from exactly the links the fault shaped.
func (l *latencyNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error {
	ls, ok := c.(cluster.LinkShaper)
	if !ok {
		return l.Check(c)
	}
	if err := ls.SetLatency(ctx, f.Shaped, 0, 0); err != nil {
		return fmt.Errorf("latency: remove delay from %d links: %w", len(f.Shaped), err)
	}
	return nil
}
