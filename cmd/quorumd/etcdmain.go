// This file follows go.etcd.io/etcd/server/v3@v3.6.16/etcdmain/config.go
// (newConfig, parse, configFromCmdLine, configFromFile, validate,
// parseWarningUnaryRequestDuration) and go.etcd.io/etcd/pkg/v3/flags/flag.go
// (SetFlagsFromEnv, verifyEnv, setFlagFromEnv).
// Copyright 2015 The etcd Authors, licensed under the Apache License 2.0
// (http://www.apache.org/licenses/LICENSE-2.0); adapted for quorumd: the
// environment, stdout and stderr are passed in instead of read from the
// process, and outcomes that etcd ends with os.Exit are returned.

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/pkg/v3/flags"
	cconfig "go.etcd.io/etcd/server/v3/config"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"

	"github.com/quorum-kv/quorum/internal/etcdlog"
	"github.com/quorum-kv/quorum/server"
)

var (
	fallbackFlagExit  = "exit"
	fallbackFlagProxy = "proxy"

	// ignoredFlags are etcd's flags of earlier releases that it still
	// accepts and ignores with a warning (etcdmain's ignored).
	ignoredFlags = []string{
		"cluster-active-size",
		"cluster-remove-delay",
		"cluster-sync-interval",
		"config",
		"force",
		"max-result-buffer",
		"max-retry-attempts",
		"peer-heartbeat-interval",
		"peer-election-timeout",
		"retry-interval",
		"snapshot",
		"v",
		"vv",
		// for coverage testing
		"test.coverprofile",
		"test.outputdir",
	}

	// deprecatedFlags are etcd's warnings for deprecated flags, logged when
	// the flag is set on the command line or in the config file.
	deprecatedFlags = map[string]string{
		"max-snapshots":  "--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8.",
		"v2-deprecation": "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input.",
		"experimental-compact-hash-check-enabled":           "--experimental-compact-hash-check-enabled is deprecated in 3.6 and will be decommissioned in 3.7. Use '--feature-gates=CompactHashCheck=true' instead.",
		"experimental-compact-hash-check-time":              "--experimental-compact-hash-check-time is deprecated in 3.6 and will be decommissioned in 3.7. Use '--compact-hash-check-time' instead.",
		"experimental-txn-mode-write-with-shared-buffer":    "--experimental-txn-mode-write-with-shared-buffer is deprecated in v3.6 and will be decommissioned in v3.7. Use '--feature-gates=TxnModeWriteWithSharedBuffer=true' instead.",
		"experimental-corrupt-check-time":                   "--experimental-corrupt-check-time is deprecated in v3.6 and will be decommissioned in v3.7. Use '--corrupt-check-time' instead.",
		"experimental-compaction-batch-limit":               "--experimental-compaction-batch-limit is deprecated in v3.6 and will be decommissioned in v3.7. Use '--compaction-batch-limit' instead.",
		"experimental-watch-progress-notify-interval":       "--experimental-watch-progress-notify-interval is deprecated in v3.6 and will be decommissioned in v3.7. Use '--watch-progress-notify-interval' instead.",
		"experimental-warning-apply-duration":               "--experimental-warning-apply-duration is deprecated in v3.6 and will be decommissioned in v3.7. Use '--warning-apply-duration' instead.",
		"experimental-bootstrap-defrag-threshold-megabytes": "--experimental-bootstrap-defrag-threshold-megabytes is deprecated in v3.6 and will be decommissioned in v3.7. Use '--bootstrap-defrag-threshold-megabytes' instead.",
		"experimental-memory-mlock":                         "--experimental-memory-mlock is deprecated in v3.6 and will be decommissioned in v3.7. Use '--memory-mlock' instead.",
		"experimental-snapshot-catchup-entries":             "--experimental-snapshot-catchup-entries is deprecated in v3.6 and will be decommissioned in v3.7. Use '--snapshot-catchup-entries' instead.",
		"experimental-compaction-sleep-interval":            "--experimental-compaction-sleep-interval is deprecated in v3.6 and will be decommissioned in v3.7. Use 'compaction-sleep-interval' instead.",
		"experimental-downgrade-check-time":                 "--experimental-downgrade-check-time is deprecated in v3.6 and will be decommissioned in v3.7. Use '--downgrade-check-time' instead.",
		"experimental-enable-distributed-tracing":           "--experimental-enable-distributed-tracing is deprecated in 3.6 and will be decommissioned in 3.7. Use --enable-distributed-tracing instead.",
		"experimental-distributed-tracing-address":          "--experimental-distributed-tracing-address is deprecated in 3.6 and will be decommissioned in 3.7. Use --distributed-tracing-address instead.",
		"experimental-distributed-tracing-service-name":     "--experimental-distributed-tracing-service-name is deprecated in 3.6 and will be decommissioned in 3.7. Use --distributed-tracing-service-name instead.",
		"experimental-distributed-tracing-instance-id":      "--experimental-distributed-tracing-instance-id is deprecated in 3.6 and will be decommissioned in 3.7. Use --distributed-tracing-instance-id instead.",
		"experimental-distributed-tracing-sampling-rate":    "--experimental-distributed-tracing-sampling-rate is deprecated in 3.6 and will be decommissioned in 3.7. Use --distributed-tracing-sampling-rate instead.",
	}
)

