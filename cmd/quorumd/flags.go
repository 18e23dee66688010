package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.etcd.io/etcd/pkg/v3/featuregate"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	"go.etcd.io/etcd/server/v3/features"
)

// flagClass is what quorumd does with one of etcd's flags.
type flagClass int

const (
	// asEtcd: honoured with etcd's meaning.
	asEtcd flagClass = iota
	// noEffect: accepted and validated as etcd does; set to a value other
	// than the default it is logged once at start-up as having no effect.
	noEffect
	// unsupported: accepted at its default; any other value stops
	// start-up with one line naming the flag and why.
	unsupported
	// ignoredAsEtcd: one of etcd's pre-v3 flags, which etcd itself
	// accepts and ignores with a warning (not in etcd's --help).
	ignoredAsEtcd
)

func (c flagClass) String() string {
	switch c {
	case asEtcd:
		return "as etcd"
	case noEffect:
		return "no effect"
	case unsupported:
		return "not supported"
	case ignoredAsEtcd:
		return "ignored, as etcd"
	}
	return fmt.Sprintf("flagClass(%d)", int(c))
}

// flagInfo is one row of flagTable.
type flagInfo struct {
	Name   string
	Class  flagClass
	Reason string // why it differs from etcd, or a note on how it is honoured
	// value reads the flag's effective value from a parsed embed.Config
	// (flag, environment or config file alike); a flag is "set" when this
	// differs from its value in embed.NewConfig(). Required for noEffect
	// and unsupported.
	value func(*embed.Config) any
}

const (
	whyDiscovery   = "DNS SRV discovery is not implemented in quorumd: use --discovery-endpoints and --discovery-token, or --discovery, or list the members in --initial-cluster"
	whyV3Discovery = "v3 discovery: a new member registers and finds its cluster through etcd's own v3discovery client, on an empty data dir only (server/bootstrap.go discover)"
	whyV2Discovery = "v2 discovery (deprecated by etcd 3.6, as etcd warns): a new member registers and finds its cluster through etcd's own v2discovery client, on an empty data dir only"
	whyBolt        = "bbolt tuning: quorumd's keyspace is not a bbolt file (server/mvcc keeps it in memory, durable through the WAL and snapshots)"
	whyTracing     = "every gRPC request served is a span (otelgrpc's stats handler, as etcd's), exported over OTLP/gRPC in batches (server/tracing.go)"
	whyTraceOnly   = "used with --enable-distributed-tracing, as etcd"
	whyRetention   = "quorumd keeps the newest 3 snapshot files and releases WAL segments behind each snapshot (server/storage.go)"
	whyNoDefrag    = "quorumd has no bbolt file: Defragment rebuilds its in-memory store (writes wait; reads and the gRPC health service go on), and there is nothing to defragment at start-up"
	whyRaftHTTP    = "quorumd's peer transport (server/transport_stream.go) is not etcd's rafthttp and keeps its own timeouts"
)

// flagTable lists every flag of etcd 3.6.16 (embed.Config's AddFlags and
// etcdmain's own) with what quorumd does with it. docs/flags.md is
// generated from it (TestDocsFlagsIsGenerated) and its flag set is
// checked against etcd's --help (TestFlagSetIsEtcds).
var flagTable = append(etcdFlags, ignoredRows()...)

