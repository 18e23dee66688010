// Command quorumd is the Quorum key-value server: an etcd v3 API compatible
// member of a Raft-replicated cluster, started as etcd 3.6 is. Its flag set
// is etcd's own (embed.Config's AddFlags and etcdmain's flags), parsed as
// etcdmain parses it: ETCD_* variables, --config-file in etcd's YAML
// schema, etcd's validation and messages. flagTable (flags.go, rendered as
// docs/flags.md) says for every flag whether quorumd honours it, accepts it
// with no effect, or refuses a non-default value at start-up.
//
//	quorumd --name n1 --initial-cluster n1=http://10.0.0.1:2380,... \
//	        --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://10.0.0.1:2379 ...
package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"go.etcd.io/etcd/client/pkg/v3/tlsutil"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v2discovery"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3discovery"
	"go.etcd.io/etcd/server/v3/features"

	"github.com/quorum-kv/quorum/internal/etcdlog"
	"github.com/quorum-kv/quorum/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code, which is
// etcd's: 0 after --help or --version, 2 for a flag that does not parse,
// 1 for a configuration that does not validate or a member that cannot
// start or fails; 0 for a member that stops because the cluster removed it.
func run(args, environ []string, stdout, stderr io.Writer) int {
	cfg, lg, code := configure(args, environ, stdout, stderr)
	if cfg == nil {
		return code
	}
	defer lg.Sync() //nolint:errcheck // nothing to do about a failed flush
	s, err := server.New(*cfg)
	if errors.As(err, new(*server.DiscoveryError)) {
		return 1 // Config.Discover logged etcdmain's lines (discoveryFailed)
	}
	if err != nil {
		lg.Warn("failed to start", zap.Error(err))
		return 1
	}
	s.Start()
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)
	select {
	case sig := <-sigc:
		lg.Info("received signal; shutting down", zap.String("signal", sig.String()))
		go func() { // a second signal means "now"
			<-sigc
			os.Exit(1)
		}()
		s.Stop()
		return 0
	case err := <-s.Err():
		if errors.Is(err, server.ErrMemberRemoved) {
			// As etcd: the server stops and the process exits 0 (a
			// supervisor restarting on failure does not bring back a
			// member the cluster removed); the server logged why.
			s.Stop()
			return 0
		}
		lg.Error("fatal error; stopping", zap.Error(err))
		s.Stop()
		return 1
	}
}

// discoveryFailed logs etcdmain's lines for a failed bootstrap by discovery
// (startEtcdOrProxyV2) of member name in dataDir: err is the discovery
// client's. durl is --discovery, which etcd names as the token in every
// case (empty with v3 discovery).
func discoveryFailed(lg *zap.Logger, err error, name, dataDir, durl string) {
	switch {
	case errors.Is(err, v2discovery.ErrDuplicateID):
		lg.Warn("member has been registered with discovery service",
			zap.String("name", name), zap.String("discovery-token", durl), zap.Error(err))
		lg.Warn("but could not find valid cluster configuration", zap.String("data-dir", dataDir))
		lg.Warn("check data dir if previous bootstrap succeeded")
		lg.Warn("or use a new discovery token if previous bootstrap failed")
	case errors.Is(err, v2discovery.ErrDuplicateName):
		lg.Warn("member with duplicated name has already been registered",
			zap.String("discovery-token", durl), zap.Error(err))
		lg.Warn("cURL the discovery token URL for details")
		lg.Warn("do not reuse discovery token; generate a new one to bootstrap a cluster")
	default:
		// etcd logs the error New returns, the DiscoveryError around err.
		lg.Warn("failed to bootstrap; discovery token was already used",
			zap.String("discovery-token", durl), zap.Error(&server.DiscoveryError{Op: "join", Err: err}))
		lg.Warn("do not reuse discovery token; generate a new one to bootstrap a cluster")
	}
}

