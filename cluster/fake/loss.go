package fake

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/quorum-kv/quorum/cluster"
)

var _ cluster.LossShaper = (*Cluster)(nil)

// SetLoss records the loss probability on the links; 0 removes it.
func (c *Cluster) SetLoss(ctx context.Context, links []cluster.Link, p float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ls, err := cluster.ValidateLinks(c, links)
	if err == nil && (p < 0 || p >= 1) {
		err = fmt.Errorf("loss probability %v: want 0 <= p < 1", p)
	}
	if err == nil {
		err = c.refuse(ctx, "loss", "")
	}
	if err == nil {
		if c.loss == nil {
			c.loss = map[cluster.Link]float64{}
		}
		for _, l := range ls {
			if p == 0 {
				delete(c.loss, l)
			} else {
				c.loss[l] = p
			}
		}
	}
	return c.record(Call{Op: "loss", Links: slices.Clone(links), Loss: p, Err: err})
}

// Loss returns the loss probability set on each link.
func (c *Cluster) Loss() map[cluster.Link]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.loss)
}
