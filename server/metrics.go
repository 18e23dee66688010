package server

import (
	"runtime"
	"strconv"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/quorum-kv/quorum/server/watch"
)

// serverMetrics are the Prometheus metrics a member exports on /metrics.
// Where etcd 3.6 has a metric for the same thing, it has etcd's name, type,
// help text, label names and buckets (etcdserver/metrics.go,
// storage/backend/metrics.go, storage/wal/metrics.go, storage/mvcc/metrics.go,
// etcdserver/api/rafthttp/metrics.go, etcdserver/api/v3rpc/metrics.go of
// go.etcd.io/etcd/server/v3), so that etcd's dashboards and alerts
// (contrib/mixin) read quorumd unchanged; server/testdata/mixin holds them
// and TestMixinMetricsExist checks every name they use.
//
// Each Server has its own registry (no global state), so several members
// can live in one process. The hot paths only touch counters, gauges and
// histograms resolved in advance (no label lookups per request).
type serverMetrics struct {
	reg *prometheus.Registry

	// etcd_server_*
	hasLeader          prometheus.Gauge
	isLeader           prometheus.Gauge
	leaderChanges      prometheus.Counter
	proposalsCommitted prometheus.Gauge
	proposalsApplied   prometheus.Gauge
	proposalsPending   prometheus.Gauge
	proposalsFailed    prometheus.Counter
	slowReadIndex      prometheus.Counter
	slowApply          prometheus.Counter // slowlog.go
	readIndexFailed    prometheus.Counter
	healthSuccess      prometheus.Counter
	healthFailures     prometheus.Counter
	serverID           *prometheus.GaugeVec
	quotaBackendBytes  prometheus.Gauge
	// applyDuration is etcd_server_apply_duration_seconds{version,op,success}
	// resolved for every op the applier knows: [op][success].
	applyDuration [numApplyOps][2]prometheus.Observer

	// etcd_disk_*, etcd_debugging_snap_*
	walFsync      prometheus.Histogram
	backendCommit prometheus.Histogram
	snapshotSave  prometheus.Histogram
	// defragDuration: a Defragment (defrag.go) on the applier.
	defragDuration prometheus.Histogram

	// etcd_mvcc_*
	rangeTotal  prometheus.Counter
	putTotal    prometheus.Counter
	deleteTotal prometheus.Counter
	txnTotal    prometheus.Counter

	// etcd_network_*, by peer (see peer)
	peerSentBytes        *prometheus.CounterVec
	peerReceivedBytes    *prometheus.CounterVec
	peerSentFailures     *prometheus.CounterVec
	peerRoundTrip        *prometheus.HistogramVec
	snapshotSend         *prometheus.CounterVec
	snapshotSendFailures *prometheus.CounterVec
	snapshotSendSeconds  *prometheus.HistogramVec
	snapshotReceive      *prometheus.CounterVec
	clientSentBytes      prometheus.Counter
	clientReceivedBytes  prometheus.Counter

	// etcd_debugging_lease_*
	leaseGranted, leaseRevoked, leaseRenewed prometheus.Counter
	leaseTTLs                                prometheus.Histogram

	// etcd_debugging_mvcc_* of the watchable store, and the watch
	// server's stream failures.
	watch          watch.Metrics
	watchEvents    watchEventsMetrics
	streamFailures *prometheus.CounterVec

	// grpc_server_*, registered by grpcServerMetrics.
	grpc *grpcprom.ServerMetrics
}

// watchEventsMetrics counts events handed from a watch stream to its
// client, as etcd's mvcc.ReportEventReceived.
type watchEventsMetrics struct {
	pending prometheus.Gauge
	total   prometheus.Counter
}

func (w watchEventsMetrics) received(n int) {
	if n == 0 {
		return
	}
	w.pending.Sub(float64(n))
	w.total.Add(float64(n))
}

// The ops of etcd_server_apply_duration_seconds, named as etcd's applier
// names them (etcdserver/apply/uber_applier.go dispatch).
const (
	applyOpPut = iota
	applyOpDeleteRange
	applyOpTxn
	applyOpCompaction
	applyOpMemberAttrSet
	applyOpLeaseGrant
	applyOpLeaseRevoke
	applyOpLeaseCheckpoint
	applyOpAuth
	applyOpAlarm
	applyOpUnknown
	numApplyOps
)

var applyOpNames = [numApplyOps]string{"Put", "DeleteRange", "Txn", "Compaction", "ClusterMemberAttrSet", "LeaseGrant", "LeaseRevoke", "LeaseCheckpoint", "Auth", "Alarm", "unknown"}

