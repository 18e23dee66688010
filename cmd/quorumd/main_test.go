package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/version"

	"github.com/quorum-kv/quorum/server"
)

// logLines decodes the zap JSON lines of stderr.
func logLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func withMsg(lines []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// kubeadmArgs is kubeadm's etcd static-pod command line, certificate
// flags included (kubeadmPKI makes the certificates under dir/pki), for
// member i of 3 on 127.0.0.1 ports base+i*10 (+1 peer, +2 metrics).
func kubeadmArgs(dir string, i, base int) []string { return kubeadmMemberArgs(dir, i, 3, base) }

// kubeadmMemberArgs is kubeadmArgs for member i of an n-member cluster:
// kubeadm's manifest (cmd/kubeadm/app/phases/etcd/local.go) with
// 127.0.0.1 as the node IP, so that its two client URLs are one.
func kubeadmMemberArgs(dir string, i, n, base int) []string {
	pkiDir := kubeadmPKI(dir)
	u := func(j, off int) string { return "https://127.0.0.1:" + itoa(base+j*10+off) }
	var members []string
	for j := 1; j <= n; j++ {
		members = append(members, "m"+itoa(j)+"="+u(j, 1))
	}
	cluster := strings.Join(members, ",")
	return []string{
		"--advertise-client-urls=" + u(i, 0),
		"--cert-file=" + filepath.Join(pkiDir, "member.crt"),
		"--client-cert-auth=true",
		"--data-dir=" + filepath.Join(dir, "m"+itoa(i)),
		"--experimental-initial-corrupt-check=true",
		"--experimental-watch-progress-notify-interval=5s",
		"--initial-advertise-peer-urls=" + u(i, 1),
		"--initial-cluster=" + cluster,
		"--key-file=" + filepath.Join(pkiDir, "member.key"),
		"--listen-client-urls=" + u(i, 0) + "," + u(i, 0),
		"--listen-metrics-urls=http://127.0.0.1:" + itoa(base+i*10+2),
		"--listen-peer-urls=" + u(i, 1),
		"--name=m" + itoa(i),
		"--peer-cert-file=" + filepath.Join(pkiDir, "member.crt"),
		"--peer-client-cert-auth=true",
		"--peer-key-file=" + filepath.Join(pkiDir, "member.key"),
		"--peer-trusted-ca-file=" + filepath.Join(pkiDir, "ca.crt"),
		"--snapshot-count=10000",
		"--trusted-ca-file=" + filepath.Join(pkiDir, "ca.crt"),
	}
}

// kubeadmPlainMemberArgs is kubeadmMemberArgs without the certificate
// flags, over http: for the Kubernetes storage conformance runs, whose
// client is plaintext.
func kubeadmPlainMemberArgs(dir string, i, n, base int) []string {
	var out []string
	for _, a := range kubeadmMemberArgs(dir, i, n, base) {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--cert-file", "--key-file", "--client-cert-auth", "--peer-cert-file", "--peer-key-file",
			"--peer-client-cert-auth", "--peer-trusted-ca-file", "--trusted-ca-file":
			continue
		}
		out = append(out, strings.ReplaceAll(a, "https://", "http://"))
	}
	return out
}

