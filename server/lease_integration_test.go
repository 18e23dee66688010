package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// getAt reads key serializably from one member: whether it exists, and
// the member's revision.
func getAt(ctx context.Context, cli *clientv3.Client, key string) (bool, int64, error) {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := cli.Get(c, key, clientv3.WithSerializable())
	if err != nil {
		return false, 0, err
	}
	return len(resp.Kvs) == 1, resp.Header.Revision, nil
}

// A lease nobody keeps alive expires: the leader revokes it through Raft,
// so its keys vanish at the same revision on every member (the one right
// after the last write), and the lease is gone everywhere.
func TestLeaseKeysVanishAfterTTLAtTheSameRevisionOnEveryMember(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	g, err := cli.Grant(ctx, 2) // etcd's minimum with the default timing
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, k := range []string{"l/a", "l/b", "l/c"} {
		resp, err := cli.Put(ctx, k, "v", clientv3.WithLease(g.ID))
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Header.Revision
	}
	for _, n := range tc.Nodes() {
		m := tc.client(n.ClientURL())
		eventually(t, 15*time.Second, "keys vanish on "+n.Name(), func() error {
			resp, err := m.Get(ctx, "l/", clientv3.WithPrefix(), clientv3.WithSerializable())
			if err != nil {
				return err
			}
			if len(resp.Kvs) != 0 {
				return fmt.Errorf("%d keys left at rev %d", len(resp.Kvs), resp.Header.Revision)
			}
			if resp.Header.Revision != last+1 {
				t.Errorf("%s: keys gone at rev %d, want %d (one revision after the last put)", n.Name(), resp.Header.Revision, last+1)
			}
			// At the revision before, all three were there.
			old, err := m.Get(ctx, "l/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithRev(last))
			if err != nil || len(old.Kvs) != 3 {
				t.Errorf("%s: at rev %d: %v, %v; want the 3 keys", n.Name(), last, old, err)
			}
			return nil
		})
		ttl, err := m.TimeToLive(ctx, g.ID)
		if err != nil || ttl.TTL != -1 {
			t.Errorf("%s: time-to-live of the expired lease: %+v, %v; want TTL -1", n.Name(), ttl, err)
		}
	}
}

// Keep-alives sent through a follower keep a lease's keys across a SIGKILL
// of the leader (the new leader extends every TTL, and renewals reach it),
// and once they stop the keys vanish within the TTL plus the extension.
func TestLeaseKeepAliveThroughFollowerKeepsKeysAcrossLeaderKill(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	old := tc.leader()
	var follower string
	for _, n := range tc.Nodes() {
		if n.Name() != old.Name() {
			follower = n.ClientURL()
			break
		}
	}
	cli := tc.client(follower)
	g, err := cli.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "kept", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	kactx, stopKA := context.WithCancel(ctx)
	ka, err := cli.KeepAlive(kactx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan int)
	go func() {
		n := 0
		for range ka {
			n++
		}
		drained <- n
	}()
	time.Sleep(time.Second)
	if err := old.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	// Three TTLs, an election among them.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		ok, rev, err := getAt(ctx, cli, "kept")
		if err == nil && !ok {
			t.Fatalf("the kept-alive key vanished at rev %d after the leader was killed", rev)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ttl, err := cli.TimeToLive(ctx, g.ID)
	if err != nil || ttl.TTL <= 0 {
		t.Fatalf("time-to-live through the follower: %+v, %v; want the lease alive", ttl, err)
	}
	stopKA()
	if n := <-drained; n < 5 {
		t.Errorf("%d keep-alive responses in 11 s with TTL 3, want more", n)
	}
	eventually(t, 15*time.Second, "key vanishes once keep-alives stop", func() error {
		ok, _, err := getAt(ctx, cli, "kept")
		if err != nil {
			return err
		}
		if ok {
			return errors.New("still there")
		}
		return nil
	})
}

// A revoke deletes every key attached to the lease in one revision; keys
// of other leases and without a lease stay. Puts and txns attaching to a
// missing lease get etcd's error and write nothing; ignore_lease keeps the
// key's lease.
func TestLeaseRevokeDeletesEveryAttachedKeyInOneRevision(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	g, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	other, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if g.TTL != 60 || g.ID <= 0 {
		t.Errorf("grant: %+v", g)
	}
	// A client-chosen ID; a TTL below etcd's minimum (2 s with the default
	// timing) is raised to it; the same ID again is refused.
	raw := pb.NewLeaseClient(cli.ActiveConnection())
	chosen, err := raw.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 0x1234, TTL: 1})
	if err != nil || chosen.ID != 0x1234 || chosen.TTL != 2 {
		t.Errorf("grant of a chosen ID with TTL 1: %+v, %v; want ID 0x1234, TTL 2", chosen, err)
	}
	if _, err := raw.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 0x1234, TTL: 60}); !errors.Is(err, rpctypes.ErrGRPCLeaseExist) {
		t.Errorf("second grant of 0x1234: %v, want %v", err, rpctypes.ErrGRPCLeaseExist)
	}
	for i := 0; i < 5; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("r/%d", i), "v", clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("r/txn", "v", clientv3.WithLease(g.ID)),
		clientv3.OpPut("r/other", "v", clientv3.WithLease(other.ID))).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "r/plain", "v"); err != nil {
		t.Fatal(err)
	}
	// ignore_lease keeps r/0 on g.
	if _, err := cli.Put(ctx, "r/0", "w", clientv3.WithIgnoreLease()); err != nil {
		t.Fatal(err)
	}
	before, _ := cli.Get(ctx, "r/")
	if _, err := cli.Put(ctx, "r/missing", "v", clientv3.WithLease(0x7777)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("put with a missing lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("r/missing", "v", clientv3.WithLease(0x7777))).Commit(); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("txn put with a missing lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := cli.Grant(ctx, 9000000001); !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
		t.Errorf("grant of a too large TTL: %v, want %v", err, rpctypes.ErrLeaseTTLTooLarge)
	}
	ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil || fmt.Sprintf("%s", ttl.Keys) != "[r/0 r/1 r/2 r/3 r/4 r/txn]" || ttl.GrantedTTL != 60 {
		t.Errorf("time-to-live with keys: %+v, %v", ttl, err)
	}
	rv, err := cli.Revoke(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rv.Header.Revision != before.Header.Revision+1 {
		t.Errorf("revoke at rev %d, want %d: every key in one revision", rv.Header.Revision, before.Header.Revision+1)
	}
	after, err := cli.Get(ctx, "r/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range after.Kvs {
		keys = append(keys, string(kv.Key))
	}
	if fmt.Sprint(keys) != "[r/other r/plain]" {
		t.Errorf("after the revoke: %v, want [r/other r/plain]", keys)
	}
	if _, err := cli.Revoke(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("second revoke: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	ls, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := map[clientv3.LeaseID]bool{}
	for _, l := range ls.Leases {
		left[l.ID] = true
	}
	if left[g.ID] || !left[other.ID] {
		t.Errorf("leases %v: want %x gone and %x left", ls.Leases, g.ID, other.ID)
	}
}

// quorumctlBinary builds cmd/quorumctl (etcd's etcdctl) for a test.
func quorumctlBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "quorumctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/quorum-kv/quorum/cmd/quorumctl").CombinedOutput(); err != nil {
		t.Fatalf("build quorumctl: %v\n%s", err, out)
	}
	return bin
}

// startRealEtcd starts tools/bin/etcd as one member on loopback and returns
// its client URL, or "" if the binary is absent.
func startRealEtcd(t *testing.T) string {
	t.Helper()
	bin, _ := filepath.Abs("../tools/bin/etcd")
	if _, err := os.Stat(bin); err != nil {
		return ""
	}
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", port())
	peer := fmt.Sprintf("http://127.0.0.1:%d", port())
	cmd := exec.Command(bin, "--name", "n1", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "n1="+peer, "--log-level", "error")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	eventually(t, 15*time.Second, "etcd ready", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Get(ctx, "ready")
		return err
	})
	return client
}

