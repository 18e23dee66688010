package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// Version is quorumd's own version; APIVersion the etcd API it implements.
const (
	Version    = "0.1.0"
	APIVersion = "3.6"
	// ReportedServerVersion is what Maintenance.Status and /version report as
	// the server version, so that clients gating features on etcd's version
	// treat quorumd as a 3.6 server: the etcd release whose flags, config
	// file and API quorumd follows, as etcd reports its own.
	// Equal to go.etcd.io/etcd/api/v3/version.Version of the etcd module in
	// go.mod (cmd/quorumd's TestVersionIsEtcds checks).
	ReportedServerVersion = "3.6.16"
	// ReportedClusterVersion is /version's etcdcluster, as etcd 3.6 reports
	// it (major.minor.0).
	ReportedClusterVersion = "3.6.0"
	// ReportedStorageVersion is /version's storage: the backend schema
	// version etcd 3.6 reports (its schema.V3_6), which quorumd's snapshots
	// follow (server/etcdbolt).
	ReportedStorageVersion = "3.6.0"
)

// Defaults, as etcd's.
const (
	DefaultName                   = "default"
	DefaultListenClientURL        = "http://localhost:2379"
	DefaultListenPeerURL          = "http://localhost:2380"
	DefaultInitialClusterToken    = "etcd-cluster"
	DefaultHeartbeatInterval      = 100 * time.Millisecond
	DefaultElectionTimeout        = 1000 * time.Millisecond
	DefaultSnapshotCount          = 10000
	DefaultSnapshotCatchUpEntries = 5000
	DefaultMaxRequestBytes        = 1.5 * 1024 * 1024
	DefaultMaxTxnOps              = 128
	DefaultQuotaBackendBytes      = 2 * 1024 * 1024 * 1024
	DefaultGRPCKeepAliveMinTime   = 5 * time.Second
	DefaultGRPCKeepAliveInterval  = 2 * time.Hour
	DefaultGRPCKeepAliveTimeout   = 20 * time.Second
	// DefaultAuthToken, DefaultAuthTokenTTL and DefaultBcryptCost are
	// etcd's --auth-token, --auth-token-ttl and --bcrypt-cost.
	DefaultAuthToken    = "simple"
	DefaultAuthTokenTTL = 300 * time.Second
	DefaultBcryptCost   = 10
	// DefaultWatchProgressNotifyInterval is etcd's
	// --watch-progress-notify-interval.
	DefaultWatchProgressNotifyInterval = 10 * time.Minute
	// DefaultMaxLearners is etcd's --max-learners.
	DefaultMaxLearners = 1
	// grpcOverheadBytes is what etcd adds to --max-request-bytes for the gRPC
	// receive limit, so that a request slightly over the limit gets etcd's
	// "request is too large" rather than a transport error.
	grpcOverheadBytes = 512 * 1024
)

