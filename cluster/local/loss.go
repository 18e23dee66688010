package local

import (
	"context"
	"fmt"

	"github.com/quorum-kv/quorum/cluster"
)

var _ cluster.LossShaper = (*Cluster)(nil)

// SetLoss makes the fault proxies lose traffic on the given links (see
// cluster.LossShaper).
func (c *Cluster) SetLoss(ctx context.Context, links []cluster.Link, p float64) error {
	ls, err := cluster.ValidateLinks(c, links)
	if err != nil {
		return fmt.Errorf("set loss: %w", err)
	}
	return c.net.SetLoss(ls, p)
}
