package server_test

// Integration tests: real quorumd processes on loopback, started by the
// harness's own local backend (cluster/local), driven with etcd's client.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/local"
	"github.com/quorum-kv/quorum/internal/testbin"
)

var quorumdBinary string

func TestMain(m *testing.M) { testbin.Main(m, &quorumdBinary) }

type testCluster struct {
	*local.Cluster
	t   *testing.T
	dir string
}

// startCluster starts n quorumd members with etcd's default timing unless
// extra flags say otherwise.
func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
	dir := t.TempDir()
	cfg := local.DefaultConfig()
	cfg.Server.Binary = quorumdBinary
	cfg.Size = n
	cfg.Dir = dir
	cfg.ExtraArgs = extra
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := local.New(ctx, cfg)
	if err != nil {
		t.Fatalf("start %d-member cluster: %v", n, err)
	}
	tc := &testCluster{Cluster: c, t: t, dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.Close(ctx)
		if t.Failed() {
			tc.dumpLogs()
		}
	})
	return tc
}

func (tc *testCluster) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(tc.dir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		tc.t.Logf("--- last lines of %s:\n%s", l, strings.Join(lines, "\n"))
	}
}

func (tc *testCluster) logOf(name string) string {
	b, _ := os.ReadFile(filepath.Join(tc.dir, "logs", name+".log"))
	return string(b)
}

func (tc *testCluster) client(endpoints ...string) *clientv3.Client {
	tc.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		tc.t.Fatalf("client for %v: %v", endpoints, err)
	}
	tc.t.Cleanup(func() { cli.Close() })
	return cli
}

