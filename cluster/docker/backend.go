package docker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// Backend starts docker clusters: cluster.Backend for members in
// containers on a Docker network of the run's own, with partitions as
// nftables drops inside each member's network namespace. Nothing is ever
// pulled: a cluster runs StartConfig.Server.Image, which must be present,
// or an image built FROM scratch around Server.Binary (static). Every
// container, volume and network of a run is removed when the cluster
// closes, and leftovers of earlier harness processes that died are swept
// when a cluster starts.
type Backend struct {
	// Engine, when set, is the engine to use; otherwise Start connects on
	// first use and keeps the connection for later clusters.
	Engine *Engine
	// StartTimeout bounds the wait for a healthy cluster (0: 90s).
	StartTimeout time.Duration

	mu     sync.Mutex
	runIDs []string
}

var _ cluster.Backend = (*Backend)(nil)

// Name is "docker".
func (b *Backend) Name() string { return "docker" }

// Start connects to the engine, sweeps leftovers of dead runs, makes sure
// the image exists (building it from sc.Server.Binary when sc.Server.Image
// is empty), and starts a cluster whose member logs are copied under
// sc.Dir/logs. When partitions cannot be applied (no root), the returned
// cluster does not implement cluster.Partitioner, so partition nemeses are
// refused before the run; the reason is logged.
func (b *Backend) Start(ctx context.Context, sc cluster.StartConfig) (cluster.Cluster, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("docker backend: %w", err)
	}
	if sc.DiskFaults {
		return nil, errors.New("docker backend: cannot lose members' unsynced writes (the *-lose-unfsynced nemeses): that needs each container's data directory on a FUSE mount (cluster/lazyfs) in the container, with /dev/fuse and SYS_ADMIN; use --backend local")
	}
	eng, err := b.engine(ctx, sc)
	if err != nil {
		return nil, err
	}
	lg := sc.Logger
	if removed, err := eng.Sweep(ctx); err != nil {
		lg.Warn("sweeping leftovers of earlier runs", "err", err)
	} else if len(removed) > 0 {
		lg.Warn("removed leftovers of earlier runs whose harness died", "runs", removed)
	}
	if sc.Server.Image == "" {
		if sc.Server.Image, err = eng.EnsureImage(ctx, sc.Server.Binary); err != nil {
			return nil, err
		}
	}
	cfg := DefaultConfig()
	if sc.StopGrace == 0 {
		sc.StopGrace = cfg.StopGrace
	}
	cfg.StartConfig = sc
	cfg.Engine = eng
	cfg.RunID = "r" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(os.Getpid())
	if b.StartTimeout > 0 {
		cfg.StartTimeout = b.StartTimeout
	}
	c, err := b.newCluster(ctx, cfg)
	if errors.Is(err, errEngineStart) && ctx.Err() == nil {
		// New removed everything of the failed attempt; one more, afresh.
		lg.Warn("docker: the engine failed to start a member's container; creating the cluster again", "err", err)
		cfg.RunID += "-2"
		c, err = b.newCluster(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	if err := c.NetFaults(); err != nil {
		lg.Warn("docker: partition nemeses will be refused", "reason", err)
		return withoutPartitions{Cluster: c, tls: c.ClientTLS()}, nil
	}
	return c, nil
}

// newCluster records cfg's run id (RunIDs) and starts its cluster.
func (b *Backend) newCluster(ctx context.Context, cfg Config) (*Cluster, error) {
	b.mu.Lock()
	b.runIDs = append(b.runIDs, cfg.RunID)
	b.mu.Unlock()
	return New(ctx, cfg)
}

// RunIDs are the run ids (labels and names of everything a cluster
// creates) of the clusters Start began, in order, failed ones included;
// the slice is the caller's.
func (b *Backend) RunIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.runIDs...)
}

func (b *Backend) engine(ctx context.Context, sc cluster.StartConfig) (*Engine, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Engine == nil {
		eng, err := NewEngine(ctx, sc.Logger, nil)
		if err != nil {
			return nil, fmt.Errorf("docker backend: %w", err)
		}
		b.Engine = eng
	}
	return b.Engine, nil
}

// withoutPartitions hides the cluster's Partitioner when it cannot apply
// rules, so nemesis.Check refuses partition faults up front: only the
// cluster.Cluster methods are promoted (nodes keep theirs), and ClientTLS.
type withoutPartitions struct {
	cluster.Cluster
	tls *tls.Config
}

// ClientTLS is the hidden cluster's (cluster.TLSCluster); nil without TLS.
func (w withoutPartitions) ClientTLS() *tls.Config { return w.tls }
