package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Backend starts clusters of some kind: processes on loopback
// (cluster/local), containers (cluster/docker), in-memory twins
// (cluster/fake). The harness and the benchmark start every cluster through
// it, so each runs on every backend with the same settings.
//
// A Backend may be used for several clusters, one after another or at
// once; each Start is independent.
type Backend interface {
	// Name is the backend's name in results and reports ("local",
	// "docker", "fake").
	Name() string
	// Start starts a cfg.Size-member cluster of cfg.Server whose logs (and
	// data, where the backend keeps it on the host) live under cfg.Dir, and
	// returns once every member answers and they agree on a leader. On
	// error nothing of the cluster is left running.
	Start(ctx context.Context, cfg StartConfig) (Cluster, error)
}

// Server is the server a cluster runs: a binary that takes etcd's flags
// (quorumd, etcd), or for container backends an image whose entrypoint is
// one.
type Server struct {
	// Label names the server in results and reports ("quorumd", "etcd").
	Label string `json:"label"`
	// Binary is the server executable. Container backends put it in an
	// image of their own making (it must then be static).
	Binary string `json:"binary,omitempty"`
	// Image is a container image already present, used instead of Binary
	// by container backends; process backends refuse it.
	Image string `json:"image,omitempty"`
	// TLS runs the cluster with TLS on its client and peer links: the
	// backend makes a fresh CA and certificates in the cluster's
	// Dir/certs (MakeTLS), starts the members with https URLs and etcd's
	// certificate flags (TLSFiles.TLSFlags), and the cluster implements
	// TLSCluster for its clients.
	TLS bool `json:"tls,omitempty"`
}

// String is the server as a person would name it: the image, else the
// binary.
func (s Server) String() string {
	if s.Image != "" {
		return s.Image
	}
	return s.Binary
}

// StartConfig is everything a Backend needs to start one cluster.
type StartConfig struct {
	// Server is what the members run.
	Server Server
	// Size is the number of members, named n1..nSize.
	Size int
	// Dir is the cluster's directory (created if missing): member logs in
	// Dir/logs, data in Dir/data where the backend keeps it on the host
	// (package rundir's layout).
	Dir string
	// Seed seeds every random choice the backend makes (fault proxies'
	// latency jitter, member ports), so a run's printed seed replays it.
	Seed uint64
	// Logger receives the backend's events (never the members' output,
	// which goes to their log files).
	Logger *slog.Logger
	// MemberSettings are the members' flags, environment and stop grace.
	MemberSettings
	// DiskFaults puts the members' data on a file system that keeps what
	// they write in memory until they fsync it (cluster/lazyfs), so that
	// the cluster implements DiskFaulter. The local backend does it (it
	// needs FUSE: /dev/fuse and root); others refuse.
	DiskFaults bool
}

// MemberSettings are the settings of every member of a cluster that the
// harness and the benchmark may choose, whatever the backend.
type MemberSettings struct {
	// HeartbeatInterval and ElectionTimeout are passed (in milliseconds)
	// as --heartbeat-interval and --election-timeout; 0 keeps the server's
	// default.
	HeartbeatInterval, ElectionTimeout time.Duration
	// SnapshotCount is passed as --snapshot-count; 0 keeps the default.
	SnapshotCount int
	// ExtraArgs are appended to every member's command line (so they
	// override the flags above).
	ExtraArgs []string
	// Env entries (KEY=VALUE) are added to every member's environment.
	Env []string
	// StopGrace is how long a member's Stop waits after SIGTERM before
	// SIGKILL; 0 keeps the backend's default.
	StopGrace time.Duration
}