// usageline is etcd's, printed with a flag parsing error.
const usageline = `Usage:

  quorumd [flags]
    Start a quorumd member (etcd 3.6's flags, config file and ETCD_* variables).

  quorumd --version
    Show the version of quorumd and of the etcd it is compatible with.

  quorumd -h | --help
    Show the help information about quorumd: every flag and what quorumd does with it.

  quorumd --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.
`

// config is one command line invocation: etcd's embed.Config and the flags
// that etcdmain adds to it.
type config struct {
	ec           embed.Config
	cf           configFlags
	configFile   string
	printVersion bool

	environ        []string
	stdout, stderr io.Writer
}

// configFlags has the set of flags used for command line parsing a Config.
type configFlags struct {
	flagSet      *flag.FlagSet
	clusterState *flags.SelectiveStringValue
	fallback     *flags.SelectiveStringValue
	// Deprecated in etcd and scheduled for removal in v3.8; the default
	// value is enforced, ignoring user input.
	v2deprecation *flags.SelectiveStringsValue
}

// newConfig builds etcd 3.6's flag set on a fresh embed.Config, as
// etcdmain's newConfig does. Parse errors and usage go to stderr.
func newConfig(environ []string, stdout, stderr io.Writer) *config {
	cfg := &config{
		ec:      *embed.NewConfig(),
		environ: environ,
		stdout:  stdout,
		stderr:  stderr,
	}
	cfg.cf = configFlags{
		flagSet: flag.NewFlagSet("quorumd", flag.ContinueOnError),
		clusterState: flags.NewSelectiveStringValue(
			embed.ClusterStateFlagNew,
			embed.ClusterStateFlagExisting,
		),
		fallback: flags.NewSelectiveStringValue(
			fallbackFlagExit,
			fallbackFlagProxy,
		),
		v2deprecation: flags.NewSelectiveStringsValue(
			string(cconfig.V2Depr1WriteOnly),
			string(cconfig.V2Depr1WriteOnlySkipCheck),
			string(cconfig.V2Depr1WriteOnlyDrop),
			string(cconfig.V2Depr2Gone)),
	}
	fs := cfg.cf.flagSet
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageline) }
	cfg.ec.AddFlags(fs)
	fs.StringVar(&cfg.configFile, "config-file", "", "Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.")
	fs.Var(cfg.cf.fallback, "discovery-fallback", fmt.Sprintf("Valid values include %q", cfg.cf.fallback.Valids()))
	fs.Var(cfg.cf.clusterState, "initial-cluster-state", "Initial cluster state ('new' when bootstrapping a new cluster or 'existing' when adding new members to an existing cluster). After successful initialization (bootstrapping or adding), flag is ignored on restarts.")
	fs.Var(cfg.cf.v2deprecation, "v2-deprecation", fmt.Sprintf("v2store deprecation stage: %q. Deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input.", cfg.cf.v2deprecation.Valids()))
	fs.BoolVar(&cfg.printVersion, "version", false, "Print the version and exit.")
	for _, f := range ignoredFlags {
		fs.Var(&flags.IgnoredFlag{Name: f}, f, "")
	}
	addZooFlags(fs)
	return cfg
}

// errExit is returned by parse when the invocation is over before any
// configuration is checked: help or version printed (code 0) or a flag
// that does not parse (code 2, with the flag package's message and the
// usage already on stderr), as etcd exits in those cases.
type errExit struct{ code int }

