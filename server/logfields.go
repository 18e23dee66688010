package server

import (
	"log/slog"
	"net/url"
	"runtime"
	"sort"
	"strings"
)

// The log lines operators and tools key on are etcd's: the same msg at the
// same moment, with etcd's field names (etcd 3.6, embed/etcd.go,
// embed/serve.go, etcdserver/server.go). This file builds their fields.

// urlStrings is us as etcd logs a URL list (zap.Strings).
func urlStrings(us []url.URL) []string {
	s := make([]string, len(us))
	for i := range us {
		s[i] = us[i].String()
	}
	return s
}

// formatInitialCluster is cfg.InitialCluster as etcd's types.URLsMap
// prints it: name=url pairs sorted, comma-separated.
func formatInitialCluster(ic map[string][]url.URL) string {
	var pairs []string
	for name, us := range ic {
		for _, u := range us {
			pairs = append(pairs, name+"="+u.String())
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// logStarting writes etcd's "starting an etcd server" line (embed/etcd.go
// print) with the fields quorumd has, plus quorumd-version.
func logStarting(lg *slog.Logger, cfg *Config, memberDir string, initialized bool) {
	lg.Info("starting an etcd server",
		"etcd-version", ReportedServerVersion,
		"quorumd-version", Version,
		"go-version", runtime.Version(),
		"go-os", runtime.GOOS,
		"go-arch", runtime.GOARCH,
		"max-cpu-set", runtime.GOMAXPROCS(0),
		"max-cpu-available", runtime.NumCPU(),
		"member-initialized", initialized,
		"name", cfg.Name,
		"data-dir", cfg.DataDir,
		"wal-dir", cfg.WALDir,
		"wal-dir-dedicated", cfg.WALDir,
		"member-dir", memberDir,
		"force-new-cluster", cfg.ForceNewCluster,
		"heartbeat-interval", cfg.HeartbeatInterval.String(),
		"election-timeout", cfg.ElectionTimeout.String(),
		"snapshot-count", cfg.SnapshotCount,
		"snapshot-catchup-entries", cfg.SnapshotCatchUpEntries,
		"initial-advertise-peer-urls", urlStrings(cfg.InitialAdvertisePeerURLs),
		"listen-peer-urls", urlStrings(cfg.ListenPeerURLs),
		"advertise-client-urls", urlStrings(cfg.AdvertiseClientURLs),
		"listen-client-urls", urlStrings(cfg.ListenClientURLs),
		"listen-metrics-urls", urlStrings(cfg.ListenMetricsURLs),
		"initial-cluster", formatInitialCluster(cfg.InitialCluster),
		"initial-cluster-state", cfg.InitialClusterState,
		"initial-cluster-token", cfg.InitialClusterToken,
		"quota-backend-bytes", cfg.QuotaBackendBytes,
		"max-request-bytes", cfg.MaxRequestBytes,
		"pre-vote", true,
		"auto-compaction-mode", cfg.AutoCompactionMode,
		"auto-compaction-retention", cfg.AutoCompactionRetention,
		"auto-compaction-interval", cfg.AutoCompactionRetention.String(),
	)
}

// closeFields are the fields of etcd's "closing etcd server" and "closed
// etcd server" lines.
func closeFields(cfg *Config) []any {
	return []any{
		"name", cfg.Name,
		"data-dir", cfg.DataDir,
		"advertise-peer-urls", urlStrings(cfg.InitialAdvertisePeerURLs),
		"advertise-client-urls", urlStrings(cfg.AdvertiseClientURLs),
	}
}