// Config is one member's configuration. Flags map onto it in cmd/quorumd
// only; DefaultConfig gives etcd's defaults and Validate names a bad field.
type Config struct {
	Name    string
	DataDir string

	ListenClientURLs []url.URL
	// ListenClientHTTPURLs are etcd's --listen-client-http-urls: client
	// listeners for HTTP alone (the health and metrics endpoints, the
	// grpc-gateway). When there are any, the ListenClientURLs serve gRPC
	// alone; an address may not be in both.
	ListenClientHTTPURLs     []url.URL
	AdvertiseClientURLs      []url.URL
	ListenPeerURLs           []url.URL
	InitialAdvertisePeerURLs []url.URL

	// InitialCluster maps member names to their advertised peer URLs, as in
	// etcd's --initial-cluster. Used only when the data dir is empty.
	InitialCluster      map[string][]url.URL
	InitialClusterToken string
	// Tracing, when set, traces every gRPC request the member serves
	// (etcd's --enable-distributed-tracing).
	Tracing *TracingConfig
	// DisableInitialElectionTickAdvance is etcd's
	// --initial-election-tick-advance=false (ticks.go): a member of a
	// multi-member cluster then waits out a whole election timeout when it
	// starts.
	DisableInitialElectionTickAdvance bool
	// WarningApplyDuration is etcd's --warning-apply-duration: an applied
	// request or a read-only range or txn that takes longer is logged
	// ("apply request took too long"); 0: etcd's 100ms.
	WarningApplyDuration time.Duration
	// WarningUnaryRequestDuration is etcd's
	// --warning-unary-request-duration: a unary RPC that takes longer is
	// logged ("request stats"); 0: etcd's 300ms.
	WarningUnaryRequestDuration time.Duration
	// EnableGRPCGateway serves etcd's grpc-gateway (JSON over HTTP at
	// /v3/...) on the client URLs (--enable-grpc-gateway, default on).
	EnableGRPCGateway bool
	// CORS lists the origins whose browsers may call the client URLs' HTTP
	// API (--cors); empty or "*": every origin, etcd's default.
	CORS []string
	// Discover, when set, is how a new member learns its initial cluster
	// from a discovery service instead of InitialCluster (etcd's v3
	// discovery, --discovery-endpoints and --discovery-token, or its v2
	// discovery, --discovery; the token is then the URL). It is
	// called once, when a member bootstraps a new cluster on an empty data
	// dir, with the member's ID and its own entry in --initial-cluster's
	// form (name=peerURL,…; InitialCluster then holds only this member,
	// and InitialClusterToken is the discovery token, as etcd makes them);
	// it registers the member, waits until the cluster's size have, and
	// returns them all in that form. A restart never calls it. Its error
	// stops start-up as a *DiscoveryError.
	Discover func(id uint64, self string) (string, error)
	// InitialClusterState is "new" (bootstrap the cluster) or "existing"
	// (start with an empty log and be caught up by the current leader, which
	// must already list this member).
	InitialClusterState string

	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration

	// SnapshotCount is the number of applied entries between snapshots;
	// SnapshotCatchUpEntries how many entries are kept behind a snapshot for
	// slow followers before they need a snapshot to catch up.
	SnapshotCount          uint64
	SnapshotCatchUpEntries uint64

	MaxRequestBytes uint
	MaxTxnOps       uint
	// QuotaBackendBytes is the keyspace size past which writes get the
	// NOSPACE alarm; 0 or negative disables the quota (cmd/quorumd maps
	// etcd's 0 to the 2 GiB default and keeps a negative value: disabled,
	// as etcd).
	QuotaBackendBytes int64
	// UnsafeNoFsync is etcd's --unsafe-no-fsync: the WAL is never
	// fdatasynced, so a power cut (not a process crash) can lose
	// acknowledged writes. Snapshot files are still synced. For tests and
	// benchmarks only.
	UnsafeNoFsync bool

	// SocketOpts are etcd's --socket-reuse-port and --socket-reuse-address:
	// SO_REUSEPORT and SO_REUSEADDR on every listener (peer, client and
	// metrics), as etcd sets them.
	SocketOpts transport.SocketOpts

	// HostWhitelist is etcd's --host-whitelist: the hosts plaintext HTTP
	// requests to the client URLs may name (empty or "*": any).
	HostWhitelist []string

	// WALDir is etcd's --wal-dir: the member's WAL in a dedicated directory
	// (a separate disk, say) instead of <data-dir>/member/wal; "" keeps it
	// there. A member must always start with the same choice.
	WALDir string

	// ForceNewCluster is etcd's --force-new-cluster: a member restarting on
	// its data dir drops the log's uncommitted tail and commits conf
	// changes that remove every other member, so it serves alone with
	// everything the old cluster committed (disaster recovery when a
	// quorum is lost for good). Without a WAL it has no effect, as etcd.
	ForceNewCluster bool

	// EnablePprof serves /debug/pprof on the client URLs, as etcd's flag.
	EnablePprof bool

	// DisablePreVote turns Raft's PreVote off, as etcd's --pre-vote=false
	// (the zero value is etcd's default, PreVote on).
	DisablePreVote bool

	// GRPCKeepAliveMinTime, GRPCKeepAliveInterval and GRPCKeepAliveTimeout
	// are etcd's --grpc-keepalive-min-time, -interval and -timeout;
	// MaxConcurrentStreams is --max-concurrent-streams (0: unlimited, as
	// etcd's default math.MaxUint32).
	GRPCKeepAliveMinTime  time.Duration
	GRPCKeepAliveInterval time.Duration
	GRPCKeepAliveTimeout  time.Duration
	MaxConcurrentStreams  uint32

	// ListenMetricsURLs are extra listeners serving only /metrics and the
	// health endpoints, as etcd's --listen-metrics-urls.
	ListenMetricsURLs []url.URL
	// Metrics is "basic" or "extensive", as etcd's --metrics: extensive
	// adds the per-method gRPC latency histograms.
	Metrics string

	// WatchProgressNotifyInterval is how often a watcher created with
	// progress_notify gets a progress notification when it had no events,
	// as etcd's --watch-progress-notify-interval (at least 100 ms).
	WatchProgressNotifyInterval time.Duration

	// InitialCorruptCheck is etcd's InitialCorruptCheck feature gate
	// (--experimental-initial-corrupt-check): a member restarting with
	// data compares its HashKV with its peers' in New and refuses to
	// start on a mismatch (corrupt.go). CorruptCheckTime is
	// --corrupt-check-time: how often the leader compares every member's
	// HashKV and raises the CORRUPT alarm on a mismatch; 0 turns the
	// check off.
	InitialCorruptCheck bool
	CorruptCheckTime    time.Duration
	// CompactHashCheck is etcd's CompactHashCheck feature gate
	// (--experimental-compact-hash-check-enabled): every
	// CompactHashCheckTime (--compact-hash-check-time) the leader compares
	// the hashes members stored at their compactions (corrupt.go).
	CompactHashCheck     bool
	CompactHashCheckTime time.Duration

	// LeaseCheckpoint is etcd's LeaseCheckpoint feature gate
	// (--experimental-enable-lease-checkpoint): the leader records each
	// long lease's remaining TTL through Raft every
	// LeaseCheckpointInterval, so that a new leader extends it by what was
	// left instead of its full TTL (lease.go). LeaseCheckpointInterval is
	// etcd's ServerConfig.LeaseCheckpointInterval, which no etcd flag sets:
	// 0 means etcd's 5 minutes; tests shorten it.
	LeaseCheckpoint         bool
	LeaseCheckpointInterval time.Duration

	// AutoCompactionMode is etcd's --auto-compaction-mode, "periodic" or
	// "revision"; AutoCompactionRetention its retention as etcd's
	// ServerConfig holds it: a duration in periodic mode, a count of
	// revisions (time.Duration(n)) in revision mode; 0 (the default) turns
	// auto compaction off (compactor.go).
	AutoCompactionMode      string
	AutoCompactionRetention time.Duration

	// ClientTLS and PeerTLS are etcd's ClientTLSInfo and PeerTLSInfo
	// (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth,
	// --client-crl-file, --client-cert-allowed-hostname, --client-cert-file,
	// --client-key-file and their --peer-* twins, --peer-cert-allowed-cn),
	// with the cipher suites and TLS versions already set and the auto TLS
	// certificates already made (cmd/quorumd does it as etcd's
	// configureClientListeners and configurePeerListeners do). They apply
	// to the https URLs; an https URL with an empty TLSInfo is refused.
	ClientTLS transport.TLSInfo
	PeerTLS   transport.TLSInfo
	// AuthToken is etcd's --auth-token: "simple" (the default) or
	// "jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]"; AuthTokenTTL is
	// --auth-token-ttl, how long an unused simple token lives; BcryptCost
	// --bcrypt-cost, the cost of the password hashes (etcd's default 10).
	AuthToken    string
	AuthTokenTTL time.Duration
	BcryptCost   int

	// StrictReconfigCheck is etcd's --strict-reconfig-check (default
	// true): refuse a membership change that could cost the cluster its
	// quorum of started, connected members. MaxLearners is --max-learners
	// (default 1), the most learners the cluster may have.
	StrictReconfigCheck bool
	MaxLearners         int

	// Logger receives every log line; required.
	Logger *slog.Logger
}