// configure parses and checks the invocation as etcd's startEtcdOrProxyV2
// does up to starting the server (etcdmain/etcd.go), then refuses the
// flags quorumd does not support, logs those it accepts with no effect,
// and returns the member's server.Config and etcd's logger. A nil config
// means stop with the returned exit code; what went wrong is on stderr.
func configure(args, environ []string, stdout, stderr io.Writer) (*server.Config, *zap.Logger, int) {
	cfg := newConfig(environ, stdout, stderr)
	defaultInitialCluster := cfg.ec.InitialCluster

	err := cfg.parse(args)
	var exit errExit
	if errors.As(err, &exit) {
		return nil, nil, exit.code
	}
	lg := cfg.ec.GetLogger()
	if lg == nil {
		var zerr error
		if lg, zerr = defaultLogger(stderr); zerr != nil {
			fmt.Fprintf(stderr, "error creating zap logger %v", zerr)
			return nil, nil, 1
		}
	}
	lg.Info("Running: ", zap.Strings("args", append([]string{"quorumd"}, args...)))
	if err != nil {
		lg.Warn("failed to verify flags", zap.Error(err))
		if errors.Is(err, embed.ErrUnsetAdvertiseClientURLsFlag) {
			lg.Warn("advertise client URLs are not set", zap.Error(err))
		}
		return nil, nil, 1
	}

	defaultHost, dhErr := cfg.ec.UpdateDefaultClusterFromName(defaultInitialCluster)
	if defaultHost != "" {
		lg.Info("detected default host for advertise", zap.String("host", defaultHost))
	}
	if dhErr != nil {
		lg.Info("failed to detect default host", zap.Error(dhErr))
	}
	if cfg.ec.Dir == "" {
		cfg.ec.Dir = fmt.Sprintf("%v.etcd", cfg.ec.Name)
		lg.Warn("'data-dir' was empty; using default", zap.String("data-dir", cfg.ec.Dir))
	}

	set := nonDefault(&cfg.ec)
	var refused []string
	for _, f := range set {
		if f.Class == unsupported {
			refused = append(refused, fmt.Sprintf("--%s=%v is not supported by quorumd: %s", f.Name, f.Value, f.Reason))
		}
	}
	if len(refused) > 0 {
		lg.Warn("failed to verify flags", zap.Error(errors.New(strings.Join(refused, "; "))))
		return nil, nil, 1
	}
	for _, f := range set {
		lg.Warn("flag has no effect in quorumd", zap.String("flag", "--"+f.Name),
			zap.String("value", fmt.Sprint(f.Value)), zap.String("reason", f.Reason))
	}

	sc, err := serverConfig(&cfg.ec, lg)
	if err != nil {
		lg.Warn("failed to verify flags", zap.Error(err))
		return nil, nil, 1
	}
	return sc, lg, 0
}