func (tc *testCluster) leader() cluster.Node {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		n, err := cluster.Leader(ctx, tc)
		if err == nil {
			return n
		}
		if ctx.Err() != nil {
			tc.t.Fatalf("no leader: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tc *testCluster) waitHealthy() {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cluster.WaitHealthy(ctx, tc); err != nil {
		tc.t.Fatalf("cluster not healthy: %v", err)
	}
}

// eventually retries f until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWriteThroughFollowerIsReadLinearizablyFromEveryMember(t *testing.T) {
	tc := startCluster(t, 3)
	leader := tc.leader()
	var follower cluster.Node
	for _, n := range tc.Nodes() {
		if n.Name() != leader.Name() {
			follower = n
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	put, err := tc.client(follower.ClientURL()).Put(ctx, "name", "john")
	if err != nil {
		t.Fatalf("put through follower %s: %v", follower.Name(), err)
	}
	for _, n := range tc.Nodes() {
		resp, err := tc.client(n.ClientURL()).Get(ctx, "name") // linearizable by default
		if err != nil {
			t.Fatalf("get from %s: %v", n.Name(), err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "john" || resp.Kvs[0].ModRevision != put.Header.Revision {
			t.Fatalf("get from %s = %v, want john at revision %d", n.Name(), resp.Kvs, put.Header.Revision)
		}
		if resp.Header.ClusterId != put.Header.ClusterId || resp.Header.RaftTerm == 0 || resp.Header.MemberId == 0 {
			t.Fatalf("header from %s = %+v", n.Name(), resp.Header)
		}
	}
}

func TestLeaderKillElectsNewLeaderAndKilledMemberCatchesUp(t *testing.T) {
	tc := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := tc.leader()
	if err := old.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	var survivors []string
	for _, n := range tc.Nodes() {
		if n.Name() != old.Name() {
			survivors = append(survivors, n.ClientURL())
		}
	}
	cli := tc.client(survivors...)
	start := time.Now()
	eventually(t, 15*time.Second, "write after leader kill", func() error {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cli.Put(c, "after-kill", "0")
		return err
	})
	t.Logf("writes resumed %v after SIGKILL of leader %s", time.Since(start).Round(time.Millisecond), old.Name())
	if l := tc.leader(); l.Name() == old.Name() {
		t.Fatalf("leader is still the killed member %s", l.Name())
	}
	for i := 0; i < 200; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%03d", i), fmt.Sprint(i)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := old.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", old.Name(), err)
	}
	back := tc.client(old.ClientURL())
	eventually(t, 20*time.Second, "restarted member catches up", func() error {
		resp, err := back.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if resp.Count != 200 {
			return fmt.Errorf("%s has %d of 200 keys", old.Name(), resp.Count)
		}
		return nil
	})
}

// Every write acknowledged before all members are SIGKILLed is there after
// they restart.
func TestKillAllUnderLoadKeepsEveryAcknowledgedWrite(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	cli := tc.client(tc.Endpoints()...)
	var mu sync.Mutex
	acked := map[string]string{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000 && ctx.Err() == nil; i++ {
				k, v := fmt.Sprintf("w%d/%05d", w, i), fmt.Sprintf("%d-%d", w, i)
				c, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := cli.Put(c, k, v)
				cancel()
				if err == nil {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	var kill sync.WaitGroup
	for _, n := range tc.Nodes() {
		kill.Add(1)
		go func(n cluster.Node) {
			defer kill.Done()
			if err := n.Kill(context.Background()); err != nil {
				t.Errorf("kill %s: %v", n.Name(), err)
			}
		}(n)
	}
	kill.Wait()
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged before the kill; the test needs load", len(acked))
	}
	rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, n := range tc.Nodes() {
		if err := n.Start(rctx); err != nil {
			t.Fatalf("restart %s: %v", n.Name(), err)
		}
	}
	tc.waitHealthy()
	cli2 := tc.client(tc.Endpoints()...)
	resp, err := cli2.Get(rctx, "w", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	for k, v := range acked {
		if got[k] != v {
			t.Errorf("acknowledged write %s=%s lost after restart (have %q)", k, v, got[k])
		}
	}
	t.Logf("%d acknowledged writes, %d keys after restart: none lost", len(acked), len(got))
}

func TestLaggingMemberCatchesUpBySnapshot(t *testing.T) {
	tc := startCluster(t, 3, "--snapshot-count=100", "--snapshot-catchup-entries=20")
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lagging := tc.Nodes()[2]
	if l := tc.leader(); l.Name() == lagging.Name() {
		lagging = tc.Nodes()[1]
	}
	if err := lagging.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, n := range tc.Nodes() {
		if n.Name() != lagging.Name() {
			others = append(others, n.ClientURL())
		}
	}
	cli := tc.client(others...)
	for i := 0; i < 400; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("s%04d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := lagging.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := tc.client(lagging.ClientURL())
	eventually(t, 30*time.Second, "lagging member catches up", func() error {
		resp, err := back.Get(ctx, "s", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if resp.Count != 400 {
			return fmt.Errorf("%s has %d of 400 keys", lagging.Name(), resp.Count)
		}
		return nil
	})
	if !strings.Contains(tc.logOf(lagging.Name()), "restored the keyspace from a snapshot") {
		t.Fatalf("%s caught up without a snapshot transfer; its log does not say it restored one", lagging.Name())
	}
	// It restarts from the snapshot it received (Raft's storage keeps only
	// the metadata; the data comes back from the file).
	if err := lagging.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lagging.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back = tc.client(lagging.ClientURL())
	eventually(t, 30*time.Second, "restarted member has every key", func() error {
		resp, err := back.Get(ctx, "s", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if resp.Count != 400 {
			return fmt.Errorf("%s has %d of 400 keys after a restart", lagging.Name(), resp.Count)
		}
		return nil
	})
}

// Bad input gets etcd's error, writes nothing, and the member stays up.
func TestBadInputIsRefusedAndNothingIsWritten(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	before, err := cli.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	rev0 := before.Header.Revision

	tooMany := make([]clientv3.Op, 129)
	for i := range tooMany {
		tooMany[i] = clientv3.OpPut(fmt.Sprintf("t%d", i), "v")
	}
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"empty key put", func() error { _, err := cli.Put(ctx, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"empty key get", func() error { _, err := cli.Get(ctx, ""); return err }, rpctypes.ErrEmptyKey},
		{"oversized put", func() error { _, err := cli.Put(ctx, "big", strings.Repeat("x", 1600*1024)); return err }, rpctypes.ErrRequestTooLarge},
		{"too many txn ops", func() error { _, err := cli.Txn(ctx).Then(tooMany...).Commit(); return err }, rpctypes.ErrTooManyOps},
		{"duplicate key in txn", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"future revision", func() error { _, err := cli.Get(ctx, "a", clientv3.WithRev(rev0+1000)); return err }, rpctypes.ErrFutureRev},
	}
	for _, c := range cases {
		err := c.do()
		if !errors.Is(rpctypes.Error(err), c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// range_end before the key: an empty answer, as etcd gives.
	resp, err := cli.Get(ctx, "b", clientv3.WithRange("a"))
	if err != nil || len(resp.Kvs) != 0 {
		t.Errorf("range_end before key: %v, %v", resp, err)
	}
	// A request larger than gRPC's limit is refused by the transport.
	if _, err := cli.Put(ctx, "huge", strings.Repeat("x", 3<<20)); err == nil {
		t.Error("a 3 MiB put was accepted")
	}
	// Garbage on every peer port.
	for _, n := range tc.Nodes() {
		u, _ := url.Parse(n.PeerURL())
		conn, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 4096))
		conn.Write([]byte("POST /raft/stream HTTP/1.1\r\nHost: x\r\nUpgrade: quorum-raft/1\r\nX-Etcd-Cluster-ID: 1\r\n\r\n"))
		conn.Close()
	}
	// A client that disconnects mid-request.
	for i := 0; i < 20; i++ {
		c, cancel := context.WithTimeout(ctx, time.Duration(i)*100*time.Microsecond)
		cli.Put(c, fmt.Sprintf("gone%d", i), "v")
		cancel()
	}
	// Every member still serves, and none of the refused writes exist.
	for _, n := range tc.Nodes() {
		if n.State() != cluster.Running {
			t.Fatalf("%s is %v after bad input", n.Name(), n.State())
		}
		c := tc.client(n.ClientURL())
		if _, err := c.Put(ctx, "alive-"+n.Name(), "yes"); err != nil {
			t.Fatalf("%s does not serve after bad input: %v", n.Name(), err)
		}
		for _, k := range []string{"", "big", "t0", "d", "huge"} {
			if k == "" {
				continue
			}
			r, err := c.Get(ctx, k)
			if err != nil || len(r.Kvs) != 0 {
				t.Errorf("%s: refused write %q exists (%v, %v)", n.Name(), k, r, err)
			}
		}
	}
}

// The quorumctl commands of the README, verbatim, against 3 members.
func TestQuorumctlCommandsAgainstThreeMembers(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	bin := quorumctlBinary(t)
	var eps []string
	for _, e := range tc.Endpoints() {
		eps = append(eps, strings.TrimPrefix(e, "http://"))
	}
	ctl := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--endpoints=" + strings.Join(eps, ",")}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("quorumctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	expect := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("output:\n%s\nwant:\n%s", got, want)
		}
	}
	expect(ctl("", "put", "name", "john"), "OK\n")
	expect(ctl("", "get", "name"), "name\njohn\n")
	ctl("", "put", "/a", "1")
	ctl("", "put", "/b", "2")
	expect(ctl("", "get", "/", "--prefix", "--keys-only"), "/a\n\n/b\n\n")
	expect(ctl("", "get", "", "--prefix", "--limit=10"), "/a\n1\n/b\n2\nname\njohn\n")
	expect(ctl("", "del", "name"), "1\n")
	expect(ctl("value(\"/a\") = \"1\"\n\nput /a 2\n\nput /lost yes\n\n", "txn"), "SUCCESS\n\nOK\n")
	expect(ctl("", "get", "/a", "--print-value-only"), "2\n")
	expect(ctl("value(\"/a\") = \"1\"\n\nput /a 3\n\nput /b 4\n\n", "txn"), "FAILURE\n\nOK\n")
	expect(ctl("", "get", "/", "--prefix", "--print-value-only"), "2\n4\n")
	health := ctl("", "endpoint", "health")
	if strings.Count(health, "is healthy") != 3 {
		t.Errorf("endpoint health:\n%s", health)
	}
	status := ctl("", "endpoint", "status", "-w", "table")
	if len(regexp.MustCompile(`\|\s+true\s+\|`).FindAllString(status, -1)) != 1 || !strings.Contains(status, "RAFT TERM") {
		t.Errorf("endpoint status should show one leader:\n%s", status)
	}
	members := ctl("", "member", "list", "-w", "table")
	for _, n := range tc.Nodes() {
		row := regexp.MustCompile(`\|\s+started\s+\|\s+` + n.Name() + `\s+\|.*` + regexp.QuoteMeta(n.ClientURL()))
		if !row.MatchString(members) {
			t.Errorf("member list lacks %s (%s):\n%s", n.Name(), n.ClientURL(), members)
		}
	}
}

// SIGTERM on the leader hands leadership to a follower before the member
// exits, so the cluster does not sit out an election timeout.
func TestSIGTERMTransfersLeadershipBeforeExit(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := tc.leader()
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	log := tc.logOf(old.Name())
	if !strings.Contains(log, `"msg":"leadership transfer finished"`) {
		t.Fatalf("%s stopped without transferring leadership; its log:\n%s", old.Name(), log[max(0, len(log)-2000):])
	}
	var rest []string
	for _, n := range tc.Nodes() {
		if n.Name() != old.Name() {
			rest = append(rest, n.ClientURL())
		}
	}
	c, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	if _, err := tc.client(rest...).Put(c, "after-stop", "x"); err != nil {
		t.Fatalf("write right after the leader's SIGTERM: %v", err)
	}
}

// A member without a leader holds requests for the election grace (three
// election timeouts since it lost its leader), then refuses at once with
// etcd's "no leader" rather than hanging until the client gives up.
func TestNoLeaderFailsPromptly(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := tc.Nodes()
	for _, n := range nodes[1:] {
		if err := n.Kill(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// One election timeout (1 s) for the survivor to notice, three more of
	// grace; after that every request must fail fast. A raw KV client
	// avoids clientv3's retries.
	cli := tc.client(nodes[0].ClientURL())
	kv := pb.NewKVClient(cli.ActiveConnection())
	eventually(t, 15*time.Second, "survivor reports no leader", func() error {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := kv.Put(c, &pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
		if !errors.Is(rpctypes.Error(err), rpctypes.ErrNoLeader) {
			return fmt.Errorf("put: %v", err)
		}
		return nil
	})
	for i := 0; i < 3; i++ {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		start := time.Now()
		_, err := kv.Put(c, &pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
		if !errors.Is(rpctypes.Error(err), rpctypes.ErrNoLeader) {
			t.Fatalf("put past the grace: %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("no-leader answer to a put took %v", d)
		}
		start = time.Now()
		_, err = kv.Range(c, &pb.RangeRequest{Key: []byte("k")})
		cancel()
		if !errors.Is(rpctypes.Error(err), rpctypes.ErrNoLeader) {
			t.Fatalf("linearizable range past the grace: %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("no-leader answer to a range took %v", d)
		}
	}
	// Serializable reads are still served locally.
	if _, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), Serializable: true}); err != nil {
		t.Fatalf("serializable range without a leader: %v", err)
	}
}

// A write that arrives while there is no leader yet waits for the election
// and succeeds, as etcd's do, instead of failing with "no leader": here the
// whole cluster restarts and the write is sent to the first member up,
// before its peers are.
func TestWriteDuringElectionWaitsForLeader(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := tc.Nodes()
	for _, n := range nodes {
		if err := n.Kill(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes[0].Start(ctx); err != nil {
		t.Fatal(err)
	}
	kv := pb.NewKVClient(tc.client(nodes[0].ClientURL()).ActiveConnection())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := kv.Put(c, &pb.PutRequest{Key: []byte("during-election"), Value: []byte("v")})
		done <- err
	}()
	if err := nodes[1].Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write sent before the election, answered after %v: %v", time.Since(start), err)
	}
	t.Logf("write sent before the election acknowledged after %v", time.Since(start))
	resp, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("during-election")})
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read back: %v %v", resp, err)
	}
}

func TestHealthMetricsAndGRPCHealth(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := tc.Nodes()[0]
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.ClientURL()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/health"); code != 200 || !strings.Contains(body, `"health":"true"`) {
		t.Errorf("/health = %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "etcd_server_has_leader 1") ||
		!strings.Contains(body, "etcd_disk_wal_fsync_duration_seconds_bucket") {
		t.Errorf("/metrics = %d, missing etcd's metrics", code)
	}
	if code, body := get("/version"); code != 200 || !strings.Contains(body, `"etcdserver":"3.6`) {
		t.Errorf("/version = %d %s", code, body)
	}
	cli := tc.client(n.ClientURL())
	hc := healthpb.NewHealthClient(cli.ActiveConnection())
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health = %v, %v", resp, err)
	}
	st, err := cli.Status(ctx, n.ClientURL())
	if err != nil || st.Leader == 0 || st.RaftTerm == 0 || st.RaftIndex == 0 || st.DbSize == 0 || st.Version == "" {
		t.Errorf("Maintenance.Status = %+v, %v", st, err)
	}
	// A member without a leader is unhealthy, with etcd's reason.
	for _, m := range tc.Nodes()[1:] {
		if err := m.Kill(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "/health reports no leader", func() error {
		if code, body := get("/health"); code != http.StatusServiceUnavailable || !strings.Contains(body, "RAFT NO LEADER") {
			return fmt.Errorf("/health = %d %s", code, body)
		}
		return nil
	})
}

// A crash in mid-write leaves a torn tail: the member truncates it and
// rejoins. A flipped byte anywhere else stops the member with a message
// naming the file and the offset; it never serves data it cannot vouch for.
func TestDamagedWALTornTailRepairedCorruptionRefused(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	for i := 0; i < 50; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("d%02d", i), strings.Repeat("x", 200)); err != nil {
			t.Fatal(err)
		}
	}
	walOf := func(name string) string {
		files, _ := filepath.Glob(filepath.Join(tc.LocalNode(name).DataDir(), "member", "wal", "*.wal"))
		if len(files) == 0 {
			t.Fatalf("no wal segment for %s", name)
		}
		return files[len(files)-1]
	}

	// Torn tail on n2: half a record appended, as a crash mid-write leaves.
	torn := tc.LocalNode("n2")
	if err := torn.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(walOf("n2"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0x40, 0, 0, 0, 3, 0x11, 0x22})
	f.Close()
	if err := torn.Start(ctx); err != nil {
		t.Fatalf("restart with a torn tail: %v", err)
	}
	eventually(t, 20*time.Second, "n2 serves after its torn tail was repaired", func() error {
		r, err := tc.client(torn.ClientURL()).Get(ctx, "d", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if r.Count != 50 {
			return fmt.Errorf("n2 has %d of 50 keys", r.Count)
		}
		return nil
	})
	if !strings.Contains(tc.logOf("n2"), "repaired a torn WAL tail") {
		t.Error("n2's log does not report the repaired torn tail")
	}

	// A flipped byte in the middle of n3's log.
	bad := tc.LocalNode("n3")
	if err := bad.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	seg := walOf("n3")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startErr := bad.Start(ctx)
	eventually(t, 10*time.Second, "n3 refuses its corrupt log", func() error {
		if bad.State() != cluster.Stopped {
			return fmt.Errorf("n3 is %v", bad.State())
		}
		return nil
	})
	log := tc.logOf("n3")
	if !strings.Contains(log, seg) || !strings.Contains(log, "offset") || !strings.Contains(log, "corrupt") {
		t.Fatalf("n3's last words should name %s and an offset (start err %v); log tail:\n%s", seg, startErr, log[max(0, len(log)-1500):])
	}
}

// Concurrent linearizable reads on every member must not lose read-index
// rounds. (They did when each member numbered its rounds from 1: the
// leader keys pending reads by request context and ignored a second
// member's round with the same number, which then waited for the retry.)
// Reads go to all members in lockstep, one per member per step, so the
// members' round numbers stay aligned and any collision shows every step.
func TestLinearizableReadsOnAllMembersAtOnceNeedNoRetries(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var clients []*clientv3.Client
	for _, n := range tc.Nodes() {
		clients = append(clients, tc.client(n.ClientURL()))
	}
	const steps = 10
	for step := 0; step < steps; step++ {
		var wg sync.WaitGroup
		for i, cli := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cli.Get(ctx, "k"); err != nil {
					t.Errorf("step %d: get from member %d: %v", step, i+1, err)
				}
			}()
		}
		wg.Wait()
	}
	var retried float64
	for _, n := range tc.Nodes() {
		resp, err := http.Get(n.ClientURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			var v float64
			if _, err := fmt.Sscanf(line, "etcd_server_slow_read_indexes_total %g", &v); err == nil {
				retried += v
			}
		}
	}
	// One round can be genuinely slow on a loaded machine; lost rounds
	// show up at every step.
	if retried > 2 {
		t.Fatalf("%v read-index rounds in %d steps had to be retried: rounds are being lost", retried, steps)
	}
}

// Every member that comes back catches up: leaders are killed and
// restarted again and again under a write load, and each restarted member
// must rejoin (agree on the leader and apply the latest write). It did not
// when followers had forwarded proposals to the dead leader: delivered
// first on the new streams, they blocked the restarted member's stream
// readers in raft.Node.Step until it knew a leader, which the heartbeats
// queued behind them would have told it.
func TestRepeatedLeaderKillsEveryRestartedMemberRejoins(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	load, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go func() {
		for i := 0; load.Err() == nil && i < 100000; i++ {
			c, cancel := context.WithTimeout(load, time.Second)
			cli.Put(c, fmt.Sprintf("load%d", i%100), "v")
			cancel()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for round := 0; round < 4; round++ {
		old := tc.leader()
		if err := old.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := old.Start(ctx); err != nil {
			t.Fatal(err)
		}
		marker := fmt.Sprintf("round%d", round)
		back := tc.client(old.ClientURL())
		eventually(t, 20*time.Second, fmt.Sprintf("round %d: restarted %s rejoins", round, old.Name()), func() error {
			c, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := cli.Put(c, "marker", marker); err != nil {
				return err
			}
			r, err := back.Get(c, "marker") // linearizable: needs the leader
			if err != nil {
				return err
			}
			if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != marker {
				return fmt.Errorf("%s reads %v", old.Name(), r.Kvs)
			}
			return nil
		})
	}
}
