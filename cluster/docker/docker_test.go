package docker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/moby/moby/client"
	"github.com/vishvananda/netns"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/cluster"
)

// Container tests need a reachable Docker engine and root (for partitions);
// without an engine they skip with one line. The server is quorumd built
// static from this checkout, or QUORUM_TEST_SERVER_BINARY (static).
var (
	engineErr error
	image     string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			engineErr = errors.New("-short")
			return m.Run()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		eng, err := NewEngine(ctx, nil, nil)
		if err != nil {
			engineErr = err
			fmt.Println("cluster/docker: no Docker engine reachable, container tests skip:", err)
			return m.Run()
		}
		defer eng.Close()
		bin := os.Getenv("QUORUM_TEST_SERVER_BINARY")
		if bin == "" {
			dir, err := os.MkdirTemp("", "docker-test-bin-")
			if err != nil {
				fmt.Println(err)
				return 1
			}
			defer os.RemoveAll(dir)
			if bin, err = BuildStatic(ctx, "github.com/quorum-kv/quorum/cmd/quorumd", dir); err != nil {
				fmt.Println(err)
				return 1
			}
		}
		if image, err = eng.EnsureImage(ctx, bin); err != nil {
			fmt.Println(err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func testEngine(t *testing.T) *Engine {
	t.Helper()
	if engineErr != nil {
		t.Skipf("no Docker engine: %v", engineErr)
	}
	eng, err := NewEngine(context.Background(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testConfig(t *testing.T, eng *Engine) Config {
	cfg := DefaultConfig()
	cfg.Server.Image = image
	cfg.Engine = eng
	cfg.Dir = t.TempDir()
	cfg.RunID = fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.StopGrace = 5 * time.Second
	cfg.Logger = testLogger(t)
	return cfg
}

func newTestCluster(t *testing.T) *Cluster {
	t.Helper()
	eng := testEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c, err := New(ctx, testConfig(t, eng))
	if err != nil {
		t.Fatalf("new cluster: %v", err)
	}
	t.Cleanup(func() {
		c.Close(context.Background())
		assertNothingLeft(t, eng, c.RunID())
	})
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, ctx context.Context, cond func() bool, what string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// assertNothingLeft fails if any container, volume or network of the run
// still exists.
func assertNothingLeft(t *testing.T, eng *Engine, run string) {
	t.Helper()
	ctx := context.Background()
	f := client.Filters{}.Add("label", LabelRun+"="+run)
	cs, err := eng.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := eng.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := eng.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items)+len(vs.Items)+len(ns.Items) > 0 {
		t.Errorf("run %s left %d containers, %d volumes, %d networks", run, len(cs.Items), len(vs.Items), len(ns.Items))
	}
}

// dialFrom opens a TCP connection to addr from inside n's network
// namespace (so its source is n's address), as the member itself would.
func dialFrom(n *Node, addr netip.AddrPort, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is left in the member's namespace if switching back
		// fails; LockOSThread without Unlock makes the runtime discard it.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		errc <- withMemberNetns(n.PID(), n.containerID(), func(ns netns.NsHandle) error {
			if err := netns.Set(ns); err != nil {
				return err
			}
			d := net.Dialer{Timeout: timeout}
			c, derr := d.Dial("tcp", addr.String())
			if err := netns.Set(orig); err != nil {
				return fmt.Errorf("return to own namespace: %w", err)
			}
			runtime.UnlockOSThread()
			if derr != nil {
				return derr
			}
			return c.Close()
		})
	}()
	return <-errc
}

// reach reports, for every ordered pair of distinct members, whether a TCP
// dial to the peer port succeeds within timeout.
func reach(t *testing.T, c *Cluster, timeout time.Duration) map[[2]string]bool {
	t.Helper()
	out := map[[2]string]bool{}
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a == b {
				continue
			}
			err := dialFrom(a, netip.AddrPortFrom(b.ip, PeerPort), timeout)
			out[[2]string{a.name, b.name}] = err == nil
			if err != nil && !isTimeout(err) {
				t.Errorf("dial %s->%s: %v (want success or a silent timeout, never a refusal)", a.name, b.name, err)
			}
		}
	}
	return out
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func checkReach(t *testing.T, c *Cluster, cut []cluster.Link, when string) {
	t.Helper()
	cutSet := map[cluster.Link]bool{}
	for _, l := range cut {
		cutSet[l.Key()] = true
	}
	for pair, ok := range reach(t, c, 700*time.Millisecond) {
		want := !cutSet[cluster.Link{A: pair[0], B: pair[1]}.Key()]
		if ok != want {
			t.Errorf("%s: %s->%s reachable=%v, want %v", when, pair[0], pair[1], ok, want)
		}
	}
}

// otherTables lists the nftables tables in n's namespace that are not ours.
func otherTables(t *testing.T, n *Node) []string {
	t.Helper()
	var names []string
	err := withMemberNetns(n.PID(), n.containerID(), func(ns netns.NsHandle) error {
		conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
		if err != nil {
			return err
		}
		defer conn.CloseLasting()
		ts, err := conn.ListTables()
		for _, tb := range ts {
			if tb.Name != TableName {
				names = append(names, fmt.Sprintf("%d/%s", tb.Family, tb.Name))
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestStartsHealthyAndCloseRemovesEverything(t *testing.T) {
	eng := testEngine(t)
	ctx := ctxFor(t, 2*time.Minute)
	cfg := testConfig(t, eng)
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitHealthy(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		ins, err := eng.cli.ContainerInspect(ctx, n.container, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var nets []string
		for name := range ins.Container.NetworkSettings.Networks {
			nets = append(nets, name)
		}
		if len(nets) != 1 || nets[0] != c.Network() {
			t.Errorf("%s is attached to %v, want only the run's network %s", n.name, nets, c.Network())
		}
		if ins.Container.Config.Hostname != n.name {
			t.Errorf("%s: hostname %q", n.name, ins.Container.Config.Hostname)
		}
	}
	for i, n := range c.nodes {
		if n.name != fmt.Sprintf("n%d", i+1) || !strings.HasPrefix(n.clientURL, "http://") || !strings.HasSuffix(n.clientURL, ":2379") {
			t.Errorf("node %d: %s %s", i, n.name, n.clientURL)
		}
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertNothingLeft(t, eng, cfg.RunID)
	for _, n := range c.nodes {
		b, err := os.ReadFile(n.logPath)
		if err != nil || len(b) == 0 {
			t.Errorf("log of %s: %d bytes, %v", n.name, len(b), err)
		}
	}
}

func TestMissingImageIsRefusedWithoutPull(t *testing.T) {
	eng := testEngine(t)
	cfg := testConfig(t, eng)
	cfg.Server.Image = "quorum-local/does-not-exist:never"
	_, err := New(ctxFor(t, time.Minute), cfg)
	if err == nil || !strings.Contains(err.Error(), "nothing is ever pulled") {
		t.Fatalf("err = %v, want a refusal naming the missing image", err)
	}
	assertNothingLeft(t, eng, cfg.RunID)
}

func TestMemberExitDuringStartReportsLogTailAndCleansUp(t *testing.T) {
	eng := testEngine(t)
	cfg := testConfig(t, eng)
	cfg.ExtraArgs = []string{"--no-such-flag-for-sure"}
	cfg.StartTimeout = 30 * time.Second
	_, err := New(ctxFor(t, time.Minute), cfg)
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("err = %v, want an exit during start-up with the log tail", err)
	}
	assertNothingLeft(t, eng, cfg.RunID)
}

func TestCancelDuringStartCleansUp(t *testing.T) {
	eng := testEngine(t)
	cfg := testConfig(t, eng)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	c, err := New(ctx, cfg)
	if err == nil {
		c.Close(context.Background())
		t.Skip("cluster started before the cancel")
	}
	assertNothingLeft(t, eng, cfg.RunID)
}

func TestSweepRemovesLeftoversOfDeadOwnersOnly(t *testing.T) {
	eng := testEngine(t)
	ctx := ctxFor(t, time.Minute)
	host, _ := os.Hostname()
	dead := host + "/999999999/1"
	live := eng.owner
	for run, owner := range map[string]string{"sweep-dead": dead, "sweep-live": live} {
		_, err := eng.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "quorum-" + run + "-" + fmt.Sprint(os.Getpid()),
			Labels: map[string]string{LabelRun: run + fmt.Sprint(os.Getpid()), LabelOwner: owner}})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { eng.RemoveRun(context.Background(), "sweep-live"+fmt.Sprint(os.Getpid())) })
	removed, err := eng.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := "sweep-dead" + fmt.Sprint(os.Getpid())
	found := false
	for _, r := range removed {
		found = found || r == want
		if strings.HasPrefix(r, "sweep-live") {
			t.Errorf("swept a live owner's run %s", r)
		}
	}
	if !found {
		t.Errorf("Sweep removed %v, want it to include %s", removed, want)
	}
	assertNothingLeft(t, eng, want)
}

func TestNodeLifecycle(t *testing.T) {
	c := newTestCluster(t)
	ctx := ctxFor(t, 3*time.Minute)
	n1, n2 := c.DockerNode("n1"), c.DockerNode("n2")
	kv := func(op string) error {
		cli, err := clientFor(c)
		if err != nil {
			return err
		}
		defer cli.Close()
		switch op {
		case "put":
			_, err = cli.Put(ctx, "survives", "kill")
			return err
		default:
			r, err := cli.Get(ctx, "survives")
			if err != nil {
				return err
			}
			if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "kill" {
				return fmt.Errorf("get survives: %v", r.Kvs)
			}
			return nil
		}
	}
	steps := []struct {
		name  string
		do    func() error
		node  *Node
		want  cluster.State
		isErr error
	}{
		{"put", func() error { return kv("put") }, n1, cluster.Running, nil},
		{"kill", func() error { return n1.Kill(ctx) }, n1, cluster.Stopped, nil},
		{"kill again is a no-op", func() error { return n1.Kill(ctx) }, n1, cluster.Stopped, nil},
		{"pause a stopped node is invalid", func() error { return n1.Pause(ctx) }, n1, cluster.Stopped, cluster.ErrInvalidState},
		{"start", func() error { return n1.Start(ctx) }, n1, cluster.Running, nil},
		{"healthy after restart", func() error { return cluster.WaitHealthy(ctx, c) }, n1, cluster.Running, nil},
		{"data survived the kill", func() error { return kv("get") }, n1, cluster.Running, nil},
		{"wipe a running node is invalid", func() error { return n1.Wipe(ctx) }, n1, cluster.Running, cluster.ErrInvalidState},
		{"stop", func() error { return n1.Stop(ctx) }, n1, cluster.Stopped, nil},
		{"wipe", func() error { return n1.Wipe(ctx) }, n1, cluster.Stopped, nil},
		{"pause", func() error { return n2.Pause(ctx) }, n2, cluster.Paused, nil},
		{"start a paused node is invalid", func() error { return n2.Start(ctx) }, n2, cluster.Paused, cluster.ErrInvalidState},
		{"resume", func() error { return n2.Resume(ctx) }, n2, cluster.Running, nil},
		{"pause again", func() error { return n2.Pause(ctx) }, n2, cluster.Paused, nil},
		{"kill a paused node", func() error { return n2.Kill(ctx) }, n2, cluster.Stopped, nil},
		{"restart it", func() error { return n2.Start(ctx) }, n2, cluster.Running, nil},
	}
	for _, s := range steps {
		err := s.do()
		if s.isErr == nil && err != nil || s.isErr != nil && !errors.Is(err, s.isErr) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.isErr)
		}
		if got := s.node.State(); got != s.want {
			t.Fatalf("%s: state %v, want %v", s.name, got, s.want)
		}
		ins, err := c.eng.cli.ContainerInspect(ctx, s.node.container, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := ins.Container.State
		switch s.want {
		case cluster.Stopped:
			if st.Running || s.node.PID() != 0 {
				t.Fatalf("%s: engine says %s, PID %d", s.name, st.Status, s.node.PID())
			}
		case cluster.Paused:
			if !st.Paused {
				t.Fatalf("%s: engine says %s, want paused", s.name, st.Status)
			}
			direct := cluster.Statuses(ctx, singleNode{c, s.node}, cluster.WithRequestTimeout(time.Second))
			if len(direct) != 1 || direct[0].Err == nil {
				t.Fatalf("%s: paused member answered Status: %+v", s.name, direct)
			}
		case cluster.Running:
			if !st.Running || st.Paused {
				t.Fatalf("%s: engine says %s, want running", s.name, st.Status)
			}
		}
	}
	waitFor(t, ctx, func() bool {
		st := cluster.Statuses(ctx, singleNode{c, n2}, cluster.WithRequestTimeout(time.Second))
		return st[0].Err == nil
	}, "the restarted member to answer Status")
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

func TestPartitionDropsExactlyTheNamedLinks(t *testing.T) {
	c := newTestCluster(t)
	if err := c.NetFaults(); err != nil {
		t.Skipf("partitions unavailable here: %v", err)
	}
	ctx := ctxFor(t, 3*time.Minute)
	n1, n2, n3 := c.DockerNode("n1"), c.DockerNode("n2"), c.DockerNode("n3")
	docker := map[string][]string{}
	for _, n := range c.nodes {
		docker[n.name] = otherTables(t, n)
	}
	checkReach(t, c, nil, "before any fault")

	cut := []cluster.Link{{A: "n2", B: "n1"}}
	if err := c.Partition(ctx, cut); err != nil {
		t.Fatal(err)
	}
	checkReach(t, c, cut, "n1-n2 cut")
	counts, err := n1.DropCounts()
	if err != nil {
		t.Fatal(err)
	}
	if counts[n2.ip.String()] == 0 || len(counts) != 1 {
		t.Errorf("n1's drop counters %v: want packets dropped from n2 (%s) only", counts, n2.ip)
	}

	// Replacing the cut set: isolate n3, which is paused (rules are written
	// from the host), so n1-n2 heals.
	if err := n3.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	cut = cluster.Isolate(c, "n3")
	if err := c.Partition(ctx, cut); err != nil {
		t.Fatalf("partition with a paused member: %v", err)
	}
	checkReach(t, c, cut, "n3 isolated while paused")
	if err := n3.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	// A restarted member has a new namespace: the rules follow it.
	if err := n3.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	checkReach(t, c, cut, "n3 isolated after its restart")

	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	checkReach(t, c, nil, "healed")
	for _, n := range c.nodes {
		if got := otherTables(t, n); strings.Join(got, ",") != strings.Join(docker[n.name], ",") {
			t.Errorf("%s: tables other than ours changed: %v, were %v", n.name, got, docker[n.name])
		}
		if counts, err := n.DropCounts(); err != nil || len(counts) != 0 {
			t.Errorf("%s: rules left after heal: %v %v", n.name, counts, err)
		}
	}
	if err := cluster.WaitHealthy(ctx, c); err != nil {
		t.Fatalf("not healthy after heal: %v", err)
	}
}

func TestIsolatingTheLeaderElectsAnotherAndHealReunites(t *testing.T) {
	c := newTestCluster(t)
	if err := c.NetFaults(); err != nil {
		t.Skipf("partitions unavailable here: %v", err)
	}
	ctx := ctxFor(t, 2*time.Minute)
	old, err := cluster.Leader(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Partition(ctx, cluster.Isolate(c, old.Name())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, func() bool {
		n, err := cluster.Leader(ctx, c, cluster.WithRequestTimeout(time.Second))
		return err == nil && n.Name() != old.Name()
	}, "a new leader among the other two")
	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitHealthy(ctx, c); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestNoLatencyFaults(t *testing.T) {
	c := newTestCluster(t)
	if _, ok := any(c).(cluster.LinkShaper); ok {
		t.Fatal("docker.Cluster implements LinkShaper; the latency nemesis would not be refused up front")
	}
	t.Logf("netem: %v", c.Netem())
}

func TestConfigValidateNamesBadField(t *testing.T) {
	ok := DefaultConfig()
	ok.Server.Image, ok.Dir, ok.RunID, ok.Engine = "img", "/tmp/x", "run-1", &Engine{}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for field, mut := range map[string]func(*Config){
		"Image":             func(c *Config) { c.Server.Image = "" },
		"Size":              func(c *Config) { c.Size = 0 },
		"Dir":               func(c *Config) { c.Dir = "" },
		"RunID":             func(c *Config) { c.RunID = "Bad_ID" },
		"ClusterToken":      func(c *Config) { c.ClusterToken = "" },
		"HeartbeatInterval": func(c *Config) { c.HeartbeatInterval = 1500 * time.Microsecond },
		"ElectionTimeout":   func(c *Config) { c.ElectionTimeout = -time.Millisecond },
		"SnapshotCount":     func(c *Config) { c.SnapshotCount = -1 },
		"StartTimeout":      func(c *Config) { c.StartTimeout = 0 },
		"StopGrace":         func(c *Config) { c.StopGrace = time.Millisecond },
		"Engine":            func(c *Config) { c.Engine = nil },
		"Logger":            func(c *Config) { c.Logger = nil },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: err = %v, want it named", field, err)
		}
	}
}

func TestCheckStaticRefusesDynamicBinaries(t *testing.T) {
	if err := CheckStatic("/bin/sh"); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("/bin/sh: %v, want a dynamic-linking refusal", err)
	}
	if err := CheckStatic("docker_test.go"); err == nil {
		t.Error("a Go source file passed as a static executable")
	}
}

func clientFor(c *Cluster) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}
