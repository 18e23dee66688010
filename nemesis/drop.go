package nemesis

import (
	"context"
	"fmt"

	"github.com/quorum-kv/quorum/cluster"
)

// dropNemesis makes every link lossy through cluster.LossShaper: each chunk
// of traffic is lost with probability Options.Loss and delivered after a
// retransmission timeout, as packet loss under TCP looks to the members
// (Jepsen's probabilistic drop, on a stream proxy).
type dropNemesis struct{ opts Options }

var (
	_ Nemesis = (*dropNemesis)(nil)
	_ Planner = (*dropNemesis)(nil)
)

func (d *dropNemesis) Name() string { return "drop" }

func (d *dropNemesis) Check(c cluster.Cluster) error {
	if _, ok := c.(cluster.LossShaper); !ok {
		return fmt.Errorf("nemesis drop needs a cluster that can lose traffic on links (cluster.LossShaper, the local backend's fault proxies); %T cannot", c)
	}
	return needNodes(d, c)
}

func (d *dropNemesis) minNodes() (int, string) { return 2, "a link to make lossy" }

func (d *dropNemesis) Plan(_ context.Context, c cluster.Cluster) (Fault, error) {
	if err := d.Check(c); err != nil {
		return Fault{}, err
	}
	return Fault{Nemesis: d.Name(), Shaped: allLinks(nodeNames(c)), Loss: d.opts.Loss}, nil
}

func (d *dropNemesis) Apply(ctx context.Context, c cluster.Cluster, f Fault) error {
	ls, ok := c.(cluster.LossShaper)
	if !ok {
		return d.Check(c)
	}
	if err := ls.SetLoss(ctx, f.Shaped, f.Loss); err != nil {
		return fmt.Errorf("drop: lose %g of the traffic on %d links: %w", f.Loss, len(f.Shaped), err)
	}
	return nil
}

func (d *dropNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f, err := d.Plan(ctx, c)
	if err != nil {
		return f, err
	}
	return f, d.Apply(ctx, c, f)
}

// Heal removes the loss from exactly the links the fault made lossy.
func (d *dropNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error {
	ls, ok := c.(cluster.LossShaper)
	if !ok {
		return d.Check(c)
	}
	if err := ls.SetLoss(ctx, f.Shaped, 0); err != nil {
		return fmt.Errorf("drop: remove the loss from %d links: %w", len(f.Shaped), err)
	}
	return nil
}
