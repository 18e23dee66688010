package local

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// serverBinary is QUORUM_TEST_SERVER_BINARY, else etcd from tools/bin (see
// tools/README.md); tests needing a server skip when neither exists.
func serverBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("QUORUM_TEST_SERVER_BINARY"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../tools/bin/etcd")
	if err == nil {
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no server binary: set QUORUM_TEST_SERVER_BINARY or run tools/build.sh")
	return ""
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testConfig(t *testing.T, binary string) Config {
	cfg := DefaultConfig()
	cfg.Server.Binary = binary
	cfg.Dir = t.TempDir()
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.StartTimeout = 60 * time.Second
	cfg.StopGrace = 5 * time.Second
	cfg.Logger = testLogger(t)
	return cfg
}

func newTestCluster(t *testing.T, opts ...func(*Config)) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := testConfig(t, serverBinary(t))
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("new cluster: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// assertGone fails unless, within a few seconds, no live (non-zombie)
// process belongs to any of the process groups. Orphans killed with their
// group are reaped by init asynchronously, hence zombies are tolerated.
func assertGone(t *testing.T, pgids []int) {
	t.Helper()
	var alive []string
	for range 50 {
		alive = liveInGroups(pgids)
		if len(alive) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("processes left behind: %v", alive)
}

func liveInGroups(pgids []int) []string {
	want := map[int]bool{}
	for _, g := range pgids {
		want[g] = true
	}
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
		if len(f) < 3 {
			continue
		}
		pg, _ := strconv.Atoi(f[2])
		if want[pg] && f[0] != "Z" {
			out = append(out, fmt.Sprintf("pid %s (group %d, state %s)", e.Name(), pg, f[0]))
		}
	}
	return out
}

func pids(c *Cluster) []int {
	var out []int
	for _, n := range c.nodes {
		if p := n.PID(); p != 0 {
			out = append(out, p)
		}
	}
	return out
}

func TestStartsHealthyAndCloseLeavesNoProcess(t *testing.T) {
	c := newTestCluster(t)
	ctx := ctxFor(t, 60*time.Second)
	if err := cluster.WaitHealthy(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Leader(ctx, c); err != nil {
		t.Fatal(err)
	}
	ps := pids(c)
	if len(ps) != 3 {
		t.Fatalf("pids = %v, want 3", ps)
	}
	if got := c.Endpoints(); len(got) != 3 || !strings.HasPrefix(got[0], "http://127.0.0.1:") {
		t.Fatalf("endpoints = %v", got)
	}
	for _, n := range c.Nodes() {
		if n.PeerURL() == c.LocalNode(n.Name()).ListenPeerURL() {
			t.Errorf("%s advertises its real peer listener, not its proxy", n.Name())
		}
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	assertGone(t, ps)
	if err := c.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
	for _, n := range c.nodes {
		if n.State() != cluster.Stopped {
			t.Errorf("%s state %v after Close", n.name, n.State())
		}
		if b, err := os.ReadFile(n.LogPath()); err != nil || len(b) == 0 {
			t.Errorf("log of %s missing after Close: %v", n.name, err)
		}
	}
}

// writeScript writes an executable shell script standing in for a server.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMemberExitDuringStartReportsLogTail(t *testing.T) {
	bin := writeScript(t, `echo "fatal: bad flag for $2" >&2; exit 3`)
	cfg := testConfig(t, bin)
	start := time.Now()
	_, err := New(ctxFor(t, 30*time.Second), cfg)
	if err == nil {
		t.Fatal("New succeeded with a server that exits")
	}
	if !strings.Contains(err.Error(), "fatal: bad flag for n") || !strings.Contains(err.Error(), "exited during start-up") {
		t.Fatalf("error lacks the log tail: %v", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("New waited %v instead of failing on the exit", time.Since(start))
	}
}

func TestCancelDuringStartLeavesNoProcess(t *testing.T) {
	// A "server" that never listens, records its pid (= its process group,
	// $4 is the --data-dir value) and forks a child into its group.
	bin := writeScript(t, `echo $$ > "$4.pid"; sleep 300 & exec sleep 300`)
	cfg := testConfig(t, bin)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	c, err := New(ctx, cfg)
	if err == nil || c != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("New = %v, %v; want a context.Canceled error", c, err)
	}
	var groups []int
	for i := 1; i <= cfg.Size; i++ {
		b, err := os.ReadFile(filepath.Join(cfg.Dir, "data", fmt.Sprintf("n%d.pid", i)))
		if err != nil {
			t.Fatalf("member n%d never ran: %v", i, err)
		}
		pg, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, pg)
	}
	assertGone(t, groups)
}

func TestCloseWithCancelledContextKillsEverything(t *testing.T) {
	c := newTestCluster(t)
	ctx := ctxFor(t, 30*time.Second)
	n2 := c.LocalNode("n2")
	if err := n2.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	ps := pids(c)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Close(cancelled); err != nil {
		t.Fatalf("close: %v", err)
	}
	assertGone(t, ps)
}

func TestNodeLifecycle(t *testing.T) {
	c := newTestCluster(t)
	ctx := ctxFor(t, 120*time.Second)
	n1 := c.LocalNode("n1")
	n2 := c.LocalNode("n2")

	steps := []struct {
		name  string
		do    func() error
		node  *Node
		want  cluster.State
		isErr error
	}{
		{"kill", func() error { return n1.Kill(ctx) }, n1, cluster.Stopped, nil},
		{"kill again is a no-op", func() error { return n1.Kill(ctx) }, n1, cluster.Stopped, nil},
		{"pause a stopped node is invalid", func() error { return n1.Pause(ctx) }, n1, cluster.Stopped, cluster.ErrInvalidState},
		{"start", func() error { return n1.Start(ctx) }, n1, cluster.Running, nil},
		{"healthy after restart", func() error { return cluster.WaitHealthy(ctx, c) }, n1, cluster.Running, nil},
		{"wipe a running node is invalid", func() error { return n1.Wipe(ctx) }, n1, cluster.Running, cluster.ErrInvalidState},
		{"stop", func() error { return n1.Stop(ctx) }, n1, cluster.Stopped, nil},
		{"wipe", func() error { return n1.Wipe(ctx) }, n1, cluster.Stopped, nil},
		{"pause", func() error { return n2.Pause(ctx) }, n2, cluster.Paused, nil},
		{"start a paused node is invalid", func() error { return n2.Start(ctx) }, n2, cluster.Paused, cluster.ErrInvalidState},
		{"resume", func() error { return n2.Resume(ctx) }, n2, cluster.Running, nil},
	}
	for _, s := range steps {
		pid := s.node.PID()
		err := s.do()
		if s.isErr == nil && err != nil || s.isErr != nil && !errors.Is(err, s.isErr) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.isErr)
		}
		if got := s.node.State(); got != s.want {
			t.Fatalf("%s: state %v, want %v", s.name, got, s.want)
		}
		switch s.want {
		case cluster.Stopped:
			if pid != 0 {
				assertGone(t, []int{pid})
			}
			if s.node.PID() != 0 {
				t.Fatalf("%s: PID %d after stop", s.name, s.node.PID())
			}
		case cluster.Paused:
			if st := procState(s.node.PID()); st != 'T' {
				t.Fatalf("%s: /proc state %q, want T", s.name, st)
			}
			sts := cluster.Statuses(ctx, c, cluster.WithRequestTimeout(time.Second))
			for _, st := range sts {
				if st.Node.Name() == s.node.name {
					t.Fatalf("%s: paused node counted as running", s.name)
				}
			}
			// Ask the paused member directly: it must not answer.
			direct := cluster.Statuses(ctx, singleNode{c, s.node}, cluster.WithRequestTimeout(time.Second))
			if len(direct) != 1 || direct[0].Err == nil {
				t.Fatalf("%s: paused member answered Status: %+v", s.name, direct)
			}
		case cluster.Running:
			if st := procState(s.node.PID()); st == 'T' || st == 0 {
				t.Fatalf("%s: /proc state %q, want running or sleeping", s.name, st)
			}
		}
	}
	if _, err := os.Stat(n1.DataDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir of n1 after wipe: %v", err)
	}
	waitFor(t, ctx, func() bool {
		st := cluster.Statuses(ctx, singleNode{c, n2}, cluster.WithRequestTimeout(time.Second))
		return st[0].Err == nil
	}, "the resumed member to answer Status")
	b, _ := os.ReadFile(n1.LogPath())
	if got := strings.Count(string(b), "=== quorum: n1 starting"); got != 2 {
		t.Errorf("log of n1 has %d start markers, want 2 (appended across restarts)", got)
	}
}

// singleNode is a one-node view of a cluster whose node is always reported
// Running, to ask a member directly whatever its state.
type singleNode struct {
	*Cluster
	n *Node
}

type runningNode struct{ *Node }

func (runningNode) State() cluster.State { return cluster.Running }

func (s singleNode) Nodes() []cluster.Node { return []cluster.Node{runningNode{s.n}} }

func withTLS(c *Config) { c.Server.TLS = true }

// Under TLS the proxies terminate TLS and tell the sender by its
// certificate (faultproxy.TLS): the same links must be cut, and only them.
func TestPartitionCutsExactlyTheNamedLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []func(*Config)
	}{{"plaintext", nil}, {"tls", []func(*Config){withTLS}}} {
		t.Run(tc.name, func(t *testing.T) { testPartitionCutsExactly(t, tc.opts...) })
	}
}

