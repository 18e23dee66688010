package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/docker"
)

// DockerBackend runs members as containers on a Docker network of the run's
// own (cluster/docker), with partitions as nftables drops inside each
// member's network namespace. Nothing is ever pulled: the server image is
// Image, which must be present, or is built FROM scratch around Binary.
// Every container, volume and network of a run is removed when the cluster
// closes, and leftovers of earlier harness processes that died are swept
// when a cluster starts.
type DockerBackend struct {
	// Binary is a static server executable (quorumd or any binary taking
	// etcd's flags) to put in a locally built image. Ignored if Image is set.
	Binary string
	// Image is a server image already present in the engine.
	Image string
	// Configure, when set, adjusts the docker cluster's configuration
	// (timing, extra flags) before it starts.
	Configure func(*docker.Config)
	// Engine, when set, is the engine to use; otherwise Start connects on
	// first use and keeps the connection for later runs.
	Engine *docker.Engine

	mu sync.Mutex
}

var _ Backend = (*DockerBackend)(nil)

func (b *DockerBackend) Name() string { return "docker" }

// ServerName is the image if one was given, else the binary.
func (b *DockerBackend) ServerName() string {
	if b.Image != "" {
		return b.Image
	}
	return b.Binary
}

// Start connects to the engine, sweeps leftovers of dead runs, makes sure
// the image exists, and starts a size-member cluster whose member logs are
// copied under runDir/logs. When partitions cannot be applied (no root),
// the returned cluster does not implement cluster.Partitioner, so partition
// nemeses are refused before the run; the reason is logged.
func (b *DockerBackend) Start(ctx context.Context, runDir string, size int, lg *slog.Logger) (cluster.Cluster, error) {
	eng, err := b.engine(ctx, lg)
	if err != nil {
		return nil, err
	}
	if removed, err := eng.Sweep(ctx); err != nil {
		lg.Warn("sweeping leftovers of earlier runs", "err", err)
	} else if len(removed) > 0 {
		lg.Warn("removed leftovers of earlier runs whose harness died", "runs", removed)
	}
	img := b.Image
	if img == "" {
		if b.Binary == "" {
			return nil, errors.New("docker backend: neither Image nor Binary is set")
		}
		if img, err = eng.EnsureImage(ctx, b.Binary); err != nil {
			return nil, err
		}
	}
	cfg := docker.DefaultConfig()
	cfg.Image = img
	cfg.Size = size
	cfg.Dir = runDir
	cfg.Engine = eng
	cfg.Logger = lg
	cfg.RunID = "r" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(os.Getpid())
	if b.Configure != nil {
		b.Configure(&cfg)
	}
	c, err := docker.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.NetFaults(); err != nil {
		lg.Warn("docker: partition nemeses will be refused", "reason", err)
		return withoutPartitions{c}, nil
	}
	return c, nil
}

func (b *DockerBackend) engine(ctx context.Context, lg *slog.Logger) (*docker.Engine, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Engine == nil {
		eng, err := docker.NewEngine(ctx, lg, nil)
		if err != nil {
			return nil, fmt.Errorf("docker backend: %w", err)
		}
		b.Engine = eng
	}
	return b.Engine, nil
}

// withoutPartitions hides the docker cluster's Partitioner when it cannot
// apply rules, so nemesis.Check refuses partition faults up front.
type withoutPartitions struct{ cluster.Cluster }
