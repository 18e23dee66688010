// Package local runs a cluster as processes on this machine, on loopback,
// with no root and no Docker: one process (in its own process group) per
// member of any server that takes etcd's flags — quorumd or real etcd.
// Each member's advertised peer URL is a faultproxy listener owned by the
// Cluster, so links between members can be cut and delayed individually
// (Cluster implements cluster.Partitioner and cluster.LinkShaper).
//
// A run directory holds everything a run leaves behind (rundir's layout):
//
//	<Dir>/data/<name>      member data directories
//	<Dir>/logs/<name>.log  member stdout+stderr, appended across restarts
//
// Backend starts clusters through the cluster.Backend seam.
package local

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// Config configures a local Cluster. Build one from DefaultConfig.
type Config struct {
	// StartConfig holds what every backend takes: the server (a Binary;
	// Image is refused), size, directory, seed, logger, member flags and
	// environment. Its Seed seeds the member ports and the fault proxies'
	// latency jitter.
	cluster.StartConfig
	// Host is the loopback IP every listener binds to.
	Host string
	// ClusterToken is passed as --initial-cluster-token.
	ClusterToken string
	// StartTimeout bounds New's wait for a healthy cluster.
	StartTimeout time.Duration
}

// DefaultConfig returns a 3-member configuration on 127.0.0.1; Server.Binary
// and Dir must still be set.
func DefaultConfig() Config {
	return Config{
		StartConfig: cluster.StartConfig{
			Size:           3,
			MemberSettings: cluster.MemberSettings{StopGrace: 10 * time.Second},
			Seed:           1,
			Logger:         slog.New(slog.DiscardHandler),
		},
		Host:         "127.0.0.1",
		ClusterToken: "quorum",
		StartTimeout: 60 * time.Second,
	}
}

// Validate reports the first bad field by name.
func (c Config) Validate() error {
	if c.Server.Image != "" {
		return fmt.Errorf("local config: Server.Image %q: the local backend runs binaries (an image needs the docker backend)", c.Server.Image)
	}
	if c.Server.Binary == "" {
		return errors.New("local config: Binary is empty")
	}
	if err := c.StartConfig.Validate(); err != nil {
		return fmt.Errorf("local config: %w", err)
	}
	switch {
	case net.ParseIP(c.Host) == nil:
		return fmt.Errorf("local config: Host %q is not an IP address", c.Host)
	case c.ClusterToken == "":
		return errors.New("local config: ClusterToken is empty")
	case c.StartTimeout <= 0:
		return fmt.Errorf("local config: StartTimeout %v must be positive", c.StartTimeout)
	case c.StopGrace <= 0:
		return fmt.Errorf("local config: StopGrace %v must be positive", c.StopGrace)
	}
	fi, err := os.Stat(c.Server.Binary)
	if err != nil {
		return fmt.Errorf("local config: Binary: %w", err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("local config: Binary %s is not an executable file", c.Server.Binary)
	}
	return nil
}
