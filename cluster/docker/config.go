// Package docker runs a cluster as Docker containers, one per member, on a
// user-defined bridge network of its own: any server that takes etcd's
// flags (quorumd, real etcd) in an image built locally from a static binary
// (FROM scratch: nothing is ever pulled) or an image already present.
//
// Members are named n1..nN (container hostnames and network aliases), have
// fixed addresses on the run's network, listen on etcd's ports 2379 (client)
// and 2380 (peer), and keep their data on a named volume that survives
// kill, stop and restart. Clients reach them from the host at their
// container addresses (the harness must run on the Docker host).
//
// With StartConfig.Server.TLS the members serve https on both ports with
// certificates made for the run in <Dir>/certs (cluster.MakeTLS), copied
// into each container under /certs before it starts, and require client
// certificates from clients and peers; the Cluster is a cluster.TLSCluster.
// Partitions work below TLS, unchanged.
//
// Partitions are real packet loss: the Cluster (a cluster.Partitioner)
// writes nftables rules into each member's network namespace from the host,
// through /proc/<pid>/ns/net — so it works on paused members — in a table of
// its own ("quorum"), never touching Docker's rules. That needs CAP_NET_ADMIN
// and CAP_SYS_ADMIN (root); NetFaults says whether they are available.
// The Cluster does not implement cluster.LinkShaper: latency needs netem,
// and New reports once whether the kernel has it.
//
// Everything a run creates (containers, volumes, the network) carries the
// labels LabelRun and LabelOwner and is removed by Close, by Remove after a
// failure, and by Sweep in a later run if this process died first. Images
// built from binaries are kept (tagged by content hash) for later runs.
// Member logs are copied to <Dir>/logs/<name>.log.
package docker

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/moby/moby/client"

	"github.com/quorum-kv/quorum/cluster"
)

// Config configures a docker Cluster. Build one from DefaultConfig.
type Config struct {
	// StartConfig holds what every backend takes: the server, size,
	// directory (member logs are copied to Dir/logs), logger, member flags
	// and environment (set in every member's container). Server.Image is
	// the image the members run (already present, or the tag returned by
	// EnsureImage); its entrypoint must be the server, and the member's
	// flags are passed as the command. StopGrace is rounded down to whole
	// seconds by the engine, and must be at least 1s.
	cluster.StartConfig
	// RunID names and labels this run's containers, volumes and network
	// (lower-case letters, digits and '-'); it must be unique among the
	// runs sharing the engine.
	RunID string
	// ClusterToken is passed as --initial-cluster-token.
	ClusterToken string
	// StartTimeout bounds New's wait for a healthy cluster.
	StartTimeout time.Duration
	// Engine is the Docker engine (see NewEngine).
	Engine *Engine
}

// DefaultConfig returns a 3-member configuration; Server.Image, Dir, RunID
// and Engine must still be set.
func DefaultConfig() Config {
	return Config{
		StartConfig: cluster.StartConfig{
			Size:           3,
			MemberSettings: cluster.MemberSettings{StopGrace: 10 * time.Second},
			Logger:         slog.New(slog.DiscardHandler),
		},
		ClusterToken: "quorum",
		StartTimeout: 90 * time.Second,
	}
}

var runIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,40}$`)

// Validate reports the first bad field by name.
func (c Config) Validate() error {
	if c.Server.Image == "" {
		return errors.New("docker config: Image is empty (build one from a static binary with EnsureImage)")
	}
	if err := c.StartConfig.Validate(); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	switch {
	case c.Size > 200:
		return fmt.Errorf("docker config: Size %d is not in 1..200", c.Size)
	case !runIDPattern.MatchString(c.RunID):
		return fmt.Errorf("docker config: RunID %q: want 1-41 lower-case letters, digits or '-'", c.RunID)
	case c.ClusterToken == "":
		return errors.New("docker config: ClusterToken is empty")
	case c.StartTimeout <= 0:
		return fmt.Errorf("docker config: StartTimeout %v must be positive", c.StartTimeout)
	case c.StopGrace < time.Second:
		return fmt.Errorf("docker config: StopGrace %v must be at least 1s", c.StopGrace)
	case c.Engine == nil:
		return errors.New("docker config: Engine is nil (see NewEngine)")
	}
	return nil
}

// Labels put on everything a run creates.
const (
	// LabelRun holds the run id.
	LabelRun = "io.quorum-kv.run"
	// LabelOwner holds "<host>/<pid>/<process start time>" of the harness
	// process that created the resource; Sweep removes resources whose
	// owner on this host is gone.
	LabelOwner = "io.quorum-kv.owner"
	// LabelImage marks images built by EnsureImage; its value is the
	// server binary's base name.
	LabelImage = "io.quorum-kv.image"
)

// apiClient is the part of the moby client the package uses.
type apiClient = client.APIClient