// DefaultConfig returns etcd's defaults: member "default" serving clients on
// localhost:2379 and peers on localhost:2380 in a single-member cluster.
func DefaultConfig() Config {
	c := Config{
		Name:                        DefaultName,
		EnableGRPCGateway:           true,
		ListenClientURLs:            []url.URL{mustURL(DefaultListenClientURL)},
		AdvertiseClientURLs:         []url.URL{mustURL(DefaultListenClientURL)},
		ListenPeerURLs:              []url.URL{mustURL(DefaultListenPeerURL)},
		InitialAdvertisePeerURLs:    []url.URL{mustURL(DefaultListenPeerURL)},
		InitialClusterToken:         DefaultInitialClusterToken,
		InitialClusterState:         "new",
		HeartbeatInterval:           DefaultHeartbeatInterval,
		ElectionTimeout:             DefaultElectionTimeout,
		SnapshotCount:               DefaultSnapshotCount,
		SnapshotCatchUpEntries:      DefaultSnapshotCatchUpEntries,
		MaxRequestBytes:             DefaultMaxRequestBytes,
		MaxTxnOps:                   DefaultMaxTxnOps,
		QuotaBackendBytes:           DefaultQuotaBackendBytes,
		GRPCKeepAliveMinTime:        DefaultGRPCKeepAliveMinTime,
		GRPCKeepAliveInterval:       DefaultGRPCKeepAliveInterval,
		GRPCKeepAliveTimeout:        DefaultGRPCKeepAliveTimeout,
		Metrics:                     "basic",
		WatchProgressNotifyInterval: DefaultWatchProgressNotifyInterval,
		Logger:                      slog.Default(),
		AutoCompactionMode:          "periodic",
		AuthToken:                   DefaultAuthToken,
		AuthTokenTTL:                DefaultAuthTokenTTL,
		BcryptCost:                  DefaultBcryptCost,
		StrictReconfigCheck:         true,
		MaxLearners:                 DefaultMaxLearners,
	}
	c.DataDir = c.Name + ".etcd"
	c.InitialCluster = map[string][]url.URL{c.Name: c.InitialAdvertisePeerURLs}
	return c
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

// ParseURLs parses a comma-separated list of http or https URLs with
// host:port, as etcd's URL flags take them.
func ParseURLs(s string) ([]url.URL, error) {
	var out []url.URL
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a URL: %w", part, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			if u.Scheme == "unix" || u.Scheme == "unixs" {
				return nil, fmt.Errorf("URL %q: scheme %s is not supported by quorumd (only http and https)", part, u.Scheme)
			}
			return nil, fmt.Errorf("URL %q must be http://host:port or https://host:port", part)
		}
		if u.Port() == "" {
			return nil, fmt.Errorf("URL %q has no port (expected %s://host:port)", part, u.Scheme)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("URL %q must not have a path", part)
		}
		u.Path = ""
		out = append(out, *u)
	}
	if len(out) == 0 {
		return nil, errors.New("no URL given")
	}
	return out, nil
}

