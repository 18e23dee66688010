package harness

import (
	"context"
	"log/slog"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/local"
)

// LocalBackend runs members as processes on loopback (cluster/local), with
// fault proxies on the peer links for partitions.
type LocalBackend struct {
	// Binary is the server: quorumd or any binary taking etcd's flags.
	Binary string
	// Configure, when set, adjusts the local cluster's configuration
	// (timing, extra flags) before it starts.
	Configure func(*local.Config)
}

var _ Backend = (*LocalBackend)(nil)

func (b *LocalBackend) Name() string       { return "local" }
func (b *LocalBackend) ServerName() string { return b.Binary }

func (b *LocalBackend) Start(ctx context.Context, runDir string, size int, lg *slog.Logger) (cluster.Cluster, error) {
	cfg := local.DefaultConfig()
	cfg.Binary = b.Binary
	cfg.Size = size
	cfg.Dir = runDir
	cfg.Logger = lg
	if b.Configure != nil {
		b.Configure(&cfg)
	}
	return local.New(ctx, cfg)
}