// The etcdctl lease commands, verbatim through quorumctl, print what they
// print against a real etcd (lease IDs, which differ, aside). Without
// tools/bin/etcd the output is compared with etcd's recorded format.
func TestQuorumctlLeaseCommandsMatchEtcd(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	bin := quorumctlBinary(t)
	script := func(endpoints []string) string {
		var eps []string
		for _, e := range endpoints {
			eps = append(eps, strings.TrimPrefix(e, "http://"))
		}
		ctl := func(args ...string) string {
			cmd := exec.Command(bin, append([]string{"--endpoints=" + strings.Join(eps, ",")}, args...)...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			out, err := cmd.Output() // stderr holds the client's retry log lines
			if err != nil {
				return string(out) + "exit: " + err.Error() + "\n"
			}
			return string(out)
		}
		var b strings.Builder
		grant := ctl("lease", "grant", "60")
		b.WriteString(grant)
		f := strings.Fields(grant)
		if len(f) < 2 {
			return b.String()
		}
		id := f[1]
		for _, args := range [][]string{
			{"put", "--lease=" + id, "k", "v"},
			{"lease", "keep-alive", "--once", id},
			{"lease", "timetolive", "--keys", id},
			{"lease", "list"},
			{"lease", "revoke", id},
			{"lease", "timetolive", id},
			{"get", "k"},
		} {
			b.WriteString(ctl(args...))
		}
		return regexp.MustCompile(id).ReplaceAllString(b.String(), "ID")
	}
	got := script(tc.Endpoints())
	want := "lease ID granted with TTL(60s)\n" +
		"OK\n" +
		"lease ID keepalived with TTL(60)\n" +
		"lease ID granted with TTL(60s), remaining(59s), attached keys([k])\n" +
		"found 1 leases\nID\n" +
		"lease ID revoked\n" +
		"lease ID already expired\n"
	if etcd := startRealEtcd(t); etcd != "" {
		want = script([]string{etcd})
	}
	// The remaining TTL depends on when the second ticks.
	norm := regexp.MustCompile(`remaining\((59|60)s\)`)
	if norm.ReplaceAllString(got, "remaining(Ns)") != norm.ReplaceAllString(want, "remaining(Ns)") {
		t.Errorf("quorumctl lease commands printed:\n%s\netcd prints:\n%s", got, want)
	}
}