// ParseInitialCluster parses etcd's --initial-cluster: name=url,name=url; a
// name may appear several times for several URLs.
func ParseInitialCluster(s string) (map[string][]url.URL, error) {
	out := map[string][]url.URL{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, raw, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not name=http(s)://host:port", part)
		}
		us, err := ParseURLs(raw)
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", name, err)
		}
		out[name] = append(out[name], us...)
	}
	if len(out) == 0 {
		return nil, errors.New("no members given")
	}
	return out, nil
}

// FormatURLs joins URLs with commas, as etcd prints them.
func FormatURLs(us []url.URL) string {
	s := make([]string, len(us))
	for i := range us {
		s[i] = us[i].String()
	}
	return strings.Join(s, ",")
}

// Validate reports the first field that is not usable, naming it as the
// flag that sets it.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("--name must not be empty")
	case c.DataDir == "":
		return errors.New("--data-dir must not be empty")
	case len(c.ListenClientURLs) == 0:
		return errors.New("--listen-client-urls must name at least one URL")
	case len(c.AdvertiseClientURLs) == 0:
		return errors.New("--advertise-client-urls must name at least one URL")
	case len(c.ListenPeerURLs) == 0:
		return errors.New("--listen-peer-urls must name at least one URL")
	case len(c.InitialAdvertisePeerURLs) == 0:
		return errors.New("--initial-advertise-peer-urls must name at least one URL")
	case c.HeartbeatInterval <= 0:
		return errors.New("--heartbeat-interval must be > 0")
	case c.ElectionTimeout < 5*c.HeartbeatInterval:
		return fmt.Errorf("--election-timeout (%v) must be at least 5 times --heartbeat-interval (%v)", c.ElectionTimeout, c.HeartbeatInterval)
	case c.ElectionTimeout > 50*time.Second:
		return fmt.Errorf("--election-timeout (%v) is longer than 50s", c.ElectionTimeout)
	case c.SnapshotCount == 0:
		return errors.New("--snapshot-count must be > 0")
	case c.MaxRequestBytes == 0:
		return errors.New("--max-request-bytes must be > 0")
	case c.MaxTxnOps == 0:
		return errors.New("--max-txn-ops must be > 0")
	case c.InitialClusterState != "new" && c.InitialClusterState != "existing":
		return fmt.Errorf("--initial-cluster-state is %q; want new or existing", c.InitialClusterState)
	case c.Metrics != "basic" && c.Metrics != "extensive":
		return fmt.Errorf("--metrics is %q; want basic or extensive", c.Metrics)
	case c.Logger == nil:
		return errors.New("Config.Logger is nil")
	}
	if err := validateAutoCompaction(c.AutoCompactionMode, c.AutoCompactionRetention); err != nil {
		return err
	}
	if c.Tracing != nil {
		if err := c.Tracing.validate(); err != nil {
			return err
		}
	}
	if len(c.InitialCluster) == 0 {
		return errors.New("--initial-cluster must name at least one member")
	}
	mine, ok := c.InitialCluster[c.Name]
	if !ok {
		names := make([]string, 0, len(c.InitialCluster))
		for n := range c.InitialCluster {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("--initial-cluster has no member named %q (--name); it lists %s", c.Name, strings.Join(names, ", "))
	}
	if !sameURLs(mine, c.InitialAdvertisePeerURLs) {
		return fmt.Errorf("--initial-cluster gives %s=%s but --initial-advertise-peer-urls is %s; they must match",
			c.Name, FormatURLs(mine), FormatURLs(c.InitialAdvertisePeerURLs))
	}
	seen := map[string]string{}
	for name, us := range c.InitialCluster {
		for _, u := range us {
			if other, dup := seen[u.String()]; dup && other != name {
				return fmt.Errorf("--initial-cluster gives peer URL %s to both %s and %s", u.String(), other, name)
			}
			seen[u.String()] = name
		}
	}
	return nil
}

