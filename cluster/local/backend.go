package local

import (
	"context"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// Backend starts local clusters: cluster.Backend for processes on loopback.
// The zero value uses DefaultConfig's host, token and timeouts.
type Backend struct {
	// Host is the loopback IP the members bind ("" : 127.0.0.1).
	Host string
	// StartTimeout bounds the wait for a healthy cluster (0: 60s).
	StartTimeout time.Duration
}

var _ cluster.Backend = (*Backend)(nil)

// Name is "local".
func (b *Backend) Name() string { return "local" }

// Start starts a cluster with New; sc.Server must be a Binary.
func (b *Backend) Start(ctx context.Context, sc cluster.StartConfig) (cluster.Cluster, error) {
	cfg := DefaultConfig()
	if sc.StopGrace == 0 {
		sc.StopGrace = cfg.StopGrace
	}
	cfg.StartConfig = sc
	if b.Host != "" {
		cfg.Host = b.Host
	}
	if b.StartTimeout > 0 {
		cfg.StartTimeout = b.StartTimeout
	}
	return New(ctx, cfg)
}