// refusedOp is the op of a request an alarm refused (alarmSet.refuse).
func refusedOp(r *pb.InternalRaftRequest) int {
	switch {
	case r.Put != nil:
		return applyOpPut
	case r.DeleteRange != nil:
		return applyOpDeleteRange
	case r.Txn != nil:
		return applyOpTxn
	case r.Compaction != nil:
		return applyOpCompaction
	case r.LeaseGrant != nil:
		return applyOpLeaseGrant
	case r.LeaseRevoke != nil:
		return applyOpLeaseRevoke
	}
	return applyOpUnknown
}

// reportedClusterVersion is the etcd_cluster_version label: the cluster
// version etcd reports, major.minor.
func reportedClusterVersion() string {
	v := ReportedServerVersion
	if i := strings.LastIndexByte(v, '.'); i > 0 {
		v = v[:i]
	}
	return v
}

func newServerMetrics() *serverMetrics {
	m := &serverMetrics{reg: prometheus.NewRegistry()}
	reg := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	gauge := func(ns, sub, name, help string) prometheus.Gauge {
		x := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
		reg(x)
		return x
	}
	counter := func(ns, sub, name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
		reg(x)
		return x
	}
	histogram := func(ns, sub, name, help string, buckets []float64) prometheus.Histogram {
		x := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help, Buckets: buckets})
		reg(x)
		return x
	}
	counterVec := func(sub, name, help, label string) *prometheus.CounterVec {
		x := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: sub, Name: name, Help: help}, []string{label})
		reg(x)
		return x
	}
	histogramVec := func(sub, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		x := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: sub, Name: name, Help: help, Buckets: buckets}, labels)
		reg(x)
		return x
	}
	info := func(sub, name, help, label, value string) *prometheus.GaugeVec {
		x := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: sub, Name: name, Help: help}, []string{label})
		reg(x)
		if value != "" {
			x.WithLabelValues(value).Set(1)
		}
		return x
	}

	// etcdserver/metrics.go
	m.hasLeader = gauge("etcd", "server", "has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.")
	m.isLeader = gauge("etcd", "server", "is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.")
	m.leaderChanges = counter("etcd", "server", "leader_changes_seen_total", "The number of leader changes seen.")
	m.proposalsCommitted = gauge("etcd", "server", "proposals_committed_total", "The total number of consensus proposals committed.")
	m.proposalsApplied = gauge("etcd", "server", "proposals_applied_total", "The total number of consensus proposals applied.")
	m.proposalsPending = gauge("etcd", "server", "proposals_pending", "The current number of pending proposals to commit.")
	m.proposalsFailed = counter("etcd", "server", "proposals_failed_total", "The total number of failed proposals seen.")
	m.slowApply = counter("etcd", "server", "slow_apply_total", "The total number of slow apply requests (likely overloaded from slow disk).")
	m.slowReadIndex = counter("etcd", "server", "slow_read_indexes_total", "The total number of pending read indexes not in sync with leader's or timed out read index requests.")
	m.readIndexFailed = counter("etcd", "server", "read_indexes_failed_total", "The total number of failed read indexes seen.")
	info("server", "version", "Which version is running. 1 for 'server_version' label with current version.", "server_version", ReportedServerVersion)
	info("server", "go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.", "server_go_version", runtime.Version())
	m.serverID = info("server", "id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", "server_id", "")
	// etcdserver/api/membership/metrics.go
	info("cluster", "version", "Which version is running. 1 for 'cluster_version' label with current cluster version", "cluster_version", reportedClusterVersion())
	// etcdserver/api/etcdhttp/health.go
	m.healthSuccess = counter("etcd", "server", "health_success", "The total number of successful health checks")
	m.healthFailures = counter("etcd", "server", "health_failures", "The total number of failed health checks")
	// storage/metrics.go
	m.quotaBackendBytes = gauge("etcd", "server", "quota_backend_bytes", "Current backend storage quota size in bytes.")
	// etcdserver/txn/metrics.go
	applySec := histogramVec("server", "apply_duration_seconds", "The latency distributions of v2 apply called by backend.",
		prometheus.ExponentialBuckets(0.0001, 2, 20), "version", "op", "success")
	for op, name := range applyOpNames {
		for ok := range 2 {
			m.applyDuration[op][ok] = applySec.WithLabelValues("v3", name, strconv.FormatBool(ok == 1))
		}
	}

	// storage/wal/metrics.go: the fdatasync alone (the WAL's OnFsync hook).
	m.walFsync = histogram("etcd", "disk", "wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.",
		prometheus.ExponentialBuckets(0.001, 2, 14))
	// storage/backend/metrics.go. quorumd has no bbolt file: its durable
	// commit is the Raft loop's WAL save of a Ready that must sync (append
	// of the batch of entries and the hard state, then fdatasync), after
	// which the batch is durable and handed to the in-memory applier. That
	// is what this measures (see raftNode.handleReady).
	m.backendCommit = histogram("etcd", "disk", "backend_commit_duration_seconds", "The latency distributions of commit called by backend.",
		prometheus.ExponentialBuckets(0.001, 2, 14))
	// etcdserver/api/snap/metrics.go: a snapshot file written, received
	// from the leader or made by the snapshotter.
	m.snapshotSave = histogram("etcd_debugging", "snap", "save_total_duration_seconds", "The total latency distributions of save called by snapshot.",
		prometheus.ExponentialBuckets(0.001, 2, 14))
	m.defragDuration = histogram("etcd", "disk", "backend_defrag_duration_seconds", "The latency distribution of backend defragmentation.",
		prometheus.ExponentialBuckets(.1, 2, 13))

	// storage/mvcc/metrics.go, counted as etcd's metricsTxnWrite does: every
	// range, put and delete (inside txns too), and txns of more than one op.
	m.rangeTotal = counter("etcd", "mvcc", "range_total", "Total number of ranges seen by this member.")
	m.putTotal = counter("etcd", "mvcc", "put_total", "Total number of puts seen by this member.")
	m.deleteTotal = counter("etcd", "mvcc", "delete_total", "Total number of deletes seen by this member.")
	m.txnTotal = counter("etcd", "mvcc", "txn_total", "Total number of txns seen by this member.")

	// etcdserver/api/rafthttp/metrics.go
	m.peerSentBytes = counterVec("network", "peer_sent_bytes_total", "The total number of bytes sent to peers.", "To")
	m.peerReceivedBytes = counterVec("network", "peer_received_bytes_total", "The total number of bytes received from peers.", "From")
	m.peerSentFailures = counterVec("network", "peer_sent_failures_total", "The total number of send failures from peers.", "To")
	m.peerRoundTrip = histogramVec("network", "peer_round_trip_time_seconds", "Round-Trip-Time histogram between peers",
		prometheus.ExponentialBuckets(0.0001, 2, 16), "To")
	m.snapshotSend = counterVec("network", "snapshot_send_success", "Total number of successful snapshot sends", "To")
	m.snapshotSendFailures = counterVec("network", "snapshot_send_failures", "Total number of snapshot send failures", "To")
	m.snapshotSendSeconds = histogramVec("network", "snapshot_send_total_duration_seconds", "Total latency distributions of v3 snapshot sends",
		prometheus.ExponentialBuckets(0.1, 2, 10), "To")
	m.snapshotReceive = counterVec("network", "snapshot_receive_success", "Total number of successful snapshot receives", "From")
	// etcdserver/api/v3rpc/metrics.go
	m.clientSentBytes = counter("etcd", "network", "client_grpc_sent_bytes_total", "The total number of bytes sent to grpc clients.")
	m.clientReceivedBytes = counter("etcd", "network", "client_grpc_received_bytes_total", "The total number of bytes received from grpc clients.")

	// lease/metrics.go: grants and revokes as every member applies them,
	// renewals as the leader answers them.
	m.leaseGranted = counter("etcd_debugging", "lease", "granted_total", "The total number of granted leases.")
	m.leaseRevoked = counter("etcd_debugging", "lease", "revoked_total", "The total number of revoked leases.")
	m.leaseRenewed = counter("etcd_debugging", "lease", "renewed_total", "The number of renewed leases seen by the leader.")
	m.leaseTTLs = histogram("etcd_debugging", "lease", "ttl_total", "Bucketed histogram of lease TTLs.", prometheus.ExponentialBuckets(1, 2, 24))
	// storage/mvcc/metrics.go: the watchable store's.
	m.watch = watch.Metrics{
		Streams:       gauge("etcd_debugging", "mvcc", "watch_stream_total", "Total number of watch streams."),
		Watchers:      gauge("etcd_debugging", "mvcc", "watcher_total", "Total number of watchers."),
		SlowWatchers:  gauge("etcd_debugging", "mvcc", "slow_watcher_total", "Total number of unsynced slow watchers."),
		PendingEvents: gauge("etcd_debugging", "mvcc", "pending_events_total", "Total number of pending events to be sent."),
		Events:        counter("etcd_debugging", "mvcc", "events_total", "Total number of events sent by this member."),
	}
	m.watchEvents = watchEventsMetrics{pending: m.watch.PendingEvents, total: m.watch.Events}
	// etcdserver/api/v3rpc/metrics.go
	m.streamFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network", Name: "server_stream_failures_total",
		Help: "The total number of stream failures from the local server."}, []string{"Type", "API"})
	reg(m.streamFailures)

	reg(collectors.NewGoCollector())
	reg(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setMember labels the metrics with the member they describe: its ID
// (etcd_server_id) and the backend quota it enforces
// (etcd_server_quota_backend_bytes; 0 means etcd's default, as in etcd).
// Called once, before the member serves.
func (m *serverMetrics) setMember(id uint64, quotaBytes int64) {
	m.serverID.WithLabelValues(idString(id)).Set(1)
	if quotaBytes == 0 {
		quotaBytes = DefaultQuotaBackendBytes
	}
	m.quotaBackendBytes.Set(float64(quotaBytes))
}

// setDBSize registers etcd_mvcc_db_total_size_in_bytes and
// etcd_mvcc_db_total_size_in_use_in_bytes, read from sizes at every
// scrape: Maintenance.Status's DbSize and DbSizeInUse (quota.go says what
// they model), so etcd's fragmentation alert fires after compactions
// until a Defragment, as etcd's does.
func (m *serverMetrics) setDBSize(sizes func() (total, inUse int64)) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_bytes",
			Help: "Total size of the underlying database physically allocated in bytes."},
			func() float64 { t, _ := sizes(); return float64(t) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_use_in_bytes",
			Help: "Total size of the underlying database logically in use in bytes."},
			func() float64 { _, u := sizes(); return float64(u) }),
	)
}