func testPartitionCutsExactly(t *testing.T, opts ...func(*Config)) {
	c := newTestCluster(t, opts...)
	ctx := ctxFor(t, 120*time.Second)
	lead, err := cluster.Leader(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var followers []string
	for _, n := range c.Nodes() {
		if n.Name() != lead.Name() {
			followers = append(followers, n.Name())
		}
	}
	// Cut the leader from one follower: raft heartbeats on that link stop,
	// while the other two links carry heartbeats and stream keep-alives.
	l, f1, f2 := lead.Name(), followers[0], followers[1]
	if err := c.Partition(ctx, []cluster.Link{{A: f1, B: l}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let chunks already in flight land
	before := c.LinkStats()
	time.Sleep(4 * time.Second)
	after := c.LinkStats()
	delta := func(from, to string) (fwd, drop uint64) {
		k := cluster.DirectedLink{From: from, To: to}
		return after[k].Forwarded - before[k].Forwarded, after[k].Dropped - before[k].Dropped
	}
	for _, a := range []string{l, f1, f2} {
		for _, b := range []string{l, f1, f2} {
			if a != b {
				fwd, drop := delta(a, b)
				t.Logf("during cut %s-%s: %s->%s forwarded %d dropped %d bytes", l, f1, a, b, fwd, drop)
			}
		}
	}
	for _, d := range [][2]string{{l, f1}, {f1, l}} {
		fwd, drop := delta(d[0], d[1])
		if fwd != 0 {
			t.Errorf("%s->%s forwarded %d bytes across the cut", d[0], d[1], fwd)
		}
		if drop == 0 && d[0] == l {
			t.Errorf("%s->%s dropped nothing: the leader's heartbeats were not even attempted", d[0], d[1])
		}
	}
	for _, d := range [][2]string{{l, f2}, {f2, l}, {f1, f2}, {f2, f1}} {
		if fwd, drop := delta(d[0], d[1]); fwd == 0 || drop != 0 {
			t.Errorf("%s->%s forwarded %d and dropped %d bytes; want traffic and no drops", d[0], d[1], fwd, drop)
		}
	}
	if t.Failed() {
		t.Logf("before: %v\nafter: %v", before, after)
	}
	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitHealthy(ctx, c); err != nil {
		t.Fatalf("not healthy after heal: %v", err)
	}
	s1 := c.LinkStats()[cluster.DirectedLink{From: l, To: f1}]
	waitFor(t, ctx, func() bool { return c.LinkStats()[cluster.DirectedLink{From: l, To: f1}].Forwarded > s1.Forwarded },
		"traffic on the healed link")
}

// A TLS cluster serves https with certificates made for the run (keys
// 0600), refuses a client without a certificate and answers one with the
// run's client certificate.
func TestTLSClusterRequiresClientCertificates(t *testing.T) {
	c := newTestCluster(t, withTLS)
	ctx := ctxFor(t, 60*time.Second)
	for _, ep := range c.Endpoints() {
		if !strings.HasPrefix(ep, "https://") {
			t.Errorf("endpoint %s is not https", ep)
		}
	}
	args := strings.Join(c.LocalNode("n1").Args(), " ")
	for _, f := range []string{"--cert-file", "--key-file", "--trusted-ca-file", "--client-cert-auth",
		"--peer-cert-file", "--peer-key-file", "--peer-trusted-ca-file", "--peer-client-cert-auth", "--listen-peer-urls https://"} {
		if !strings.Contains(args, f) {
			t.Errorf("n1's command line lacks %s: %s", f, args)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(c.Dir(), "certs", "*.key"))
	if len(keys) != 4 {
		t.Errorf("keys %v; want n1..n3 and client", keys)
	}
	for _, k := range keys {
		if fi, err := os.Stat(k); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", k, fi.Mode().Perm(), err)
		}
	}
	if _, err := cluster.Leader(ctx, c); err != nil {
		t.Fatalf("leader over TLS: %v", err)
	}
	noCert := c.ClientTLS().Clone()
	noCert.Certificates = nil
	conn, err := tls.Dial("tcp", strings.TrimPrefix(c.Endpoints()[0], "https://"), noCert)
	if err == nil {
		// TLS 1.3: the server's refusal arrives with the first read.
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Errorf("a client without a certificate was served")
	}
}

func TestIsolatingTheLeaderElectsAnotherAndHealReunites(t *testing.T) {
	c := newTestCluster(t)
	ctx := ctxFor(t, 120*time.Second)
	old, err := cluster.Leader(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Partition(ctx, cluster.Isolate(c, old.Name())); err != nil {
		t.Fatal(err)
	}
	var now cluster.Node
	waitFor(t, ctx, func() bool {
		n, err := cluster.Leader(ctx, c, cluster.WithRequestTimeout(time.Second))
		now = n
		return err == nil && n.Name() != old.Name()
	}, "a new leader among the other two")
	// Both non-isolated members agree on it.
	for _, st := range cluster.Statuses(ctx, c) {
		if st.Node.Name() != old.Name() && (st.Err != nil || st.Leader == 0) {
			t.Errorf("%s: %+v", st.Node.Name(), st)
		}
	}
	t.Logf("leader %s isolated; new leader %s", old.Name(), now.Name())
	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitHealthy(ctx, c); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	sts := cluster.Statuses(ctx, c)
	for _, st := range sts {
		if st.Leader != sts[0].Leader {
			t.Fatalf("members disagree on the leader after heal: %+v", sts)
		}
	}
}

func TestLatencyKeepsClusterWorkingAndIsRemovable(t *testing.T) {
	c := newTestCluster(t)
	ctx := ctxFor(t, 60*time.Second)
	all := []cluster.Link{{A: "n1", B: "n2"}, {A: "n1", B: "n3"}, {A: "n2", B: "n3"}}
	if err := c.SetLatency(ctx, all, 20*time.Millisecond, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitHealthy(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLatency(ctx, all, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLatency(ctx, []cluster.Link{{A: "n1", B: "n7"}}, time.Millisecond, 0); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Fatalf("latency on unknown node: %v", err)
	}
}

func waitFor(t *testing.T, ctx context.Context, cond func() bool, what string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestConfigValidateNamesBadField(t *testing.T) {
	exe, _ := os.Executable()
	good := DefaultConfig()
	good.Server.Binary, good.Dir = exe, t.TempDir()
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	tests := []struct {
		field string
		mod   func(*Config)
	}{
		{"Binary", func(c *Config) { c.Server.Binary = "" }},
		{"Image", func(c *Config) { c.Server.Image = "etcd:v3.6" }},
		{"Binary", func(c *Config) { c.Server.Binary = "/nonexistent/etcd" }},
		{"Binary", func(c *Config) { c.Server.Binary = os.TempDir() }},
		{"Size", func(c *Config) { c.Size = 0 }},
		{"Dir", func(c *Config) { c.Dir = "" }},
		{"Host", func(c *Config) { c.Host = "localhost" }},
		{"ClusterToken", func(c *Config) { c.ClusterToken = "" }},
		{"HeartbeatInterval", func(c *Config) { c.HeartbeatInterval = 1500 * time.Microsecond }},
		{"ElectionTimeout", func(c *Config) { c.ElectionTimeout = -time.Second }},
		{"SnapshotCount", func(c *Config) { c.SnapshotCount = -1 }},
		{"StartTimeout", func(c *Config) { c.StartTimeout = 0 }},
		{"StopGrace", func(c *Config) { c.StopGrace = 0 }},
		{"Logger", func(c *Config) { c.Logger = nil }},
	}
	for _, tt := range tests {
		cfg := good
		tt.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("Validate() = %v, want it to name %s", err, tt.field)
		}
	}
}

func TestMemberArgsFollowEtcdFlags(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HeartbeatInterval, cfg.ElectionTimeout, cfg.SnapshotCount = 100*time.Millisecond, time.Second, 500
	cfg.ExtraArgs = []string{"--quota-backend-bytes", "1000000"}
	n := &Node{name: "n2", dataDir: "/run/data/n2", clientURL: "http://127.0.0.1:1", listenPeerURL: "http://127.0.0.1:2", peerURL: "http://127.0.0.1:3"}
	got := strings.Join(memberFlags(cfg, n, "n1=http://127.0.0.1:9,n2=http://127.0.0.1:3", nil).Args(), " ")
	want := "--name n2 --data-dir /run/data/n2 --listen-client-urls http://127.0.0.1:1 --advertise-client-urls http://127.0.0.1:1 " +
		"--listen-peer-urls http://127.0.0.1:2 --initial-advertise-peer-urls http://127.0.0.1:3 " +
		"--initial-cluster n1=http://127.0.0.1:9,n2=http://127.0.0.1:3 --initial-cluster-token quorum --initial-cluster-state new " +
		"--heartbeat-interval 100 --election-timeout 1000 --snapshot-count 500 --quota-backend-bytes 1000000"
	if got != want {
		t.Fatalf("args:\n got %s\nwant %s", got, want)
	}
}

func TestBuildQuorumd(t *testing.T) {
	if _, err := os.Stat("../../cmd/quorumd"); err != nil {
		t.Skip("cmd/quorumd does not exist yet")
	}
	if testing.Short() {
		t.Skip("builds quorumd; skipped in -short")
	}
	p, err := BuildQuorumd(ctxFor(t, 5*time.Minute), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("built %s: %v", p, err)
	}
}

// Member ports come from below the kernel's ephemeral range, so a proxy's
// ":0" listener or an outgoing connection cannot take one before the member
// binds it (it happened: "address already in use" at start-up). They are a
// function of the seed, and a reservation keeps a second cluster (here in
// the same process; the lock is the same across processes) off the first
// one's ports until they are released.
func TestReservedPortsFollowTheSeedAndAreNotHandedOutTwice(t *testing.T) {
	low := ephemeralLow()
	if low-10000 < 1000 {
		t.Skipf("ephemeral range starts at %d: no room below it", low)
	}
	seeded := func() *rand.Rand { return rand.New(rand.NewPCG(42, 7)) }
	a, err := reservePorts("127.0.0.1", 14, seeded())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range a.ports {
		if p < 10000 || p >= low || seen[p] {
			t.Fatalf("ports %v: %d is outside [10000, %d) or repeated", a.ports, p, low)
		}
		seen[p] = true
	}
	b, err := reservePorts("127.0.0.1", 14, seeded())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range b.ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice while reserved: %v and %v", p, a.ports, b.ports)
		}
	}
	a.release()
	b.release()
	c, err := reservePorts("127.0.0.1", 14, seeded())
	if err != nil {
		t.Fatal(err)
	}
	defer c.release()
	if slices.Equal(c.ports, a.ports) {
		return
	}
	// Only a port that something else took meanwhile (a test package in
	// parallel) may differ.
	for _, p := range a.ports {
		if slices.Contains(c.ports, p) {
			continue
		}
		lock, ok := lockPort(p)
		if ok {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err == nil {
				ln.Close()
				t.Errorf("same seed: port %d was free, yet not drawn again (%v, first time %v)", p, c.ports, a.ports)
			}
			if lock != nil {
				lock.Close()
			}
		}
	}
}
