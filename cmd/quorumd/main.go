// Command quorumd is the Quorum key-value server: an etcd v3 API compatible
// member of a Raft-replicated cluster. It takes etcd's flags and ETCD_*
// environment variables, so existing etcd manifests start it unchanged.
//
//	quorumd --name n1 --initial-cluster n1=http://10.0.0.1:2380,... \
//	        --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://10.0.0.1:2379 ...
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/quorum-kv/quorum/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	cfg, showVersion, err := parseConfig(args, environ, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "quorumd: %v\n", err)
		return 2
	}
	if showVersion {
		fmt.Fprintf(stdout, "quorumd Version: %s\nAPI Version: %s\nGo Version: %s\nGo OS/Arch: %s/%s\n",
			server.Version, server.APIVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	lg := cfg.Logger
	s, err := server.New(*cfg)
	if err != nil {
		fmt.Fprintf(stderr, "quorumd: %v\n", err)
		return 1
	}
	s.Start()
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-sigc:
		lg.Info("received signal; shutting down", "signal", sig.String())
		go func() { // a second signal means "now"
			<-sigc
			os.Exit(1)
		}()
		s.Stop()
		return 0
	case err := <-s.Err():
		lg.Error("fatal error; stopping", "err", err)
		fmt.Fprintf(stderr, "quorumd: %v\n", err)
		s.Stop()
		return 1
	}
}

