package nemesis

import (
	"context"
	"errors"
	"fmt"

	"github.com/quorum-kv/quorum/cluster"
)

// target says which nodes a process or isolation fault acts on.
type target int

const (
	targetOne      target = iota // one random member
	targetLeader                 // the leader, or a random member without one
	targetMinority               // (n-1)/2 random members
	targetMajority               // n/2+1 random members
	targetAll                    // every member
)

var targetSuffix = map[target]string{
	targetOne:      "one",
	targetLeader:   "leader",
	targetMinority: "minority",
	targetMajority: "majority",
	targetAll:      "all",
}

// chooseTargets picks the nodes for t among names (node order).
func chooseTargets(ctx context.Context, c cluster.Cluster, names []string, t target, o Options) (targets []string, note string) {
	switch t {
	case targetLeader:
		l, note := leaderOrRandom(ctx, c, names, o.Rand, o.LeaderTimeout)
		return []string{l}, note
	case targetMinority:
		return pick(names, minority(len(names)), o.Rand), ""
	case targetMajority:
		return pick(names, majority(len(names)), o.Rand), ""
	case targetAll:
		return append([]string(nil), names...), ""
	}
	return pick(names, 1, o.Rand), ""
}

// processOp is what a process fault does to each target and how it is undone.
type processOp struct {
	verb   string // "kill" or "pause"
	inject func(context.Context, cluster.Node) error
	heal   func(context.Context, cluster.Node) error
	undo   string // name of the heal operation, for errors
}

var (
	killOp = processOp{
		verb:   "kill",
		inject: func(ctx context.Context, n cluster.Node) error { return n.Kill(ctx) },
		heal:   func(ctx context.Context, n cluster.Node) error { return n.Start(ctx) },
		undo:   "start",
	}
	pauseOp = processOp{
		verb:   "pause",
		inject: func(ctx context.Context, n cluster.Node) error { return n.Pause(ctx) },
		heal:   func(ctx context.Context, n cluster.Node) error { return n.Resume(ctx) },
		undo:   "resume",
	}
)

// processNemesis kills (SIGKILL; healed by Start on the same data) or
// pauses (SIGSTOP; healed by Resume) its targets.
type processNemesis struct {
	op     processOp
	target target
	opts   Options
}

var (
	_ Nemesis = (*processNemesis)(nil)
	_ Planner = (*processNemesis)(nil)
)

func (p *processNemesis) Name() string { return p.op.verb + "-" + targetSuffix[p.target] }

func (p *processNemesis) Check(c cluster.Cluster) error { return needNodes(p, c) }

func (p *processNemesis) minNodes() (int, string) {
	if p.target == targetMinority {
		return 3, "a minority of fewer than 3 nodes is empty"
	}
	return 1, "something to " + p.op.verb
}

func (p *processNemesis) Plan(ctx context.Context, c cluster.Cluster) (Fault, error) {
	if err := p.Check(c); err != nil {
		return Fault{}, err
	}
	targets, note := chooseTargets(ctx, c, nodeNames(c), p.target, p.opts)
	return Fault{Nemesis: p.Name(), Targets: targets, Down: targets, Note: note}, nil
}

// Apply acts on the targets in order and stops at the first failure.
func (p *processNemesis) Apply(ctx context.Context, c cluster.Cluster, f Fault) error {
	for _, name := range f.Targets {
		n, ok := c.Node(name)
		if !ok {
			return fmt.Errorf("%s %s: %w", p.op.verb, name, cluster.ErrUnknownNode)
		}
		if err := p.op.inject(ctx, n); err != nil {
			return fmt.Errorf("%s %s: %w", p.op.verb, name, err)
		}
	}
	return nil
}

func (p *processNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f, err := p.Plan(ctx, c)
	if err != nil {
		return f, err
	}
	return f, p.Apply(ctx, c, f)
}

// Heal starts (kill) or resumes (pause) every target. Both are no-ops on a
// running node, so healing targets that Apply did not reach is harmless.
func (p *processNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error {
	var errs []error
	for _, name := range f.Targets {
		n, ok := c.Node(name)
		if !ok {
			errs = append(errs, fmt.Errorf("%s %s: %w", p.op.undo, name, cluster.ErrUnknownNode))
			continue
		}
		if err := p.op.heal(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", p.op.undo, name, err))
		}
	}
	return errors.Join(errs...)
}
