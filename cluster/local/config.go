// Package local runs a cluster as processes on this machine, on loopback,
// with no root and no Docker: one process (in its own process group) per
// member of any server that takes etcd's flags — quorumd or real etcd.
// Each member's advertised peer URL is a faultproxy listener owned by the
// Cluster, so links between members can be cut and delayed individually
// (Cluster implements cluster.Partitioner and cluster.LinkShaper).
//
// A run directory holds everything a run leaves behind:
//
//	<Dir>/data/<name>      member data directories
//	<Dir>/logs/<name>.log  member stdout+stderr, appended across restarts
package local

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// Config configures a local Cluster. Build one from DefaultConfig.
type Config struct {
	// Binary is the server executable (quorumd or etcd).
	Binary string
	// Size is the number of members, named n1..nSize.
	Size int
	// Dir is the run directory (created if missing).
	Dir string
	// Host is the loopback IP every listener binds to.
	Host string
	// ClusterToken is passed as --initial-cluster-token.
	ClusterToken string
	// HeartbeatInterval and ElectionTimeout are passed (in milliseconds) as
	// --heartbeat-interval and --election-timeout; 0 keeps the server default.
	HeartbeatInterval, ElectionTimeout time.Duration
	// SnapshotCount is passed as --snapshot-count; 0 keeps the server default.
	SnapshotCount int
	// ExtraArgs are appended to every member's command line.
	ExtraArgs []string
	// Env entries (KEY=VALUE) are appended to the harness's environment for
	// every member.
	Env []string
	// StartTimeout bounds New's wait for a healthy cluster.
	StartTimeout time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL.
	StopGrace time.Duration
	// Seed seeds the fault proxies' latency jitter.
	Seed uint64
	// Logger receives the cluster's events (never the members' output,
	// which goes to their log files).
	Logger *slog.Logger
}

// DefaultConfig returns a 3-member configuration on 127.0.0.1; Binary and
// Dir must still be set.
func DefaultConfig() Config {
	return Config{
		Size:         3,
		Host:         "127.0.0.1",
		ClusterToken: "quorum",
		StartTimeout: 60 * time.Second,
		StopGrace:    10 * time.Second,
		Seed:         1,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// Validate reports the first bad field by name.
func (c Config) Validate() error {
	switch {
	case c.Binary == "":
		return errors.New("local config: Binary is empty")
	case c.Size < 1:
		return fmt.Errorf("local config: Size %d < 1", c.Size)
	case c.Dir == "":
		return errors.New("local config: Dir is empty")
	case net.ParseIP(c.Host) == nil:
		return fmt.Errorf("local config: Host %q is not an IP address", c.Host)
	case c.ClusterToken == "":
		return errors.New("local config: ClusterToken is empty")
	case c.HeartbeatInterval < 0 || c.HeartbeatInterval%time.Millisecond != 0:
		return fmt.Errorf("local config: HeartbeatInterval %v is not a non-negative whole number of milliseconds", c.HeartbeatInterval)
	case c.ElectionTimeout < 0 || c.ElectionTimeout%time.Millisecond != 0:
		return fmt.Errorf("local config: ElectionTimeout %v is not a non-negative whole number of milliseconds", c.ElectionTimeout)
	case c.SnapshotCount < 0:
		return fmt.Errorf("local config: SnapshotCount %d < 0", c.SnapshotCount)
	case c.StartTimeout <= 0:
		return fmt.Errorf("local config: StartTimeout %v must be positive", c.StartTimeout)
	case c.StopGrace <= 0:
		return fmt.Errorf("local config: StopGrace %v must be positive", c.StopGrace)
	case c.Logger == nil:
		return errors.New("local config: Logger is nil")
	}
	fi, err := os.Stat(c.Binary)
	if err != nil {
		return fmt.Errorf("local config: Binary: %w", err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("local config: Binary %s is not an executable file", c.Binary)
	}
	return nil
}