func (e errExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

func (cfg *config) getenv(key string) string {
	for i := len(cfg.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(cfg.environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// parse is etcdmain's parse: the command line, then either the config file
// (--config-file or ETCD_CONFIG_FILE; the other flags and the environment
// are then ignored) or the ETCD_* variables for flags not on the command
// line; then etcd's mappings of deprecated experimental flags onto their
// new names, its deprecation warnings and its validation (embed.Config's
// Validate, which also builds the logger that GetLogger returns).
func (cfg *config) parse(arguments []string) error {
	perr := cfg.cf.flagSet.Parse(arguments)
	switch {
	case perr == nil:
	case errors.Is(perr, flag.ErrHelp):
		printHelp(cfg.stdout, cfg.cf.flagSet)
		return errExit{0}
	default:
		return errExit{2}
	}
	if len(cfg.cf.flagSet.Args()) != 0 {
		return fmt.Errorf("%q is not a valid flag", cfg.cf.flagSet.Arg(0))
	}

	if cfg.printVersion {
		printVersion(cfg.stdout)
		return errExit{0}
	}

	var err error

	// This env variable must be parsed separately
	// because we need to determine whether to use or
	// ignore the env variables based on if the config file is set.
	if cfg.configFile == "" {
		cfg.configFile = cfg.getenv(flags.FlagToEnv("ETCD", "config-file"))
	}

	if cfg.configFile != "" {
		err = cfg.configFromFile(cfg.configFile)
		if lg := cfg.ec.GetLogger(); lg != nil {
			lg.Info(
				"loaded server configuration, other configuration command line flags and environment variables will be ignored if provided",
				zap.String("path", cfg.configFile),
			)
		}
	} else {
		err = cfg.configFromCmdLine()
	}

	// params related to experimental flag deprecation
	if cfg.ec.FlagsExplicitlySet["experimental-compact-hash-check-time"] {
		cfg.ec.CompactHashCheckTime = cfg.ec.ExperimentalCompactHashCheckTime
	}
	if cfg.ec.FlagsExplicitlySet["experimental-corrupt-check-time"] {
		cfg.ec.CorruptCheckTime = cfg.ec.ExperimentalCorruptCheckTime
	}
	if cfg.ec.FlagsExplicitlySet["experimental-compaction-batch-limit"] {
		cfg.ec.CompactionBatchLimit = cfg.ec.ExperimentalCompactionBatchLimit
	}
	if cfg.ec.FlagsExplicitlySet["experimental-watch-progress-notify-interval"] {
		cfg.ec.WatchProgressNotifyInterval = cfg.ec.ExperimentalWatchProgressNotifyInterval
	}
	if cfg.ec.FlagsExplicitlySet["experimental-warning-apply-duration"] {
		cfg.ec.WarningApplyDuration = cfg.ec.ExperimentalWarningApplyDuration
	}
	if cfg.ec.FlagsExplicitlySet["experimental-bootstrap-defrag-threshold-megabytes"] {
		cfg.ec.BootstrapDefragThresholdMegabytes = cfg.ec.ExperimentalBootstrapDefragThresholdMegabytes
	}
	if cfg.ec.FlagsExplicitlySet["experimental-peer-skip-client-san-verification"] {
		cfg.ec.PeerTLSInfo.SkipClientSANVerify = cfg.ec.ExperimentalPeerSkipClientSanVerification
	}
	if cfg.ec.FlagsExplicitlySet["experimental-memory-mlock"] {
		cfg.ec.MemoryMlock = cfg.ec.ExperimentalMemoryMlock
	}
	if cfg.ec.FlagsExplicitlySet["experimental-snapshot-catchup-entries"] {
		cfg.ec.SnapshotCatchUpEntries = cfg.ec.ExperimentalSnapshotCatchUpEntries
	}
	if cfg.ec.FlagsExplicitlySet["experimental-compaction-sleep-interval"] {
		cfg.ec.CompactionSleepInterval = cfg.ec.ExperimentalCompactionSleepInterval
	}
	if cfg.ec.FlagsExplicitlySet["experimental-downgrade-check-time"] {
		cfg.ec.DowngradeCheckTime = cfg.ec.ExperimentalDowngradeCheckTime
	}
	if cfg.ec.FlagsExplicitlySet["experimental-enable-distributed-tracing"] {
		cfg.ec.EnableDistributedTracing = cfg.ec.ExperimentalEnableDistributedTracing
	}
	if cfg.ec.FlagsExplicitlySet["experimental-distributed-tracing-address"] {
		cfg.ec.DistributedTracingAddress = cfg.ec.ExperimentalDistributedTracingAddress
	}
	if cfg.ec.FlagsExplicitlySet["experimental-distributed-tracing-service-name"] {
		cfg.ec.DistributedTracingServiceName = cfg.ec.ExperimentalDistributedTracingServiceName
	}
	if cfg.ec.FlagsExplicitlySet["experimental-distributed-tracing-instance-id"] {
		cfg.ec.DistributedTracingServiceInstanceID = cfg.ec.ExperimentalDistributedTracingServiceInstanceID
	}
	if cfg.ec.FlagsExplicitlySet["experimental-distributed-tracing-sampling-rate"] {
		cfg.ec.DistributedTracingSamplingRatePerMillion = cfg.ec.ExperimentalDistributedTracingSamplingRatePerMillion
	}

	// --v2-deprecation can only be V2DeprDefault or V2Depr1WriteOnlySkipCheck;
	// etcd ignores other user input.
	if cfg.ec.V2Deprecation != cconfig.V2Depr1WriteOnlySkipCheck {
		cfg.ec.V2Deprecation = cconfig.V2DeprDefault
	}

	cfg.ec.WarningUnaryRequestDuration, perr = cfg.parseWarningUnaryRequestDuration()
	if perr != nil {
		return perr
	}

	// Check for deprecated options from both command line and config file.
	if lg := cfg.ec.GetLogger(); lg != nil {
		for _, f := range flagTable { // in table order, not map order
			if msg, ok := deprecatedFlags[f.Name]; ok && cfg.ec.FlagsExplicitlySet[f.Name] {
				lg.Warn(msg)
			}
		}
	}
	return err
}

func (cfg *config) configFromCmdLine() error {
	// user-specified logger is not setup yet, use this logger during flag parsing
	lg, err := defaultLogger(cfg.stderr)
	if err != nil {
		return err
	}
	verKey := "ETCD_VERSION"
	if verVal := cfg.getenv(verKey); verVal != "" {
		lg.Warn(
			"cannot set special environment variable",
			zap.String("key", verKey),
			zap.String("value", verVal),
		)
	}

	// etcd unsets ETCD_VERSION before reading the environment, so that it
	// cannot set --version.
	environ := make([]string, 0, len(cfg.environ))
	for _, kv := range cfg.environ {
		if !strings.HasPrefix(kv, verKey+"=") {
			environ = append(environ, kv)
		}
	}
	if err := setFlagsFromEnv(lg, "ETCD", cfg.cf.flagSet, environ); err != nil {
		return err
	}

	if rafthttp.ConnReadTimeout < rafthttp.DefaultConnReadTimeout {
		rafthttp.ConnReadTimeout = rafthttp.DefaultConnReadTimeout
		lg.Info(fmt.Sprintf("raft-read-timeout increased to minimum value: %v", rafthttp.DefaultConnReadTimeout))
	}
	if rafthttp.ConnWriteTimeout < rafthttp.DefaultConnWriteTimeout {
		rafthttp.ConnWriteTimeout = rafthttp.DefaultConnWriteTimeout
		lg.Info(fmt.Sprintf("raft-write-timeout increased to minimum value: %v", rafthttp.DefaultConnWriteTimeout))
	}

	fs := cfg.cf.flagSet
	cfg.ec.ListenPeerUrls = flags.UniqueURLsFromFlag(fs, "listen-peer-urls")
	cfg.ec.AdvertisePeerUrls = flags.UniqueURLsFromFlag(fs, "initial-advertise-peer-urls")
	cfg.ec.ListenClientUrls = flags.UniqueURLsFromFlag(fs, "listen-client-urls")
	cfg.ec.ListenClientHttpUrls = flags.UniqueURLsFromFlag(fs, "listen-client-http-urls")
	cfg.ec.AdvertiseClientUrls = flags.UniqueURLsFromFlag(fs, "advertise-client-urls")
	cfg.ec.ListenMetricsUrls = flags.UniqueURLsFromFlag(fs, "listen-metrics-urls")

	cfg.ec.DiscoveryCfg.Endpoints = flags.UniqueStringsFromFlag(fs, "discovery-endpoints")

	cfg.ec.CORS = flags.UniqueURLsMapFromFlag(fs, "cors")
	cfg.ec.HostWhitelist = flags.UniqueStringsMapFromFlag(fs, "host-whitelist")

	cfg.ec.ClientTLSInfo.AllowedHostnames = flags.StringsFromFlag(fs, "client-cert-allowed-hostname")
	cfg.ec.PeerTLSInfo.AllowedCNs = flags.StringsFromFlag(fs, "peer-cert-allowed-cn")
	cfg.ec.PeerTLSInfo.AllowedHostnames = flags.StringsFromFlag(fs, "peer-cert-allowed-hostname")

	cfg.ec.CipherSuites = flags.StringsFromFlag(fs, "cipher-suites")

	cfg.ec.MaxConcurrentStreams = flags.Uint32FromFlag(fs, "max-concurrent-streams")

	cfg.ec.LogOutputs = flags.UniqueStringsFromFlag(fs, "log-outputs")

	cfg.ec.ClusterState = cfg.cf.clusterState.String()

	cfg.ec.V2Deprecation = cconfig.V2DeprecationEnum(cfg.cf.v2deprecation.String())

	// disable default advertise-client-urls if lcurls is set
	missingAC := flags.IsSet(fs, "listen-client-urls") && !flags.IsSet(fs, "advertise-client-urls")
	if missingAC {
		cfg.ec.AdvertiseClientUrls = nil
	}

	// disable default initial-cluster if discovery is set
	if (cfg.ec.Durl != "" || cfg.ec.DNSCluster != "" || cfg.ec.DNSClusterServiceName != "" || len(cfg.ec.DiscoveryCfg.Endpoints) > 0) && !flags.IsSet(fs, "initial-cluster") {
		cfg.ec.InitialCluster = ""
	}

	fs.Visit(func(f *flag.Flag) {
		cfg.ec.FlagsExplicitlySet[f.Name] = true
	})

	var boolErr error
	getBoolFlagVal := func(flagName string) *bool {
		boolVal, parseErr := flags.GetBoolFlagVal(fs, flagName)
		if parseErr != nil && boolErr == nil {
			boolErr = parseErr // etcd panics here; it cannot happen for a parsed bool flag
		}
		return boolVal
	}

	// SetFeatureGatesFromExperimentalFlags validates that cmd line flags for experimental feature and their feature gates are not explicitly set simultaneously,
	// and passes the values of cmd line flags for experimental feature to the server feature gate.
	err = embed.SetFeatureGatesFromExperimentalFlags(cfg.ec.ServerFeatureGate, getBoolFlagVal, fs.Lookup(embed.ServerFeatureGateFlagName).Value.String())
	if err != nil {
		return err
	}
	if boolErr != nil {
		return boolErr
	}

	return cfg.validate()
}

func (cfg *config) configFromFile(path string) error {
	if err := preflightLogLevel(cfg.ec.LogLevel); err != nil {
		return err
	}
	eCfg, err := embed.ConfigFromFile(path)
	if err != nil {
		return err
	}
	cfg.ec = *eCfg
	// ConfigFromFile validated, and so built its logger, on the process's
	// stderr; from here on log to cfg.stderr, as the command line path does.
	cfg.ec.ZapLoggerBuilder = nil
	if cfg.useStderr(); cfg.ec.ZapLoggerBuilder != nil {
		return cfg.ec.ZapLoggerBuilder(&cfg.ec)
	}
	return nil
}

func (cfg *config) validate() error {
	if cfg.cf.fallback.String() == fallbackFlagProxy {
		return fmt.Errorf("v2 proxy is deprecated, and --discovery-fallback can't be configured as %q", fallbackFlagProxy)
	}
	if err := preflightLogLevel(cfg.ec.LogLevel); err != nil {
		return err
	}
	cfg.useStderr()
	return cfg.ec.Validate()
}

// preflightLogLevel refuses an unknown --log-level with the message of the
// panic with which etcd 3.6 stops in that case (logutil.ConvertToZapLevel).
func preflightLogLevel(level string) error {
	var l zapcore.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("unrecognized level: %q", level)
	}
	return nil
}

// useStderr makes embed.Config's logger, when its output is the process's
// standard error ("default" or "stderr", as in every manifest), write to
// cfg.stderr instead, so that run's caller sees the log; otherwise etcd's
// own logger set-up (files, stdout, journald) is used unchanged.
func (cfg *config) useStderr() {
	if cfg.ec.Logger != "zap" || cfg.ec.ZapLoggerBuilder != nil || cfg.ec.EnableLogRotation {
		return
	}
	for _, o := range cfg.ec.LogOutputs {
		if o != embed.DefaultLogOutput && o != embed.StdErrLogOutput {
			return
		}
	}
	format, err := logutil.ConvertToZapFormat(cfg.ec.LogFormat)
	if err != nil {
		return // Validate reports it
	}
	lg := etcdlog.NewWithEncoding(zapcore.Lock(zapcore.AddSync(cfg.stderr)), logutil.ConvertToZapLevel(cfg.ec.LogLevel), format)
	cfg.ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
}

// defaultLogger is etcd's logger for the time before the configured one
// exists (logutil.CreateDefaultZapLogger(zap.InfoLevel)), writing to w.
func defaultLogger(w io.Writer) (*zap.Logger, error) {
	return etcdlog.New(zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel), nil
}

func (cfg *config) parseWarningUnaryRequestDuration() (time.Duration, error) {
	if cfg.ec.ExperimentalWarningUnaryRequestDuration != 0 && cfg.ec.WarningUnaryRequestDuration != 0 {
		return 0, errors.New(
			"both --experimental-warning-unary-request-duration and --warning-unary-request-duration flags are set. " +
				"Use only --warning-unary-request-duration")
	}
	if cfg.ec.WarningUnaryRequestDuration != 0 {
		return cfg.ec.WarningUnaryRequestDuration, nil
	}
	if cfg.ec.ExperimentalWarningUnaryRequestDuration != 0 {
		if lg := cfg.ec.GetLogger(); lg != nil {
			lg.Warn(
				"--experimental-warning-unary-request-duration is deprecated, and will be decommissioned in v3.7. " +
					"Use --warning-unary-request-duration instead.")
		}
		return cfg.ec.ExperimentalWarningUnaryRequestDuration, nil
	}
	return embed.DefaultWarningUnaryRequestDuration, nil
}

// errShadowed is etcd's fatal error for an ETCD_* variable whose flag is
// also on the command line.
type errShadowed struct{ key string }

func (e errShadowed) Error() string {
	return "conflicting environment variable " + e.key + " is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"
}

// setFlagsFromEnv is etcd's flags.SetFlagsFromEnv over environ: every flag
// not on the command line is set from its ETCD_* variable, with etcd's log
// lines. Where etcd logs at fatal level and exits (a variable shadowed by
// its flag on the command line), the line is logged at fatal level and
// errShadowed returned.
func setFlagsFromEnv(lg *zap.Logger, prefix string, fs *flag.FlagSet, environ []string) error {
	var err error
	alreadySet := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) {
		alreadySet[flags.FlagToEnv(prefix, f.Name)] = true
	})
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	usedEnvKey := make(map[string]bool)
	fs.VisitAll(func(f *flag.Flag) {
		key := flags.FlagToEnv(prefix, f.Name)
		if alreadySet[key] {
			return
		}
		if val := env[key]; val != "" {
			usedEnvKey[key] = true
			if serr := fs.Set(f.Name, val); serr != nil {
				err = fmt.Errorf("invalid value %q for %s: %w", val, key, serr)
				return
			}
			lg.Info(
				"recognized and used environment variable",
				zap.String("variable-name", key),
				zap.String("variable-value", val),
			)
		}
	})
	// verifyEnv
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			lg.Warn("found invalid environment variable", zap.String("environment-variable", kv))
		}
		if usedEnvKey[k] {
			continue
		}
		if alreadySet[k] {
			lg.WithOptions(zap.WithFatalHook(noExit{})).Fatal(
				"conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))",
				zap.String("environment-variable", k),
			)
			return errShadowed{k}
		}
		if strings.HasPrefix(kv, prefix+"_") {
			lg.Warn("unrecognized environment variable", zap.String("environment-variable", kv))
		}
	}
	return err
}

// noExit is a fatal hook that returns: run decides the exit.
type noExit struct{}

func (noExit) OnWrite(*zapcore.CheckedEntry, []zapcore.Field) {}

// printVersion prints etcd's version lines, then quorumd's own.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "etcd Version: %s\n", version.Version)
	fmt.Fprintf(w, "Git SHA: %s\n", version.GitSHA)
	fmt.Fprintf(w, "Go Version: %s\n", runtime.Version())
	fmt.Fprintf(w, "Go OS/Arch: %s/%s\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "quorumd Version: %s\n", server.Version)
}
