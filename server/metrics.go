package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// serverMetrics are the Prometheus metrics a member exports on /metrics,
// named as etcd's where etcd has the same metric so that dashboards and
// alerts written for etcd read quorumd unchanged. Each Server has its own
// registry (no global state), so several members can live in one process.
type serverMetrics struct {
	reg *prometheus.Registry

	hasLeader          prometheus.Gauge
	isLeader           prometheus.Gauge
	leaderChanges      prometheus.Counter
	proposalsCommitted prometheus.Gauge
	proposalsApplied   prometheus.Gauge
	proposalsPending   prometheus.Gauge
	proposalsFailed    prometheus.Counter
	slowReadIndex      prometheus.Counter
	readIndexFailed    prometheus.Counter
	walFsync           prometheus.Histogram
	snapshotSave       prometheus.Histogram
	applyDuration      prometheus.Histogram
	dbSize             prometheus.Gauge
	peerDropped        *prometheus.CounterVec
	snapshotsSent      prometheus.Counter
}

func newServerMetrics() *serverMetrics {
	m := &serverMetrics{reg: prometheus.NewRegistry()}
	g := func(sub, name, help string) prometheus.Gauge {
		x := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: sub, Name: name, Help: help})
		m.reg.MustRegister(x)
		return x
	}
	c := func(sub, name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: sub, Name: name, Help: help})
		m.reg.MustRegister(x)
		return x
	}
	h := func(sub, name, help string) prometheus.Histogram {
		x := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: sub, Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)})
		m.reg.MustRegister(x)
		return x
	}
	m.hasLeader = g("server", "has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.")
	m.isLeader = g("server", "is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.")
	m.leaderChanges = c("server", "leader_changes_seen_total", "The number of leader changes seen.")
	m.proposalsCommitted = g("server", "proposals_committed_total", "The total number of consensus proposals committed.")
	m.proposalsApplied = g("server", "proposals_applied_total", "The total number of consensus proposals applied.")
	m.proposalsPending = g("server", "proposals_pending", "The current number of pending proposals to commit.")
	m.proposalsFailed = c("server", "proposals_failed_total", "The total number of failed proposals seen.")
	m.slowReadIndex = c("server", "slow_read_indexes_total", "The total number of pending read indexes not in sync with leader's or timed out read index requests.")
	m.readIndexFailed = c("server", "read_indexes_failed_total", "The total number of failed read indexes seen.")
	m.walFsync = h("disk", "wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.")
	m.snapshotSave = h("disk", "snapshot_save_total_duration_seconds", "The total latency distributions of save called by snapshot.")
	m.applyDuration = h("server", "apply_duration_seconds", "The latency distributions of v3 apply batches.")
	m.dbSize = g("mvcc", "db_total_size_in_bytes", "Total size of the keyspace in bytes (in-memory estimate).")
	m.peerDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network",
		Name: "peer_sent_failures_total", Help: "The total number of send failures to peers."}, []string{"To"})
	m.reg.MustRegister(m.peerDropped)
	m.snapshotsSent = c("network", "snapshot_send_success", "Total number of successful snapshot sends.")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