func sameURLs(a, b []url.URL) bool {
	if len(a) != len(b) {
		return false
	}
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		as[i], bs[i] = a[i].String(), b[i].String()
	}
	sort.Strings(as)
	sort.Strings(bs)
	for i := range as {
		if as[i] != bs[i] {
			return false
		}
	}
	return true
}

// tickInterval and electionTicks turn the durations into Raft ticks.
// defaultLeaseCheckpointInterval is etcd's defaultLeaseCheckpointInterval.
const defaultLeaseCheckpointInterval = 5 * time.Minute

// leaseCheckpointInterval is the time between a lease's checkpoints, 0
// when checkpoints are off.
func (c *Config) leaseCheckpointInterval() time.Duration {
	switch {
	case !c.LeaseCheckpoint:
		return 0
	case c.LeaseCheckpointInterval > 0:
		return c.LeaseCheckpointInterval
	}
	return defaultLeaseCheckpointInterval
}

func (c *Config) electionTicks() int {
	n := int(c.ElectionTimeout / c.HeartbeatInterval)
	if n < 2 {
		n = 2
	}
	return n
}

// requestTimeout is how long a write waits to be applied before it fails
// with etcd's "request timed out": etcd's 5s plus two election timeouts.
func (c *Config) requestTimeout() time.Duration {
	return 5*time.Second + 2*c.ElectionTimeout
}

// maxConcurrentStreams is --max-concurrent-streams, 0 meaning etcd's
// default (math.MaxUint32).
func (c *Config) maxConcurrentStreams() uint32 {
	if c.MaxConcurrentStreams == 0 {
		return math.MaxUint32
	}
	return c.MaxConcurrentStreams
}

func (c *Config) catchUpEntries() uint64 {
	n := c.SnapshotCatchUpEntries
	if n == 0 || n > c.SnapshotCount {
		n = c.SnapshotCount
	}
	return n
}

// walDir is where the member's WAL is: WALDir, or etcd's
// <data-dir>/member/wal.
func (c *Config) walDir() string {
	if c.WALDir != "" {
		return c.WALDir
	}
	return filepath.Join(c.DataDir, "member", "wal")
}

// warningApplyDuration is WarningApplyDuration or etcd's default.
func (c *Config) warningApplyDuration() time.Duration {
	if c.WarningApplyDuration > 0 {
		return c.WarningApplyDuration
	}
	return 100 * time.Millisecond
}

// warningUnaryRequestDuration is WarningUnaryRequestDuration or etcd's
// default.
func (c *Config) warningUnaryRequestDuration() time.Duration {
	if c.WarningUnaryRequestDuration > 0 {
		return c.WarningUnaryRequestDuration
	}
	return 300 * time.Millisecond
}