// serverConfig translates a validated embed.Config into quorumd's
// server.Config: the flags of class asEtcd (flagTable).
func serverConfig(ec *embed.Config, lg *zap.Logger) (*server.Config, error) {
	c := server.DefaultConfig()
	c.Logger = etcdlog.Slog(lg)
	c.Name = ec.Name
	c.DataDir = ec.Dir
	var err error
	urls := []struct {
		flag string
		in   []url.URL
		out  *[]url.URL
	}{
		{"listen-client-urls", ec.ListenClientUrls, &c.ListenClientURLs},
		{"advertise-client-urls", ec.AdvertiseClientUrls, &c.AdvertiseClientURLs},
		{"listen-peer-urls", ec.ListenPeerUrls, &c.ListenPeerURLs},
		{"initial-advertise-peer-urls", ec.AdvertisePeerUrls, &c.InitialAdvertisePeerURLs},
	}
	for _, u := range urls {
		if *u.out, err = server.ParseURLs(fmtURLs(u.in)); err != nil {
			return nil, fmt.Errorf("--%s: %w", u.flag, err)
		}
	}
	if len(ec.ListenClientHttpUrls) > 0 {
		if c.ListenClientHTTPURLs, err = server.ParseURLs(fmtURLs(ec.ListenClientHttpUrls)); err != nil {
			return nil, fmt.Errorf("--listen-client-http-urls: %w", err)
		}
	}
	c.ListenMetricsURLs = nil
	if len(ec.ListenMetricsUrls) > 0 {
		if c.ListenMetricsURLs, err = server.ParseURLs(fmtURLs(ec.ListenMetricsUrls)); err != nil {
			return nil, fmt.Errorf("--listen-metrics-urls: %w", err)
		}
	}
	switch {
	// As embed's PeerURLsMapAndToken and etcdserver's
	// bootstrapNewClusterNoWAL for discovery: a cluster of this member
	// alone, the discovery token (v2: its URL) as the cluster token, and
	// the members found by etcd's own discovery client.
	case ec.Durl != "":
		c.InitialCluster = map[string][]url.URL{c.Name: c.InitialAdvertisePeerURLs}
		c.InitialClusterToken = ec.Durl
		durl, proxy := ec.Durl, ec.Dproxy
		c.Discover = func(id uint64, self string) (string, error) {
			lg.Warn("V2 discovery is deprecated!")
			cluster, err := v2discovery.JoinCluster(lg, durl, proxy, types.ID(id), self)
			if err != nil {
				discoveryFailed(lg, err, c.Name, c.DataDir, durl)
			}
			return cluster, err
		}
	case len(ec.DiscoveryCfg.Endpoints) > 0:
		c.InitialCluster = map[string][]url.URL{c.Name: c.InitialAdvertisePeerURLs}
		c.InitialClusterToken = ec.DiscoveryCfg.Token
		dc := ec.DiscoveryCfg
		c.Discover = func(id uint64, self string) (string, error) {
			lg.Info("Bootstrapping cluster using v3 discovery.")
			cluster, err := v3discovery.JoinCluster(lg, &dc, types.ID(id), self)
			if err != nil {
				discoveryFailed(lg, err, c.Name, c.DataDir, "")
			}
			return cluster, err
		}
	default:
		if c.InitialCluster, err = server.ParseInitialCluster(ec.InitialCluster); err != nil {
			return nil, fmt.Errorf("--initial-cluster: %w", err)
		}
		c.InitialClusterToken = ec.InitialClusterToken
	}
	c.InitialClusterState = ec.ClusterState
	c.HeartbeatInterval = time.Duration(ec.TickMs) * time.Millisecond
	c.ElectionTimeout = time.Duration(ec.ElectionMs) * time.Millisecond
	c.SnapshotCount = ec.SnapshotCount
	c.SnapshotCatchUpEntries = ec.SnapshotCatchUpEntries
	c.UnsafeNoFsync = ec.UnsafeNoFsync
	c.ForceNewCluster = ec.ForceNewCluster
	c.WALDir = ec.WalDir
	c.SocketOpts = ec.SocketOpts
	if ec.EnableDistributedTracing { // etcdmain has copied the experimental spellings here
		c.Tracing = &server.TracingConfig{
			Address:                ec.DistributedTracingAddress,
			ServiceName:            ec.DistributedTracingServiceName,
			InstanceID:             ec.DistributedTracingServiceInstanceID,
			SamplingRatePerMillion: ec.DistributedTracingSamplingRatePerMillion,
		}
	}
	c.DisableInitialElectionTickAdvance = !ec.InitialElectionTickAdvance
	c.WarningApplyDuration = ec.WarningApplyDuration
	c.WarningUnaryRequestDuration = ec.WarningUnaryRequestDuration
	c.EnableGRPCGateway = ec.EnableGRPCGateway
	for o := range ec.CORS {
		c.CORS = append(c.CORS, o)
	}
	sort.Strings(c.CORS)
	for h := range ec.HostWhitelist {
		c.HostWhitelist = append(c.HostWhitelist, h)
	}
	sort.Strings(c.HostWhitelist)
	c.MaxRequestBytes = ec.MaxRequestBytes
	c.MaxTxnOps = ec.MaxTxnOps
	if ec.QuotaBackendBytes != 0 {
		c.QuotaBackendBytes = ec.QuotaBackendBytes
	}
	if c.QuotaBackendBytes < 0 { // as etcd's storage.NewBackendQuota
		lg.Info("disabled backend quota", zap.String("quota-name", "v3-applier"), zap.Int64("quota-size-bytes", c.QuotaBackendBytes))
	}
	c.InitialCorruptCheck = ec.ServerFeatureGate.Enabled(features.InitialCorruptCheck)
	c.CorruptCheckTime = ec.CorruptCheckTime
	c.CompactHashCheck = ec.ServerFeatureGate.Enabled(features.CompactHashCheck)
	c.CompactHashCheckTime = ec.CompactHashCheckTime
	c.LeaseCheckpoint = ec.ServerFeatureGate.Enabled(features.LeaseCheckpoint)
	c.EnablePprof = ec.EnablePprof
	c.Metrics = ec.Metrics
	c.DisablePreVote = !ec.PreVote
	c.StrictReconfigCheck = ec.StrictReconfigCheck
	c.MaxLearners = ec.MaxLearners
	c.GRPCKeepAliveMinTime = ec.GRPCKeepAliveMinTime
	c.GRPCKeepAliveInterval = ec.GRPCKeepAliveInterval
	c.GRPCKeepAliveTimeout = ec.GRPCKeepAliveTimeout
	c.MaxConcurrentStreams = ec.MaxConcurrentStreams
	c.WatchProgressNotifyInterval = ec.WatchProgressNotifyInterval
	c.AuthToken = ec.AuthToken
	c.AuthTokenTTL = time.Duration(ec.AuthTokenTTL) * time.Second
	c.BcryptCost = int(ec.BcryptCost)
	if c.AutoCompactionMode, c.AutoCompactionRetention, err = autoCompaction(ec); err != nil {
		return nil, err
	}
	if c.ClientTLS, c.PeerTLS, err = tlsInfos(ec); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// tlsInfos returns the client and peer TLSInfo as etcd's
// configureClientListeners and configurePeerListeners complete them
// (embed/etcd.go): --cipher-suites, the auto TLS certificates under
// <data-dir>/fixtures (--auto-tls, --peer-auto-tls, valid for
// --self-signed-cert-validity years), --tls-min-version and
// --tls-max-version. Peer first, as etcd.
func tlsInfos(ec *embed.Config) (client, peer transport.TLSInfo, err error) {
	if err = updateCipherSuites(&ec.PeerTLSInfo, ec.CipherSuites); err != nil {
		return client, peer, err
	}
	if err = ec.PeerSelfCert(); err != nil {
		return client, peer, fmt.Errorf("failed to get peer self-signed certs: %w", err)
	}
	if err = updateMinMaxVersions(&ec.PeerTLSInfo, ec.TlsMinVersion, ec.TlsMaxVersion); err != nil {
		return client, peer, err
	}
	if err = updateCipherSuites(&ec.ClientTLSInfo, ec.CipherSuites); err != nil {
		return client, peer, err
	}
	if err = ec.ClientSelfCert(); err != nil {
		return client, peer, fmt.Errorf("failed to get client self-signed certs: %w", err)
	}
	if err = updateMinMaxVersions(&ec.ClientTLSInfo, ec.TlsMinVersion, ec.TlsMaxVersion); err != nil {
		return client, peer, err
	}
	return ec.ClientTLSInfo, ec.PeerTLSInfo, nil
}

// updateCipherSuites is embed's (unexported there).
func updateCipherSuites(info *transport.TLSInfo, ss []string) error {
	if len(info.CipherSuites) > 0 && len(ss) > 0 {
		return fmt.Errorf("TLSInfo.CipherSuites is already specified (given %v)", ss)
	}
	if len(ss) > 0 {
		cs, err := tlsutil.GetCipherSuites(ss)
		if err != nil {
			return err
		}
		info.CipherSuites = cs
	}
	return nil
}

// updateMinMaxVersions is embed's, returning the error embed's Validate
// has already ruled out instead of panicking.
func updateMinMaxVersions(info *transport.TLSInfo, min, max string) error {
	var err error
	if info.MinVersion, err = tlsutil.GetTLSVersion(min); err != nil {
		return err
	}
	if info.MaxVersion, err = tlsutil.GetTLSVersion(max); err != nil {
		return err
	}
	return nil
}

func fmtURLs(us []url.URL) string {
	if len(us) == 0 {
		return ""
	}
	return types.URLs(us).String()
}
