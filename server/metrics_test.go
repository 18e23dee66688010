package server

import (
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// gather returns the registry's families by name.
func gather(t *testing.T, m *serverMetrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// TestMetricFamiliesHaveEtcdsTypesAndLabels pins a few families to etcd
// 3.6's type, label names and buckets, which dashboards and alerts depend on.
func TestMetricFamiliesHaveEtcdsTypesAndLabels(t *testing.T) {
	m := newServerMetrics()
	m.setMember(0xabc, 0)
	m.setDBSize(func() (int64, int64) { return 42, 42 })
	m.grpcServerMetrics(true).InitializeMetrics(newTestGRPCServer())
	m.peer(0x12)
	m.observeApply(applyOpPut, true, 0.001)
	m.leaseTTLs.Observe(60)
	fams := gather(t, m)
	tests := []struct {
		name    string
		typ     dto.MetricType
		labels  []string
		buckets int // histograms: number of finite buckets
	}{
		{"etcd_server_has_leader", dto.MetricType_GAUGE, nil, 0},
		{"etcd_server_leader_changes_seen_total", dto.MetricType_COUNTER, nil, 0},
		{"etcd_server_proposals_committed_total", dto.MetricType_GAUGE, nil, 0},
		{"etcd_server_id", dto.MetricType_GAUGE, []string{"server_id"}, 0},
		{"etcd_server_version", dto.MetricType_GAUGE, []string{"server_version"}, 0},
		{"etcd_cluster_version", dto.MetricType_GAUGE, []string{"cluster_version"}, 0},
		{"etcd_server_quota_backend_bytes", dto.MetricType_GAUGE, nil, 0},
		{"etcd_server_apply_duration_seconds", dto.MetricType_HISTOGRAM, []string{"op", "success", "version"}, 20},
		{"etcd_disk_wal_fsync_duration_seconds", dto.MetricType_HISTOGRAM, nil, 14},
		{"etcd_disk_backend_commit_duration_seconds", dto.MetricType_HISTOGRAM, nil, 14},
		{"etcd_mvcc_db_total_size_in_bytes", dto.MetricType_GAUGE, nil, 0},
		{"etcd_mvcc_db_total_size_in_use_in_bytes", dto.MetricType_GAUGE, nil, 0},
		{"etcd_mvcc_put_total", dto.MetricType_COUNTER, nil, 0},
		{"etcd_network_peer_round_trip_time_seconds", dto.MetricType_HISTOGRAM, []string{"To"}, 16},
		{"etcd_network_peer_sent_bytes_total", dto.MetricType_COUNTER, []string{"To"}, 0},
		{"etcd_network_peer_received_bytes_total", dto.MetricType_COUNTER, []string{"From"}, 0},
		{"etcd_network_peer_sent_failures_total", dto.MetricType_COUNTER, []string{"To"}, 0},
		{"etcd_network_snapshot_send_success", dto.MetricType_COUNTER, []string{"To"}, 0},
		{"etcd_network_client_grpc_sent_bytes_total", dto.MetricType_COUNTER, nil, 0},
		{"grpc_server_started_total", dto.MetricType_COUNTER, []string{"grpc_method", "grpc_service", "grpc_type"}, 0},
		{"grpc_server_handled_total", dto.MetricType_COUNTER, []string{"grpc_code", "grpc_method", "grpc_service", "grpc_type"}, 0},
		{"grpc_server_msg_received_total", dto.MetricType_COUNTER, []string{"grpc_method", "grpc_service", "grpc_type"}, 0},
		{"grpc_server_handling_seconds", dto.MetricType_HISTOGRAM, []string{"grpc_method", "grpc_service", "grpc_type"}, 11},
		{"etcd_debugging_lease_granted_total", dto.MetricType_COUNTER, nil, 0},
		{"etcd_debugging_lease_revoked_total", dto.MetricType_COUNTER, nil, 0},
		{"etcd_debugging_lease_renewed_total", dto.MetricType_COUNTER, nil, 0},
		{"etcd_debugging_lease_ttl_total", dto.MetricType_HISTOGRAM, nil, 24},
		{"etcd_debugging_mvcc_watch_stream_total", dto.MetricType_GAUGE, nil, 0},
		{"etcd_debugging_mvcc_watcher_total", dto.MetricType_GAUGE, nil, 0},
		{"etcd_debugging_mvcc_slow_watcher_total", dto.MetricType_GAUGE, nil, 0},
		{"etcd_debugging_mvcc_pending_events_total", dto.MetricType_GAUGE, nil, 0},
		{"etcd_debugging_mvcc_events_total", dto.MetricType_COUNTER, nil, 0},
	}
	for _, tt := range tests {
		f, ok := fams[tt.name]
		if !ok {
			t.Errorf("%s: not exported", tt.name)
			continue
		}
		if f.GetType() != tt.typ {
			t.Errorf("%s: type %v, want %v", tt.name, f.GetType(), tt.typ)
		}
		mt := f.GetMetric()[0]
		var labels []string
		for _, l := range mt.GetLabel() {
			labels = append(labels, l.GetName())
		}
		if !slices.Equal(labels, tt.labels) {
			t.Errorf("%s: labels %v, want %v", tt.name, labels, tt.labels)
		}
		if tt.buckets > 0 && len(mt.GetHistogram().GetBucket()) != tt.buckets {
			t.Errorf("%s: %d buckets, want %d", tt.name, len(mt.GetHistogram().GetBucket()), tt.buckets)
		}
	}
	if v := fams["etcd_server_id"].GetMetric()[0].GetLabel()[0].GetValue(); v != "abc" {
		t.Errorf("etcd_server_id{server_id=%q}, want abc (hex, as etcd)", v)
	}
	if v := fams["etcd_server_quota_backend_bytes"].GetMetric()[0].GetGauge().GetValue(); v != DefaultQuotaBackendBytes {
		t.Errorf("quota %v: a 0 quota is etcd's default", v)
	}
	if v := fams["etcd_network_peer_sent_failures_total"].GetMetric()[0].GetLabel()[0].GetValue(); v != "12" {
		t.Errorf("To=%q, want the peer's hex ID", v)
	}
}

// TestCountTxnCountsLikeEtcd: the ops of the branch taken, nested txns
// included; the txn itself only when it did more than one op.
func TestCountTxnCountsLikeEtcd(t *testing.T) {
	m := newServerMetrics()
	put := &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{}}}
	rng := &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{}}}
	del := &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{}}}
	nested := &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: &pb.TxnResponse{Responses: []*pb.ResponseOp{put, del}}}}
	m.countTxn(&pb.TxnResponse{Responses: []*pb.ResponseOp{put}})
	m.countTxn(&pb.TxnResponse{Responses: []*pb.ResponseOp{rng, nested}})
	fams := gather(t, m)
	for name, want := range map[string]float64{"etcd_mvcc_txn_total": 1, "etcd_mvcc_put_total": 2, "etcd_mvcc_range_total": 1, "etcd_mvcc_delete_total": 1} {
		if got := fams[name].GetMetric()[0].GetCounter().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestMetricsListenerPortTakenNamesTheFlag: a busy --listen-metrics-urls
// port fails New with the flag's name, before the data dir is touched.
func TestMetricsListenerPortTakenNamesTheFlag(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := func() url.URL {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return url.URL{Scheme: "http", Host: l.Addr().String()}
	}
	for _, tt := range []struct {
		name string
		url  url.URL
		want string
	}{
		{"port taken", url.URL{Scheme: "http", Host: busy.Addr().String()}, "address already in use"},
		{"https without a client certificate", url.URL{Scheme: "https", Host: "127.0.0.1:1"}, "client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			peer := free()
			cfg.ListenClientURLs = []url.URL{free()}
			cfg.AdvertiseClientURLs = cfg.ListenClientURLs
			cfg.ListenPeerURLs = []url.URL{peer}
			cfg.InitialAdvertisePeerURLs = []url.URL{peer}
			cfg.InitialCluster = map[string][]url.URL{cfg.Name: {peer}}
			cfg.ListenMetricsURLs = []url.URL{tt.url}
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			s, err := New(cfg)
			if err == nil {
				s.Stop()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), "--listen-metrics-urls") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name --listen-metrics-urls and say %q", err, tt.want)
			}
			if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
				t.Fatalf("data dir written before the listener was bound: %v", err)
			}
		})
	}
}

// newTestGRPCServer is a gRPC server with the KV service registered, for
// InitializeMetrics; it serves nothing.
func newTestGRPCServer() *grpc.Server {
	g := grpc.NewServer()
	pb.RegisterKVServer(g, &kvServer{})
	return g
}
