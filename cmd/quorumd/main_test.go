package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFlagsMapOntoConfigAsEtcd(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, err := parseConfig([]string{
		"--name", "n2", "--data-dir=/tmp/x",
		"--listen-client-urls", "http://127.0.0.1:22379", "--advertise-client-urls", "http://127.0.0.1:22379",
		"--listen-peer-urls", "http://127.0.0.1:22380", "--initial-advertise-peer-urls", "http://127.0.0.1:22380",
		"--initial-cluster", "n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380",
		"--initial-cluster-token", "tok", "--initial-cluster-state", "new",
		"--heartbeat-interval", "50", "--election-timeout", "500", "--snapshot-count", "77",
		"--max-request-bytes", "1000", "--max-txn-ops", "9", "--quota-backend-bytes", "12345", "--log-level", "warn",
	}, nil, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "n2" || cfg.DataDir != "/tmp/x" || len(cfg.InitialCluster) != 3 || cfg.InitialClusterToken != "tok" ||
		cfg.HeartbeatInterval != 50*time.Millisecond || cfg.ElectionTimeout != 500*time.Millisecond ||
		cfg.SnapshotCount != 77 || cfg.MaxRequestBytes != 1000 || cfg.MaxTxnOps != 9 || cfg.QuotaBackendBytes != 12345 {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestDefaultsAreEtcds(t *testing.T) {
	cfg, _, err := parseConfig(nil, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "default" || cfg.DataDir != "default.etcd" || cfg.ListenClientURLs[0].String() != "http://localhost:2379" ||
		cfg.ListenPeerURLs[0].String() != "http://localhost:2380" || cfg.InitialCluster["default"][0].String() != "http://localhost:2380" ||
		cfg.MaxTxnOps != 128 || cfg.MaxRequestBytes != 1572864 || cfg.SnapshotCount != 10000 {
		t.Fatalf("defaults = %+v", cfg)
	}
	// etcd's default --initial-cluster follows --name.
	cfg, _, err = parseConfig([]string{"--name", "solo"}, nil, &bytes.Buffer{})
	if err != nil || cfg.DataDir != "solo.etcd" || cfg.InitialCluster["solo"] == nil {
		t.Fatalf("--name solo: %+v, %v", cfg, err)
	}
}

func TestEnvironmentVariablesAsEtcd(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, err := parseConfig([]string{"--snapshot-count", "5"}, []string{
		"ETCD_NAME=envname", "ETCD_INITIAL_CLUSTER_STATE=existing", "ETCD_SNAPSHOT_COUNT=99", "ETCD_NO_SUCH_FLAG=1", "PATH=/bin",
	}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "envname" || cfg.InitialClusterState != "existing" {
		t.Errorf("env not applied: name=%q state=%q", cfg.Name, cfg.InitialClusterState)
	}
	if cfg.SnapshotCount != 5 {
		t.Errorf("command line must win over ETCD_SNAPSHOT_COUNT: got %d", cfg.SnapshotCount)
	}
	if !strings.Contains(stderr.String(), "ETCD_SNAPSHOT_COUNT") || !strings.Contains(stderr.String(), "ETCD_NO_SUCH_FLAG") {
		t.Errorf("stderr should mention the shadowed and the unknown variable: %q", stderr.String())
	}
	if _, _, err := parseConfig(nil, []string{"ETCD_HEARTBEAT_INTERVAL=fast"}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "ETCD_HEARTBEAT_INTERVAL") {
		t.Errorf("bad env value: err = %v", err)
	}
}

// A misconfigured member exits non-zero with one line saying what is wrong.
func TestMisconfigurationExitsWithOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "plainfile")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	single := func(peer string) []string {
		return []string{"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
			"--initial-cluster", "default=http://" + peer}
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"name missing from initial cluster", []string{"--name", "n9", "--initial-cluster", "n1=http://127.0.0.1:1"}, `no member named "n9"`},
		{"client port in use", append(single(free()), "--data-dir", t.TempDir(), "--listen-client-urls", "http://"+busy.Addr().String()), "address already in use"},
		{"peer port in use", []string{"--data-dir", t.TempDir(), "--listen-client-urls", "http://" + free(),
			"--listen-peer-urls", "http://" + busy.Addr().String()}, "address already in use"},
		{"data dir is a file", append(single(free()), "--data-dir", file, "--listen-client-urls", "http://"+free()), "--data-dir"},
		{"bad flag value", []string{"--heartbeat-interval", "soon"}, "heartbeat-interval"},
		{"stray argument", []string{"serve"}, `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, nil, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("exit code 0, stderr %q", stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tt.want) || !strings.HasPrefix(last, "quorumd: ") {
				t.Fatalf("last stderr line %q does not say %q", last, tt.want)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	var stdout bytes.Buffer
	if code := run([]string{"--version"}, nil, &stdout, &bytes.Buffer{}); code != 0 || !strings.Contains(stdout.String(), "API Version: 3.6") {
		t.Fatalf("--version: code %d, %q", code, stdout.String())
	}
}