// Validate names the first bad field.
func (c StartConfig) Validate() error {
	switch {
	case c.Server.Binary == "" && c.Server.Image == "":
		return errors.New("start config: Server has neither a Binary nor an Image")
	case c.Size < 1:
		return fmt.Errorf("start config: Size %d < 1", c.Size)
	case c.Dir == "":
		return errors.New("start config: Dir is empty")
	case c.Logger == nil:
		return errors.New("start config: Logger is nil")
	case c.HeartbeatInterval < 0 || c.HeartbeatInterval%time.Millisecond != 0:
		return fmt.Errorf("start config: HeartbeatInterval %v is not a non-negative whole number of milliseconds", c.HeartbeatInterval)
	case c.ElectionTimeout < 0 || c.ElectionTimeout%time.Millisecond != 0:
		return fmt.Errorf("start config: ElectionTimeout %v is not a non-negative whole number of milliseconds", c.ElectionTimeout)
	case c.SnapshotCount < 0:
		return fmt.Errorf("start config: SnapshotCount %d < 0", c.SnapshotCount)
	case c.StopGrace < 0:
		return fmt.Errorf("start config: StopGrace %v < 0", c.StopGrace)
	}
	return nil
}

// ownedFlags are the etcd flags a backend sets itself, or that would make
// its picture of the members wrong (where data lives, which URLs serve,
// who is in the cluster, TLS), with what to do instead: CheckServerArgs
// refuses them.
var ownedFlags = map[string]string{
	"name": "the backend names the members", "data-dir": "the backend places the data", "wal-dir": "the backend places the data (nemeses and disk faults act on the data dir)",
	"listen-client-urls": "the backend picks the ports", "advertise-client-urls": "the backend picks the ports",
	"listen-peer-urls": "the backend picks the ports", "initial-advertise-peer-urls": "the backend picks the ports",
	"listen-client-http-urls": "the backend picks the ports", "listen-metrics-urls": "the backend picks the ports",
	"initial-cluster": "the backend builds the cluster", "initial-cluster-token": "the backend builds the cluster",
	"initial-cluster-state": "the backend builds the cluster", "discovery": "the backend builds the cluster",
	"discovery-srv": "the backend builds the cluster", "discovery-endpoints": "the backend builds the cluster",
	"config-file":        "etcd then ignores every other flag, the backend's included",
	"heartbeat-interval": "use quorum's --heartbeat-interval, which the harness also reads", "election-timeout": "use quorum's --election-timeout, which the harness also reads",
	"snapshot-count": "use quorum's --snapshot-count",
	"cert-file":      "use quorum's --tls", "key-file": "use quorum's --tls", "client-cert-auth": "use quorum's --tls",
	"trusted-ca-file": "use quorum's --tls", "auto-tls": "use quorum's --tls", "peer-cert-file": "use quorum's --tls",
	"peer-key-file": "use quorum's --tls", "peer-client-cert-auth": "use quorum's --tls", "peer-trusted-ca-file": "use quorum's --tls",
	"peer-auto-tls": "use quorum's --tls",
}

// CheckServerArgs checks arguments a user asks to append to every member's
// command line (MemberSettings.ExtraArgs): flags (--flag, --flag=value, or
// --flag then its value as the next argument), none of them one the
// backend owns (ownedFlags). The error names the argument and what to do
// instead.
func CheckServerArgs(args []string) error {
	valueMayFollow := false
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			if !valueMayFollow {
				return fmt.Errorf("server argument %q is not a flag, nor the value of one: want --flag=value, --flag, or --flag then value", a)
			}
			valueMayFollow = false
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "" {
			return fmt.Errorf("server argument %q is not a flag: want --flag=value, --flag, or --flag then value", a)
		}
		if why := ownedFlags[name]; why != "" {
			return fmt.Errorf("server argument %q: --%s cannot be passed through: %s", a, name, why)
		}
		valueMayFollow = !hasValue
	}
	return nil
}

// ProcessNode is implemented by nodes whose server is a process on this
// host (local processes, and containers, whose process the host sees), so
// that a benchmark can read its CPU time and memory from /proc.
type ProcessNode interface {
	Node
	// PID is the server process's ID on this host, 0 when not running.
	PID() int
}
