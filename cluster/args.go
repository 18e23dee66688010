package cluster

import (
	"strconv"
	"time"
)

// MemberFlags are the etcd flags a backend starts a member of a new cluster
// with; every backend builds its command line here.
type MemberFlags struct {
	Name, DataDir                       string
	ListenClientURL, AdvertiseClientURL string
	ListenPeerURL, AdvertisePeerURL     string
	// InitialCluster is etcd's name=peerURL,... list.
	InitialCluster, ClusterToken string
	// InitialClusterState is "new" (the default when empty) for a member
	// of a cluster being created, "existing" for one added to a running
	// cluster (see Joiner).
	InitialClusterState string
	// HeartbeatInterval, ElectionTimeout and SnapshotCount are passed when
	// positive; 0 keeps the server's default.
	HeartbeatInterval, ElectionTimeout time.Duration
	SnapshotCount                      int
	// TLS flags (TLSFiles.TLSFlags) come after the flags above.
	TLS []string
	// Extra flags are appended last, so they override the ones above.
	Extra []string
}

// Args returns the command line (without the program name).
func (f MemberFlags) Args() []string {
	state := f.InitialClusterState
	if state == "" {
		state = "new"
	}
	args := []string{
		"--name", f.Name,
		"--data-dir", f.DataDir,
		"--listen-client-urls", f.ListenClientURL,
		"--advertise-client-urls", f.AdvertiseClientURL,
		"--listen-peer-urls", f.ListenPeerURL,
		"--initial-advertise-peer-urls", f.AdvertisePeerURL,
		"--initial-cluster", f.InitialCluster,
		"--initial-cluster-token", f.ClusterToken,
		"--initial-cluster-state", state,
	}
	if f.HeartbeatInterval > 0 {
		args = append(args, "--heartbeat-interval", strconv.FormatInt(f.HeartbeatInterval.Milliseconds(), 10))
	}
	if f.ElectionTimeout > 0 {
		args = append(args, "--election-timeout", strconv.FormatInt(f.ElectionTimeout.Milliseconds(), 10))
	}
	if f.SnapshotCount > 0 {
		args = append(args, "--snapshot-count", strconv.Itoa(f.SnapshotCount))
	}
	args = append(args, f.TLS...)
	return append(args, f.Extra...)
}

// Flags returns the member flags that come from the start config: timing,
// snapshot count and the extra arguments. The backend fills in each
// member's name, directory, URLs, the initial cluster and the token.
func (c StartConfig) Flags() MemberFlags {
	return MemberFlags{
		HeartbeatInterval: c.HeartbeatInterval,
		ElectionTimeout:   c.ElectionTimeout,
		SnapshotCount:     c.SnapshotCount,
		Extra:             c.ExtraArgs,
	}
}