// parseConfig maps etcd's flags, then the ETCD_* variables for flags not
// given on the command line (as etcd does), onto a server.Config.
func parseConfig(args, environ []string, stderr io.Writer) (*server.Config, bool, error) {
	def := server.DefaultConfig()
	fs := flag.NewFlagSet("quorumd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		name                = fs.String("name", def.Name, "Human-readable name for this member.")
		dataDir             = fs.String("data-dir", "", "Path to the data directory (default ${name}.etcd).")
		listenClientURLs    = fs.String("listen-client-urls", server.DefaultListenClientURL, "List of URLs to listen on for client traffic.")
		advertiseClientURLs = fs.String("advertise-client-urls", server.DefaultListenClientURL, "List of this member's client URLs to advertise to the rest of the cluster.")
		listenPeerURLs      = fs.String("listen-peer-urls", server.DefaultListenPeerURL, "List of URLs to listen on for peer traffic.")
		advertisePeerURLs   = fs.String("initial-advertise-peer-urls", server.DefaultListenPeerURL, "List of this member's peer URLs to advertise to the rest of the cluster.")
		initialCluster      = fs.String("initial-cluster", "", "Initial cluster configuration for bootstrapping (default ${name}=${initial-advertise-peer-urls}).")
		initialToken        = fs.String("initial-cluster-token", def.InitialClusterToken, "Initial cluster token for the etcd cluster during bootstrap.")
		initialState        = fs.String("initial-cluster-state", def.InitialClusterState, "Initial cluster state ('new' or 'existing').")
		heartbeat           = fs.Uint("heartbeat-interval", uint(def.HeartbeatInterval/time.Millisecond), "Time (in milliseconds) of a heartbeat interval.")
		election            = fs.Uint("election-timeout", uint(def.ElectionTimeout/time.Millisecond), "Time (in milliseconds) for an election to timeout.")
		snapshotCount       = fs.Uint64("snapshot-count", def.SnapshotCount, "Number of committed transactions to trigger a snapshot to disk.")
		catchUp             = fs.Uint64("snapshot-catchup-entries", def.SnapshotCatchUpEntries, "Number of entries for a slow follower to catch up after compacting the raft storage entries.")
		maxRequestBytes     = fs.Uint("max-request-bytes", def.MaxRequestBytes, "Maximum client request size in bytes the server will accept.")
		maxTxnOps           = fs.Uint("max-txn-ops", def.MaxTxnOps, "Maximum number of operations permitted in a transaction.")
		quota               = fs.Int64("quota-backend-bytes", 0, "Raise alarms when the keyspace size exceeds the given quota. 0 means use the default quota (2 GiB).")
		logLevel            = fs.String("log-level", "info", "Configures log level. Only supports debug, info, warn, error.")
		enablePprof         = fs.Bool("enable-pprof", false, "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"")
		version             = fs.Bool("version", false, "Print the version and exit.")
	)
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		return nil, false, fmt.Errorf("unexpected argument %q (flags are --name value or --name=value)", fs.Arg(0))
	}
	if err := setFlagsFromEnv(fs, environ, stderr); err != nil {
		return nil, false, err
	}
	if *version {
		return &def, true, nil
	}

	var level slog.Level
	switch *logLevel {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, false, fmt.Errorf("--log-level is %q; want debug, info, warn or error", *logLevel)
	}
	cfg := def
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Name = *name
	cfg.DataDir = *dataDir
	if cfg.DataDir == "" {
		cfg.DataDir = cfg.Name + ".etcd"
	}
	var err error
	if cfg.ListenClientURLs, err = server.ParseURLs(*listenClientURLs); err != nil {
		return nil, false, fmt.Errorf("--listen-client-urls: %w", err)
	}
	if cfg.AdvertiseClientURLs, err = server.ParseURLs(*advertiseClientURLs); err != nil {
		return nil, false, fmt.Errorf("--advertise-client-urls: %w", err)
	}
	if cfg.ListenPeerURLs, err = server.ParseURLs(*listenPeerURLs); err != nil {
		return nil, false, fmt.Errorf("--listen-peer-urls: %w", err)
	}
	if cfg.InitialAdvertisePeerURLs, err = server.ParseURLs(*advertisePeerURLs); err != nil {
		return nil, false, fmt.Errorf("--initial-advertise-peer-urls: %w", err)
	}
	if *initialCluster == "" {
		// etcd's default: this member alone, at its advertised peer URLs.
		*initialCluster = cfg.Name + "=" + server.FormatURLs(cfg.InitialAdvertisePeerURLs)
	}
	if cfg.InitialCluster, err = server.ParseInitialCluster(*initialCluster); err != nil {
		return nil, false, fmt.Errorf("--initial-cluster: %w", err)
	}
	cfg.InitialClusterToken = *initialToken
	cfg.InitialClusterState = *initialState
	cfg.HeartbeatInterval = time.Duration(*heartbeat) * time.Millisecond
	cfg.ElectionTimeout = time.Duration(*election) * time.Millisecond
	cfg.SnapshotCount = *snapshotCount
	cfg.SnapshotCatchUpEntries = *catchUp
	cfg.MaxRequestBytes = *maxRequestBytes
	cfg.MaxTxnOps = *maxTxnOps
	if *quota != 0 {
		cfg.QuotaBackendBytes = *quota
	}
	cfg.EnablePprof = *enablePprof
	if err := cfg.Validate(); err != nil {
		return nil, false, err
	}
	return &cfg, false, nil
}

// setFlagsFromEnv sets every flag not given on the command line from its
// ETCD_ variable (--initial-cluster-state ← ETCD_INITIAL_CLUSTER_STATE), as
// etcd does; a variable for a flag also given on the command line is
// ignored with a warning, and an ETCD_ variable that names no flag is
// reported, as etcd does.
func setFlagsFromEnv(fs *flag.FlagSet, environ []string, stderr io.Writer) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "ETCD_") {
			env[k] = v
		}
	}
	known := map[string]bool{}
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "ETCD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		known[key] = true
		v, ok := env[key]
		if !ok {
			return
		}
		if set[f.Name] {
			fmt.Fprintf(stderr, "quorumd: ignoring environment variable %s: --%s is set on the command line\n", key, f.Name)
			return
		}
		if err := fs.Set(f.Name, v); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("environment variable %s=%q: %w", key, v, err)
		}
	})
	var unknown []string
	for k := range env {
		if !known[k] && !ignoredEnv[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		fmt.Fprintf(stderr, "quorumd: unrecognized environment variable %s (no flag --%s)\n", k,
			strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "ETCD_"), "_", "-")))
	}
	return firstErr
}

// ignoredEnv are ETCD_ variables etcd itself reads for other purposes.
var ignoredEnv = map[string]bool{"ETCD_UNSUPPORTED_ARCH": true}
