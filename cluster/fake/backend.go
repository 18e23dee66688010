package fake

import (
	"context"
	"sync"

	"github.com/quorum-kv/quorum/cluster"
)

// Backend is a cluster.Backend of fake clusters, for unit tests of code that
// starts clusters (the harness, the benchmark): each Start validates its
// StartConfig and returns New(cfg.Size), or the error queued with
// FailNextStart.
type Backend struct {
	mu       sync.Mutex
	clusters []*Cluster
	configs  []cluster.StartConfig
	failures []error
}

var _ cluster.Backend = (*Backend)(nil)

// Name is "fake".
func (b *Backend) Name() string { return "fake" }

// Start returns a new fake cluster of cfg.Size running nodes led by n1.
func (b *Backend) Start(ctx context.Context, cfg cluster.StartConfig) (cluster.Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.configs = append(b.configs, cfg)
	if len(b.failures) > 0 {
		err := b.failures[0]
		b.failures = b.failures[1:]
		return nil, err
	}
	c := New(cfg.Size)
	b.clusters = append(b.clusters, c)
	return c, nil
}

// FailNextStart makes the next Start return err. Several calls queue.
func (b *Backend) FailNextStart(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = append(b.failures, err)
}

// Clusters returns the clusters started so far, in order; the slice is
// the caller's.
func (b *Backend) Clusters() []*Cluster {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*Cluster(nil), b.clusters...)
}

// Configs returns the StartConfig of every Start call, failed ones
// included, in order; the slice is the caller's.
func (b *Backend) Configs() []cluster.StartConfig {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]cluster.StartConfig(nil), b.configs...)
}
