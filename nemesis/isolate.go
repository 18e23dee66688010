package nemesis

import (
	"context"

	"github.com/quorum-kv/quorum/cluster"
)

// isolateNemesis cuts each of several members, the leader among them, off
// from every other member — each alone, as if it had failed, but still
// running: isolate-minority takes (n-1)/2 members (the cluster must stay
// writable), isolate-majority n/2+1 (it must not). Aiming at the leader
// makes every fault cost an election, the worst case for availability. The
// other targets are chosen at random.
type isolateNemesis struct {
	majority bool
	opts     Options
}

var (
	_ Nemesis = (*isolateNemesis)(nil)
	_ Planner = (*isolateNemesis)(nil)
)

func (p *isolateNemesis) Name() string {
	if p.majority {
		return "isolate-majority"
	}
	return "isolate-minority"
}

func (p *isolateNemesis) minNodes() (int, string) {
	if p.majority {
		return 2, "someone to be isolated from"
	}
	return 3, "a minority of fewer than 3 nodes is empty"
}

func (p *isolateNemesis) Check(c cluster.Cluster) error {
	if _, err := partitioner(p.Name(), c); err != nil {
		return err
	}
	return needNodes(p, c)
}

func (p *isolateNemesis) Plan(ctx context.Context, c cluster.Cluster) (Fault, error) {
	if err := p.Check(c); err != nil {
		return Fault{}, err
	}
	names := nodeNames(c)
	k := minority(len(names))
	if p.majority {
		k = majority(len(names))
	}
	leader, note := leaderOrRandom(ctx, c, names, p.opts.Rand, p.opts.LeaderTimeout)
	targets := inOrder(names, append(pick(without(names, leader), k-1, p.opts.Rand), leader))
	var cut []cluster.Link
	for _, t := range targets {
		cut = append(cut, cutBetween([]string{t}, without(names, t))...)
	}
	return Fault{Nemesis: p.Name(), Targets: targets, Cut: cluster.SortLinks(cut), Note: note}, nil
}

func (p *isolateNemesis) Apply(ctx context.Context, c cluster.Cluster, f Fault) error {
	return applyCut(ctx, c, p.Name(), f)
}

func (p *isolateNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f, err := p.Plan(ctx, c)
	if err != nil {
		return f, err
	}
	return f, p.Apply(ctx, c, f)
}

func (p *isolateNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error {
	return healCut(ctx, c, p.Name())
}