// observeApply records one applied request in etcd_server_apply_duration_seconds.
func (m *serverMetrics) observeApply(op int, ok bool, seconds float64) {
	i := 0
	if ok {
		i = 1
	}
	m.applyDuration[op][i].Observe(seconds)
}

// grpcServerMetrics registers and returns the grpc_server_* metrics, made
// by the library etcd uses (go-grpc-middleware/providers/prometheus) as etcd
// makes them (etcdserver/api/v3rpc/grpc.go): with --metrics extensive also
// the grpc_server_handling_seconds histograms. Called once, by newFront.
func (m *serverMetrics) grpcServerMetrics(extensive bool) *grpcprom.ServerMetrics {
	var opts []grpcprom.ServerMetricsOption
	if extensive {
		opts = append(opts, grpcprom.WithServerHandlingTimeHistogram())
	}
	m.grpc = grpcprom.NewServerMetrics(opts...)
	m.reg.MustRegister(m.grpc)
	return m.grpc
}

// peerMetrics are the etcd_network_* series of one peer, resolved once when
// the transport adds the peer. The failure counter starts at 0, so that
// etcd's etcdMembersDown alert has its series from the start.
type peerMetrics struct {
	sent, received, sendFailures prometheus.Counter
	roundTrip                    prometheus.Observer
	snapSent, snapFailed         prometheus.Counter
	snapSeconds                  prometheus.Observer
	snapReceived                 prometheus.Counter
}