var etcdFlags = []flagInfo{
	// Member
	{Name: "name", Class: asEtcd},
	{Name: "data-dir", Class: asEtcd},
	{Name: "wal-dir", Class: asEtcd, Reason: "the WAL's segments in that directory instead of <data-dir>/member/wal; a member created without it refuses to start with it (and the reverse finds no WAL, as etcd)"},
	{Name: "snapshot-count", Class: asEtcd},
	{Name: "heartbeat-interval", Class: asEtcd},
	{Name: "election-timeout", Class: asEtcd},
	{Name: "initial-election-tick-advance", Class: asEtcd, Reason: "a starting member fast-forwards its election ticks once its streams to more than one peer are up, as etcd's adjustTicks (a single-member cluster always does; server/ticks.go)"},
	{Name: "listen-peer-urls", Class: asEtcd, Reason: "http and https (unix sockets are refused)"},
	{Name: "listen-client-urls", Class: asEtcd, Reason: "http and https, both on one address if two URLs name it (unix sockets are refused)"},
	{Name: "listen-client-http-urls", Class: asEtcd, Reason: "HTTP alone (health, metrics, version, the grpc-gateway) on these, gRPC alone on --listen-client-urls, as etcd's serveCtx.serve; an address in both is refused"},
	{Name: "max-snapshots", Class: noEffect, Reason: whyRetention, value: func(c *embed.Config) any { return c.MaxSnapFiles }},
	{Name: "max-wals", Class: noEffect, Reason: whyRetention, value: func(c *embed.Config) any { return c.MaxWalFiles }},
	{Name: "memory-mlock", Class: noEffect, Reason: whyBolt, value: func(c *embed.Config) any { return c.MemoryMlock }},
	{Name: "quota-backend-bytes", Class: asEtcd, Reason: "the quota applies to quorumd's keyspace size; negative disables it, as etcd"},
	{Name: "backend-bbolt-freelist-type", Class: noEffect, Reason: whyBolt, value: func(c *embed.Config) any { return c.BackendFreelistType }},
	{Name: "backend-batch-interval", Class: noEffect, Reason: whyBolt, value: func(c *embed.Config) any { return c.BackendBatchInterval }},
	{Name: "backend-batch-limit", Class: noEffect, Reason: whyBolt, value: func(c *embed.Config) any { return c.BackendBatchLimit }},
	{Name: "max-txn-ops", Class: asEtcd},
	{Name: "max-request-bytes", Class: asEtcd},
	{Name: "max-concurrent-streams", Class: asEtcd},
	{Name: "grpc-keepalive-min-time", Class: asEtcd},
	{Name: "grpc-keepalive-interval", Class: asEtcd},
	{Name: "grpc-keepalive-timeout", Class: asEtcd},
	{Name: "socket-reuse-port", Class: asEtcd, Reason: "SO_REUSEPORT on every peer, client and metrics listener"},
	{Name: "socket-reuse-address", Class: asEtcd, Reason: "SO_REUSEADDR on every peer, client and metrics listener"},
	{Name: "enable-grpc-gateway", Class: asEtcd, Reason: "etcd's grpc-gateway (JSON over HTTP at /v3/..., websockets for streams), etcd's own generated handlers over the member's in-memory client connection (server/front_self.go)"},
	{Name: "raft-read-timeout", Class: noEffect, Reason: whyRaftHTTP, value: func(*embed.Config) any { return rafthttp.ConnReadTimeout }},
	{Name: "raft-write-timeout", Class: noEffect, Reason: whyRaftHTTP, value: func(*embed.Config) any { return rafthttp.ConnWriteTimeout }},
	{Name: "feature-gates", Class: noEffect, Reason: "InitialCorruptCheck and CompactHashCheck (server/corrupt.go), LeaseCheckpoint and LeaseCheckpointPersist (server/lease.go) are honoured, as etcd; none of etcd's other feature gates (SetMemberLocalAddr, StopGRPCServiceOnDefrag, TxnModeWriteWithSharedBuffer) has a counterpart in quorumd yet", value: featureGatesSet},

	// Clustering
	{Name: "initial-advertise-peer-urls", Class: asEtcd},
	{Name: "initial-cluster", Class: asEtcd},
	{Name: "initial-cluster-state", Class: asEtcd},
	{Name: "initial-cluster-token", Class: asEtcd},
	{Name: "advertise-client-urls", Class: asEtcd},
	{Name: "discovery", Class: asEtcd, Reason: whyV2Discovery},
	{Name: "discovery-token", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-endpoints", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-dial-timeout", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-request-timeout", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-keepalive-time", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-keepalive-timeout", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-insecure-transport", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-insecure-skip-tls-verify", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-cert", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-key", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-cacert", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-user", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-password", Class: asEtcd, Reason: whyV3Discovery},
	{Name: "discovery-fallback", Class: asEtcd, Reason: "'exit' is the only value etcd 3.6 accepts"},
	{Name: "discovery-proxy", Class: asEtcd, Reason: whyV2Discovery},
	{Name: "discovery-srv", Class: unsupported, Reason: whyDiscovery, value: func(c *embed.Config) any { return c.DNSCluster }},
	{Name: "discovery-srv-name", Class: unsupported, Reason: whyDiscovery, value: func(c *embed.Config) any { return c.DNSClusterServiceName }},
	{Name: "strict-reconfig-check", Class: asEtcd, Reason: "refuses a member add, remove or promote that would leave too few started or connected members, with etcd's errors"},
	{Name: "pre-vote", Class: asEtcd},
	{Name: "auto-compaction-retention", Class: asEtcd},
	{Name: "auto-compaction-mode", Class: asEtcd},
	{Name: "v2-deprecation", Class: asEtcd, Reason: "etcd 3.6 enforces the default; quorumd has no v2 store at all"},

	// Security
	{Name: "cert-file", Class: asEtcd, Reason: "etcd's TLSInfo (go.etcd.io/etcd/client/pkg/v3/transport): read at every handshake, so a certificate rotated on disk is used by the next connection"},
	{Name: "key-file", Class: asEtcd, Reason: "read at every handshake with --cert-file; a key that does not match stops start-up naming both flags"},
	{Name: "client-cert-auth", Class: asEtcd},
	{Name: "client-cert-file", Class: asEtcd, Reason: "etcd uses it when the member dials its own client port for the grpc-gateway; quorumd's gateway uses an in-memory connection instead, so it is validated at start-up as etcd does and otherwise unused"},
	{Name: "client-key-file", Class: asEtcd, Reason: "see --client-cert-file"},
	{Name: "client-crl-file", Class: asEtcd, Reason: "read at every accepted connection, as etcd; quorumd also refuses an unreadable file at start-up (etcd would reject every connection)"},
	{Name: "client-cert-allowed-hostname", Class: asEtcd},
	{Name: "trusted-ca-file", Class: asEtcd, Reason: "also turns client certificate checking on, as in etcd"},
	{Name: "auto-tls", Class: asEtcd, Reason: "etcd's self-signed certificates under <data-dir>/fixtures/client"},
	{Name: "peer-cert-file", Class: asEtcd, Reason: "served on https peer URLs and presented as the client certificate when dialing peers (streams, snapshots, probes, lease forwarding)"},
	{Name: "peer-key-file", Class: asEtcd},
	{Name: "peer-client-cert-auth", Class: asEtcd},
	{Name: "peer-client-cert-file", Class: asEtcd},
	{Name: "peer-client-key-file", Class: asEtcd},
	{Name: "peer-trusted-ca-file", Class: asEtcd},
	{Name: "peer-cert-allowed-cn", Class: asEtcd},
	{Name: "peer-cert-allowed-hostname", Class: asEtcd},
	{Name: "peer-auto-tls", Class: asEtcd, Reason: "etcd's self-signed certificates under <data-dir>/fixtures/peer; peers are dialed without verification, as etcd"},
	{Name: "self-signed-cert-validity", Class: asEtcd},
	{Name: "peer-crl-file", Class: asEtcd, Reason: "read at every accepted connection, as etcd; quorumd also refuses an unreadable file at start-up"},
	{Name: "cipher-suites", Class: asEtcd, Reason: "etcd's tlsutil names; applies to the client and peer ports"},
	{Name: "cors", Class: asEtcd, Reason: "etcd's CORS headers on every client HTTP answer (default *), OPTIONS answered 200 (server/front.go accessController)"},
	{Name: "host-whitelist", Class: asEtcd, Reason: "plaintext HTTP requests to the client URLs naming another host get etcd's 421 and its explanation"},
	{Name: "tls-min-version", Class: asEtcd},
	{Name: "tls-max-version", Class: asEtcd},
	{Name: "experimental-peer-skip-client-san-verification", Class: asEtcd},
	{Name: "peer-skip-client-san-verification", Class: asEtcd},

	// Auth
	{Name: "auth-token", Class: asEtcd, Reason: "etcd's own token providers (go.etcd.io/etcd/server/v3/auth): simple or jwt"},
	{Name: "bcrypt-cost", Class: asEtcd},
	{Name: "auth-token-ttl", Class: asEtcd},

	// Profiling and monitoring
	{Name: "enable-pprof", Class: asEtcd},
	{Name: "metrics", Class: asEtcd},
	{Name: "listen-metrics-urls", Class: asEtcd, Reason: "https with the client certificate, as etcd"},

	// Logging
	{Name: "logger", Class: asEtcd, Reason: "etcd's own logger set-up (embed.Config)"},
	{Name: "log-outputs", Class: asEtcd, Reason: "etcd's own logger set-up (embed.Config)"},
	{Name: "log-level", Class: asEtcd, Reason: "an unknown level is refused with the message of etcd's panic, without the panic"},
	{Name: "log-format", Class: asEtcd, Reason: "etcd's own logger set-up (embed.Config)"},
	{Name: "enable-log-rotation", Class: asEtcd, Reason: "etcd's own logger set-up (embed.Config)"},
	{Name: "log-rotation-config-json", Class: asEtcd, Reason: "etcd's own logger set-up (embed.Config)"},
	{Name: "warning-unary-request-duration", Class: asEtcd, Reason: "a unary RPC slower than this is logged with etcd's \"request stats\" line (server/slowlog.go)"},
	{Name: "experimental-warning-unary-request-duration", Class: asEtcd, Reason: "a unary RPC slower than this is logged with etcd's \"request stats\" line (server/slowlog.go)"},

	// Distributed tracing
	{Name: "experimental-enable-distributed-tracing", Class: asEtcd, Reason: whyTracing},
	{Name: "enable-distributed-tracing", Class: asEtcd, Reason: whyTracing},
	{Name: "experimental-distributed-tracing-address", Class: asEtcd, Reason: whyTraceOnly},
	{Name: "distributed-tracing-address", Class: asEtcd, Reason: whyTraceOnly},
	{Name: "experimental-distributed-tracing-service-name", Class: asEtcd, Reason: whyTraceOnly},
	{Name: "distributed-tracing-service-name", Class: asEtcd, Reason: whyTraceOnly},
	{Name: "experimental-distributed-tracing-instance-id", Class: asEtcd, Reason: whyTraceOnly},
	{Name: "distributed-tracing-instance-id", Class: asEtcd, Reason: whyTraceOnly},
	{Name: "experimental-distributed-tracing-sampling-rate", Class: asEtcd, Reason: whyTraceOnly},
	{Name: "distributed-tracing-sampling-rate", Class: asEtcd, Reason: whyTraceOnly},

	// Experimental features
	{Name: "experimental-initial-corrupt-check", Class: asEtcd, Reason: "the InitialCorruptCheck feature gate: a restarting member compares its HashKV with its peers' before serving and refuses to start on a mismatch (server/corrupt.go)"},
	{Name: "experimental-corrupt-check-time", Class: asEtcd, Reason: "mapped onto --corrupt-check-time, as etcd"},
	{Name: "corrupt-check-time", Class: asEtcd, Reason: "the leader compares every member's HashKV at this interval and raises the CORRUPT alarm on a mismatch (server/corrupt.go)"},
	{Name: "experimental-compact-hash-check-enabled", Class: asEtcd, Reason: "the CompactHashCheck feature gate: the leader compares the hashes members stored at their compactions and raises CORRUPT for the odd ones out (server/corrupt.go)"},
	{Name: "experimental-compact-hash-check-time", Class: asEtcd, Reason: "mapped onto --compact-hash-check-time, as etcd"},
	{Name: "compact-hash-check-time", Class: asEtcd, Reason: "how often the leader runs the compaction hash check (with CompactHashCheck)"},
	{Name: "experimental-enable-lease-checkpoint", Class: asEtcd, Reason: "the LeaseCheckpoint feature gate: every 5 minutes the leader records each longer lease's remaining TTL through Raft, and a new leader extends the lease by what was left (server/lease.go)"},
	{Name: "experimental-enable-lease-checkpoint-persist", Class: asEtcd, Reason: "the LeaseCheckpointPersist feature gate (refused without LeaseCheckpoint, as etcd): checkpointed remaining TTLs are kept across restarts, in the WAL and snapshots, as etcd 3.6 keeps them whether it is set or not"},
	{Name: "experimental-compaction-batch-limit", Class: noEffect, Reason: "quorumd compacts its in-memory keyspace in one step", value: func(c *embed.Config) any { return c.ExperimentalCompactionBatchLimit }},
	{Name: "compaction-batch-limit", Class: noEffect, Reason: "quorumd compacts its in-memory keyspace in one step", value: func(c *embed.Config) any { return c.CompactionBatchLimit }},
	{Name: "experimental-compaction-sleep-interval", Class: noEffect, Reason: "quorumd compacts its in-memory keyspace in one step", value: func(c *embed.Config) any { return c.ExperimentalCompactionSleepInterval }},
	{Name: "compaction-sleep-interval", Class: noEffect, Reason: "quorumd compacts its in-memory keyspace in one step", value: func(c *embed.Config) any { return c.CompactionSleepInterval }},
	{Name: "experimental-watch-progress-notify-interval", Class: asEtcd},
	{Name: "watch-progress-notify-interval", Class: asEtcd},
	{Name: "experimental-warning-apply-duration", Class: asEtcd, Reason: "an applied request, read-only range or txn slower than this is logged with etcd's \"apply request took too long\" line and counted in etcd_server_slow_apply_total (server/slowlog.go)"},
	{Name: "warning-apply-duration", Class: asEtcd, Reason: "an applied request, read-only range or txn slower than this is logged with etcd's \"apply request took too long\" line and counted in etcd_server_slow_apply_total (server/slowlog.go)"},
	{Name: "experimental-txn-mode-write-with-shared-buffer", Class: noEffect, Reason: whyBolt, value: func(c *embed.Config) any { return c.ExperimentalTxnModeWriteWithSharedBuffer }},
	{Name: "experimental-bootstrap-defrag-threshold-megabytes", Class: noEffect, Reason: whyNoDefrag, value: func(c *embed.Config) any { return c.ExperimentalBootstrapDefragThresholdMegabytes }},
	{Name: "bootstrap-defrag-threshold-megabytes", Class: noEffect, Reason: whyNoDefrag, value: func(c *embed.Config) any { return c.BootstrapDefragThresholdMegabytes }},
	{Name: "max-learners", Class: asEtcd},
	{Name: "experimental-downgrade-check-time", Class: noEffect, Reason: "quorumd does not implement etcd's cluster downgrade", value: func(c *embed.Config) any { return c.ExperimentalDowngradeCheckTime }},
	{Name: "downgrade-check-time", Class: noEffect, Reason: "quorumd does not implement etcd's cluster downgrade", value: func(c *embed.Config) any { return c.DowngradeCheckTime }},
	{Name: "experimental-memory-mlock", Class: noEffect, Reason: whyBolt, value: func(c *embed.Config) any { return c.ExperimentalMemoryMlock }},
	{Name: "experimental-snapshot-catchup-entries", Class: asEtcd},
	{Name: "snapshot-catchup-entries", Class: asEtcd},
	{Name: "experimental-stop-grpc-service-on-defrag", Class: noEffect, Reason: whyNoDefrag, value: func(c *embed.Config) any { return c.ExperimentalStopGRPCServiceOnDefrag }},

	// Unsafe
	{Name: "force-new-cluster", Class: asEtcd, Reason: "on a data dir with a WAL: the uncommitted tail is dropped and every other member removed through committed conf changes; the member serves alone (no effect on a new data dir)"},
	{Name: "unsafe-no-fsync", Class: asEtcd, Reason: "the WAL is never fsynced (snapshot files still are; etcd also skips its bbolt file's fsync, which quorumd does not have)"},

	// etcdmain's own
	{Name: "config-file", Class: asEtcd, Reason: "etcd's YAML schema and precedence (embed.ConfigFromFile)"},
	{Name: "version", Class: asEtcd, Reason: "etcd's lines, then a quorumd Version line"},
}

