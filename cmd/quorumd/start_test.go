package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/server"
)

// A member that cannot start — a name missing from --initial-cluster, a
// client or peer port in use, a data dir that is a file — exits 1 with one
// warn line that names the cause, before anything is served.
func TestStartFailuresExitWithOneLineNamingTheCause(t *testing.T) {
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
		return "http://" + l.Addr().String()
	}
	member := func(client, peer, dir string) []string {
		return []string{"--name", "n1", "--data-dir", dir,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "n1=" + peer}
	}
	busyURL := "http://" + busy.Addr().String()
	tests := []struct {
		name, msg, want string
		args            []string
	}{
		{"name missing from initial cluster", "failed to verify flags", `no member named "n9"`,
			[]string{"--name", "n9", "--initial-cluster", "n1=http://127.0.0.1:1", "--data-dir", t.TempDir()}},
		{"client port in use", "failed to start", "address already in use", member(busyURL, free(), t.TempDir())},
		{"peer port in use", "failed to start", "address already in use", member(free(), busyURL, t.TempDir())},
		{"data dir is a file", "failed to start", "--data-dir", member(free(), free(), file)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(tt.args, nil, &bytes.Buffer{}, &stderr)
			lines := withMsg(logLines(t, stderr.String()), tt.msg)
			if code != 1 || len(lines) != 1 {
				t.Fatalf("exit %d, %d %q lines; stderr:\n%s", code, len(lines), tt.msg, stderr.String())
			}
			if e, _ := lines[0]["error"].(string); !strings.Contains(e, tt.want) || lines[0]["level"] != "warn" {
				t.Fatalf("line %v does not say %q", lines[0], tt.want)
			}
		})
	}
}

// A negative --quota-backend-bytes disables the quota, as etcd's does,
// with etcd's log line; 0 is etcd's 2 GiB default.
func TestNegativeQuotaDisablesItAsEtcd(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, code := configure([]string{"--quota-backend-bytes=-1", "--data-dir", t.TempDir()}, nil, &bytes.Buffer{}, &stderr)
	if cfg == nil {
		t.Fatalf("refused: exit %d, %s", code, stderr.String())
	}
	if cfg.QuotaBackendBytes >= 0 || len(withMsg(logLines(t, stderr.String()), "disabled backend quota")) != 1 {
		t.Errorf("quota %d; stderr %s", cfg.QuotaBackendBytes, stderr.String())
	}
	cfg, _, _ = configure([]string{"--data-dir", t.TempDir()}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if cfg == nil || cfg.QuotaBackendBytes != server.DefaultQuotaBackendBytes {
		t.Errorf("default quota %v", cfg)
	}
}