// kubeadmPKI makes, once per dir, the CA and the certificates kubeadm's
// flags name (member.crt/key for the server, peer and kube-apiserver's
// client alike, with IP SAN 127.0.0.1; client.crt/key), and returns
// their directory.
func kubeadmPKI(dir string) string {
	pkiDir := filepath.Join(dir, "pki")
	if _, err := os.Stat(filepath.Join(pkiDir, "ca.crt")); err == nil {
		return pkiDir
	}
	if err := writeTestPKI(pkiDir); err != nil {
		panic(err)
	}
	return pkiDir
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestKubeadmFlagsConfigureAMember(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, code := configure(kubeadmArgs(t.TempDir(), 2, 40000), nil, &bytes.Buffer{}, &stderr)
	if cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if cfg.Name != "m2" || len(cfg.InitialCluster) != 3 || cfg.SnapshotCount != 10000 || cfg.WatchProgressNotifyInterval != 5*time.Second ||
		len(cfg.ListenMetricsURLs) != 1 || cfg.ListenMetricsURLs[0].Host != "127.0.0.1:40022" {
		t.Fatalf("config = %+v", cfg)
	}
	if !cfg.ClientTLS.ClientCertAuth || !cfg.PeerTLS.ClientCertAuth || cfg.ClientTLS.TrustedCAFile == "" || cfg.PeerTLS.TrustedCAFile == "" ||
		cfg.ClientTLS.CertFile == "" || cfg.PeerTLS.KeyFile == "" || cfg.ListenClientURLs[0].Scheme != "https" || cfg.ListenPeerURLs[0].Scheme != "https" {
		t.Fatalf("kubeadm's TLS settings did not reach the member: client %+v, peer %+v", cfg.ClientTLS, cfg.PeerTLS)
	}
	noEffect := withMsg(logLines(t, stderr.String()), "flag has no effect in quorumd")
	var flags []string
	for _, l := range noEffect {
		flags = append(flags, l["flag"].(string)+"="+l["value"].(string))
	}
	// --experimental-initial-corrupt-check is honoured (server/corrupt.go).
	if len(flags) != 0 || !cfg.InitialCorruptCheck {
		t.Fatalf("no-effect lines for %v, want none; initial corrupt check %v", flags, cfg.InitialCorruptCheck)
	}
}

func TestDefaultsAreEtcds(t *testing.T) {
	cfg, _, code := configure(nil, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if cfg == nil {
		t.Fatalf("exit %d", code)
	}
	if cfg.Name != "default" || cfg.DataDir != "default.etcd" || cfg.ListenClientURLs[0].String() != "http://localhost:2379" ||
		cfg.ListenPeerURLs[0].String() != "http://localhost:2380" || cfg.InitialCluster["default"][0].String() != "http://localhost:2380" ||
		cfg.MaxTxnOps != 128 || cfg.MaxRequestBytes != 1572864 || cfg.SnapshotCount != 10000 || cfg.DisablePreVote ||
		cfg.GRPCKeepAliveMinTime != 5*time.Second || cfg.Metrics != "basic" {
		t.Fatalf("defaults = %+v", cfg)
	}
	// etcd's default --initial-cluster follows --name.
	cfg, _, _ = configure([]string{"--name", "solo"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if cfg == nil || cfg.DataDir != "solo.etcd" || cfg.InitialCluster["solo"] == nil {
		t.Fatalf("--name solo: %+v", cfg)
	}
}

func TestEnvironmentAsEtcd(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, code := configure([]string{"--snapshot-count", "5"}, []string{
		"ETCD_NAME=envname", "ETCD_INITIAL_CLUSTER_STATE=existing", "ETCD_NO_SUCH_FLAG=1", "ETCD_VERSION=1", "PATH=/bin",
	}, &bytes.Buffer{}, &stderr)
	if cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if cfg.Name != "envname" || cfg.InitialClusterState != "existing" || cfg.SnapshotCount != 5 {
		t.Errorf("env not applied: %+v", cfg)
	}
	lines := logLines(t, stderr.String())
	if l := withMsg(lines, "unrecognized environment variable"); len(l) != 1 || l[0]["environment-variable"] != "ETCD_NO_SUCH_FLAG=1" {
		t.Errorf("unrecognized variable lines: %v", l)
	}
	if l := withMsg(lines, "cannot set special environment variable"); len(l) != 1 {
		t.Errorf("ETCD_VERSION lines: %v", l)
	}

	// A variable shadowed by its flag is fatal in etcd (exit 1).
	stderr.Reset()
	if code := run([]string{"--snapshot-count", "5"}, []string{"ETCD_SNAPSHOT_COUNT=99"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `"level":"fatal"`) || !strings.Contains(stderr.String(), "ETCD_SNAPSHOT_COUNT") {
		t.Errorf("shadowed variable: exit %d, %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run(nil, []string{"ETCD_HEARTBEAT_INTERVAL=fast"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `invalid value \"fast\" for ETCD_HEARTBEAT_INTERVAL: parse error`) {
		t.Errorf("bad variable: exit %d, %s", code, stderr.String())
	}
}

// readmeClusterYAML is the README's hand-started member n<i> as an etcd
// config file (etcd.conf.yml's keys).
func readmeClusterYAML(dir string, i, base int) string {
	u := func(j, off int) string { return "http://127.0.0.1:" + itoa(base+j*10+off) }
	return "name: n" + itoa(i) + "\n" +
		"data-dir: " + filepath.Join(dir, "n"+itoa(i)) + "\n" +
		"listen-client-urls: " + u(i, 0) + "\n" +
		"advertise-client-urls: " + u(i, 0) + "\n" +
		"listen-peer-urls: " + u(i, 1) + "\n" +
		"initial-advertise-peer-urls: " + u(i, 1) + "\n" +
		"initial-cluster: n1=" + u(1, 1) + ",n2=" + u(2, 1) + ",n3=" + u(3, 1) + "\n" +
		"initial-cluster-token: demo\n" +
		"initial-cluster-state: new\n" +
		"heartbeat-interval: 100\n" +
		"election-timeout: 1000\n" +
		"log-level: info\n" +
		"client-transport-security:\n  client-cert-auth: false\n" +
		"peer-transport-security:\n  client-cert-auth: false\n"
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFileAsEtcdWithItsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "n1.yml", readmeClusterYAML(dir, 1, 41000))
	check := func(name string, args, env []string) {
		t.Helper()
		var stderr bytes.Buffer
		cfg, _, code := configure(args, env, &bytes.Buffer{}, &stderr)
		if cfg == nil {
			t.Fatalf("%s: exit %d: %s", name, code, stderr.String())
		}
		if cfg.Name != "n1" || cfg.InitialClusterToken != "demo" || len(cfg.InitialCluster) != 3 ||
			cfg.ListenClientURLs[0].Host != "127.0.0.1:41010" || cfg.SnapshotCount != 10000 {
			t.Fatalf("%s: config = %+v", name, cfg)
		}
		if len(withMsg(logLines(t, stderr.String()), "loaded server configuration, other configuration command line flags and environment variables will be ignored if provided")) != 1 {
			t.Fatalf("%s: no 'loaded server configuration' line: %s", name, stderr.String())
		}
	}
	// With a config file, etcd ignores the other flags and the environment.
	check("--config-file", []string{"--config-file", file, "--name", "other", "--snapshot-count", "7"}, []string{"ETCD_INITIAL_CLUSTER_TOKEN=x"})
	check("ETCD_CONFIG_FILE", []string{"--snapshot-count", "7"}, []string{"ETCD_CONFIG_FILE=" + file})

	// A certificate in the file's transport security reaches the member
	// like the flag; without its key the member does not start, with
	// etcd's error and the flag named.
	tls := writeFile(t, dir, "tls.yml", readmeClusterYAML(dir, 1, 41000)+"  cert-file: /etc/x.crt\n")
	if cfg, _, code := configure([]string{"--config-file", tls}, nil, &bytes.Buffer{}, &bytes.Buffer{}); cfg == nil || cfg.PeerTLS.CertFile != "/etc/x.crt" {
		t.Fatalf("peer-transport-security cert-file: exit %d, %+v", code, cfg)
	}
	var stderr bytes.Buffer
	if code := run([]string{"--config-file", tls}, nil, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `"error":"--peer-key-file: KeyFile and CertFile must both be present[key: , cert: /etc/x.crt]"`) {
		t.Fatalf("peer-transport-security cert-file without key-file: exit %d, %s", code, stderr.String())
	}
}

// TestBadValuesAsEtcd pins etcd 3.6's messages and exit codes; where the
// etcd binary is built, the same invocation of etcd must agree.
func TestBadValuesAsEtcd(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"unknown flag", []string{"--no-such-flag"}, 2, "flag provided but not defined: -no-such-flag\n"},
		{"heartbeat not a number", []string{"--heartbeat-interval=abc"}, 2, `invalid value "abc" for flag -heartbeat-interval: parse error` + "\n"},
		{"cluster state", []string{"--initial-cluster-state=bogus"}, 2, `invalid value "bogus" for flag -initial-cluster-state: invalid value` + "\n"},
		{"election below 5 heartbeats", []string{"--election-timeout=400"}, 1, `"msg":"failed to verify flags","error":"--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]"`},
		{"election too long", []string{"--election-timeout=60000"}, 1, `"error":"--election-timeout[60000ms] is too long, and should be set less than 50000ms"`},
		{"stray argument", []string{"serve"}, 1, `"error":"\"serve\" is not a valid flag"`},
		{"auto compaction mode", []string{"--auto-compaction-mode=bogus"}, 1, `"error":"unknown auto-compaction-mode \"bogus\""`},
		{"auto compaction mode empty", []string{"--auto-compaction-mode=", "--auto-compaction-retention=5"}, 1, `"error":"undefined auto-compaction-mode"`},
		{"auto compaction retention", []string{"--auto-compaction-retention=bogus"}, 1, `"error":"error parsing CompactionRetention: time: invalid duration \"bogus\""`},
		{"auto compaction retention negative", []string{"--auto-compaction-retention=-1"}, 1, `"error":"error parsing CompactionRetention: time: missing unit in duration \"-1\""`},
		{"auto compaction retention unit", []string{"--auto-compaction-mode=revision", "--auto-compaction-retention=1h30x"}, 1, `"error":"error parsing CompactionRetention: time: unknown unit \"x\" in duration \"1h30x\""`},
		{"discovery fallback proxy", []string{"--discovery-fallback=proxy"}, 1, `"error":"v2 proxy is deprecated, and --discovery-fallback can't be configured as \"proxy\""`},
		{"client urls without advertise", []string{"--listen-client-urls=http://127.0.0.1:1"}, 1, `"msg":"advertise client URLs are not set"`},
		{"both experimental and new", []string{"--experimental-snapshot-catchup-entries=5", "--snapshot-catchup-entries=6"}, 1, `"error":"cannot set --experimental-snapshot-catchup-entries and --snapshot-catchup-entries at the same time, please use --snapshot-catchup-entries only"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--data-dir", t.TempDir()}, tt.args...)
			var stderr bytes.Buffer
			code := run(args, nil, &bytes.Buffer{}, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, want %d; stderr does not contain %q:\n%s", code, tt.code, tt.want, stderr.String())
			}
			if _, err := os.Stat(etcdBinary); err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, etcdBinary, args...)
			var eerr bytes.Buffer
			cmd.Stderr = &eerr
			err := cmd.Run()
			ecode := 0
			if ee, ok := err.(*exec.ExitError); ok {
				ecode = ee.ExitCode()
			}
			if ecode != tt.code || !strings.Contains(eerr.String(), tt.want) {
				t.Fatalf("etcd itself: exit %d, stderr:\n%s", ecode, eerr.String())
			}
		})
	}
}

// An unsupported flag with a value stops start-up with one line naming it.
func TestUnsupportedFlagFailsWithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"--discovery-srv", "example.com"},
		{"--discovery-srv-name", "etcd"},
	} {
		var stderr bytes.Buffer
		code := run(append([]string{"--data-dir", t.TempDir()}, args...), nil, &bytes.Buffer{}, &stderr)
		lines := withMsg(logLines(t, stderr.String()), "failed to verify flags")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0]["error"].(string), args[0]+"=") ||
			!strings.Contains(lines[0]["error"].(string), "is not supported by quorumd: ") {
			t.Errorf("%v: exit %d, lines %v", args, code, lines)
		}
	}
	// At its default value an unsupported flag is accepted silently.
	var stderr bytes.Buffer
	if cfg, _, code := configure([]string{"--discovery-srv=", "--discovery="}, nil, &bytes.Buffer{}, &stderr); cfg == nil {
		t.Fatalf("defaults refused: exit %d, %s", code, stderr.String())
	}
}

func TestNoEffectFlagsAreLoggedOnceAndOnlyWhenSet(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, code := configure([]string{"--backend-batch-interval=10ms", "--backend-bbolt-freelist-type=array", "--strict-reconfig-check=true",
		"--feature-gates=InitialCorruptCheck=true", "--max-snapshots=5"}, nil, &bytes.Buffer{}, &stderr)
	if cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got []string
	for _, l := range withMsg(logLines(t, stderr.String()), "flag has no effect in quorumd") {
		got = append(got, l["flag"].(string))
	}
	// InitialCorruptCheck is honoured, so --feature-gates has an effect.
	want := "--backend-bbolt-freelist-type --backend-batch-interval"
	if strings.Join(got, " ") != want || !cfg.InitialCorruptCheck {
		t.Fatalf("no-effect lines for %v, want %s; initial corrupt check %v", got, want, cfg.InitialCorruptCheck)
	}
	// etcd's deprecation warning for --max-snapshots, even at its default.
	if len(withMsg(logLines(t, stderr.String()), deprecatedFlags["max-snapshots"])) != 1 {
		t.Fatalf("no deprecation warning: %s", stderr.String())
	}
}

func TestHonouredFlagsReachTheServerConfig(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, code := configure([]string{"--name", "n2", "--data-dir=/tmp/x",
		"--listen-client-urls", "http://127.0.0.1:22379", "--advertise-client-urls", "http://127.0.0.1:22379",
		"--listen-peer-urls", "http://127.0.0.1:22380", "--initial-advertise-peer-urls", "http://127.0.0.1:22380",
		"--initial-cluster", "n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380",
		"--initial-cluster-token", "tok", "--initial-cluster-state", "existing",
		"--heartbeat-interval", "50", "--election-timeout", "500", "--snapshot-count", "77", "--experimental-snapshot-catchup-entries=33",
		"--max-request-bytes", "1000", "--max-txn-ops", "9", "--quota-backend-bytes", "12345", "--log-level", "warn",
		"--pre-vote=false", "--grpc-keepalive-min-time=1s", "--grpc-keepalive-interval=1m", "--grpc-keepalive-timeout=3s",
		"--max-concurrent-streams=10", "--metrics=extensive", "--listen-metrics-urls=http://127.0.0.1:22381", "--enable-pprof",
	}, nil, &bytes.Buffer{}, &stderr)
	if cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if cfg.Name != "n2" || cfg.DataDir != "/tmp/x" || len(cfg.InitialCluster) != 3 || cfg.InitialClusterToken != "tok" ||
		cfg.InitialClusterState != "existing" || cfg.HeartbeatInterval != 50*time.Millisecond || cfg.ElectionTimeout != 500*time.Millisecond ||
		cfg.SnapshotCount != 77 || cfg.SnapshotCatchUpEntries != 33 || cfg.MaxRequestBytes != 1000 || cfg.MaxTxnOps != 9 ||
		cfg.QuotaBackendBytes != 12345 || !cfg.DisablePreVote || cfg.GRPCKeepAliveMinTime != time.Second ||
		cfg.GRPCKeepAliveInterval != time.Minute || cfg.GRPCKeepAliveTimeout != 3*time.Second || cfg.MaxConcurrentStreams != 10 ||
		cfg.Metrics != "extensive" || len(cfg.ListenMetricsURLs) != 1 || !cfg.EnablePprof {
		t.Fatalf("config = %+v", cfg)
	}
	if strings.Contains(stderr.String(), `"level":"info"`) {
		t.Errorf("--log-level=warn not applied: %s", stderr.String())
	}
}

func TestVersionIsEtcds(t *testing.T) {
	var stdout bytes.Buffer
	if code := run([]string{"--version"}, nil, &stdout, &bytes.Buffer{}); code != 0 {
		t.Fatalf("--version: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	prefixes := []string{"etcd Version: " + version.Version, "Git SHA: ", "Go Version: go", "Go OS/Arch: ", "quorumd Version: " + server.Version}
	if len(lines) != len(prefixes) {
		t.Fatalf("--version printed %q", stdout.String())
	}
	for i, p := range prefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("line %d is %q, want %q...", i, lines[i], p)
		}
	}
	if server.ReportedServerVersion != version.Version {
		t.Errorf("server.ReportedServerVersion %q, but the etcd module is %s", server.ReportedServerVersion, version.Version)
	}
	if _, err := os.Stat(etcdBinary); err == nil {
		out, err := exec.Command(etcdBinary, "--version").Output()
		if err != nil || !strings.HasPrefix(stdout.String(), string(out)) {
			t.Errorf("etcd --version printed %q (%v); quorumd must begin with the same lines: %q", out, err, stdout.String())
		}
	}
}

func TestHelpListsEveryFlagWithItsClass(t *testing.T) {
	var stdout bytes.Buffer
	if code := run([]string{"--help"}, nil, &stdout, &bytes.Buffer{}); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, f := range flagTable {
		if f.Class != ignoredAsEtcd && !strings.Contains(stdout.String(), "  --"+f.Name+" '") {
			t.Errorf("--help does not list --%s", f.Name)
		}
	}
}

// Only a -tags bugzoo build has --bugzoo: a normal quorumd refuses it as
// the unknown flag it is.
func TestNormalBuildRefusesBugzoo(t *testing.T) {
	var stderr bytes.Buffer
	_, _, code := configure([]string{"--bugzoo", "stale-read"}, nil, &bytes.Buffer{}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "bugzoo") {
		t.Fatalf("exit %d, stderr %q; want exit 2 naming the unknown flag", code, stderr.String())
	}
}