func (m *serverMetrics) peer(id uint64) *peerMetrics {
	l := idString(id)
	return &peerMetrics{
		sent: m.peerSentBytes.WithLabelValues(l), received: m.peerReceivedBytes.WithLabelValues(l),
		sendFailures: m.peerSentFailures.WithLabelValues(l), roundTrip: m.peerRoundTrip.WithLabelValues(l),
		snapSent: m.snapshotSend.WithLabelValues(l), snapFailed: m.snapshotSendFailures.WithLabelValues(l),
		snapSeconds: m.snapshotSendSeconds.WithLabelValues(l), snapReceived: m.snapshotReceive.WithLabelValues(l),
	}
}

// countTxn counts an executed txn in etcd_mvcc_*: the ranges, puts and
// deletes of the branch taken (nested txns included, as etcd runs them in
// the same backend txn), and the txn itself when it did more than one.
func (m *serverMetrics) countTxn(resp *pb.TxnResponse) {
	var ranges, puts, deletes int
	var walk func(ops []*pb.ResponseOp)
	walk = func(ops []*pb.ResponseOp) {
		for _, op := range ops {
			switch v := op.Response.(type) {
			case *pb.ResponseOp_ResponseRange:
				ranges++
			case *pb.ResponseOp_ResponsePut:
				puts++
			case *pb.ResponseOp_ResponseDeleteRange:
				deletes++
			case *pb.ResponseOp_ResponseTxn:
				walk(v.ResponseTxn.Responses)
			}
		}
	}
	walk(resp.Responses)
	if ranges+puts+deletes > 1 {
		m.txnTotal.Inc()
	}
	m.rangeTotal.Add(float64(ranges))
	m.putTotal.Add(float64(puts))
	m.deleteTotal.Add(float64(deletes))
}

// observeWALFsync is the WAL's OnFsync hook.
func (m *serverMetrics) observeWALFsync(d time.Duration) { m.walFsync.Observe(d.Seconds()) }