func ignoredRows() []flagInfo {
	rows := make([]flagInfo, len(ignoredFlags))
	for i, name := range ignoredFlags {
		rows[i] = flagInfo{Name: name, Class: ignoredAsEtcd, Reason: "etcd's pre-v3 flag; etcd ignores it with a warning"}
	}
	return rows
}

// lookupFlag returns the row for name.
func lookupFlag(name string) (flagInfo, bool) {
	for _, f := range flagTable {
		if f.Name == name {
			return f, true
		}
	}
	return flagInfo{}, false
}

// setFlag is a flag of class noEffect or unsupported whose value differs
// from etcd's default.
type setFlag struct {
	flagInfo
	Value any
}

// nonDefault returns, in table order, the noEffect and unsupported flags
// whose effective value in ec differs from their default. A new flag that a
// deprecated experimental flag maps onto is left out when only the
// experimental one was given, so that each setting is reported once.
func nonDefault(ec *embed.Config) []setFlag {
	def := embed.NewConfig()
	var out []setFlag
	for _, f := range flagTable {
		if f.value == nil || (f.Class != noEffect && f.Class != unsupported) {
			continue
		}
		v := f.value(ec)
		var d any
		switch f.Name {
		case "raft-read-timeout":
			d = rafthttp.DefaultConnReadTimeout
		case "raft-write-timeout":
			d = rafthttp.DefaultConnWriteTimeout
		default:
			d = f.value(def)
		}
		if reflect.DeepEqual(v, d) {
			continue
		}
		if old := "experimental-" + f.Name; ec.FlagsExplicitlySet[old] && !ec.FlagsExplicitlySet[f.Name] {
			if _, ok := lookupFlag(old); ok {
				continue
			}
		}
		out = append(out, setFlag{f, v})
	}
	return out
}

// featureGatesSet lists the feature gates that differ from etcd's
// defaults, leaving out those set through their deprecated experimental
// flag (reported under that flag) and those quorumd honours
// (honouredGates).
func featureGatesSet(c *embed.Config) any {
	viaFlag := map[string]bool{}
	for flagName, gate := range features.ExperimentalFlagToFeatureMap {
		if c.FlagsExplicitlySet[flagName] {
			viaFlag[string(gate)] = true
		}
	}
	var out []string
	for gate, spec := range features.DefaultEtcdServerFeatureGates {
		if on := c.ServerFeatureGate.Enabled(gate); on != spec.Default && !viaFlag[string(gate)] && !honouredGates[gate] {
			out = append(out, fmt.Sprintf("%s=%v", gate, on))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// honouredGates are the feature gates quorumd implements as etcd.
var honouredGates = map[featuregate.Feature]bool{
	features.InitialCorruptCheck: true, features.CompactHashCheck: true,
	features.LeaseCheckpoint: true, features.LeaseCheckpointPersist: true,
}
