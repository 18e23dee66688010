package server_test

// Runtime membership with real quorumd processes: a failed member replaced
// under load, a removed member's exit. Members are started here, one
// process each, so that a test can add one with --initial-cluster-state
// existing.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// memberProc is one server process (quorumd or etcd) on loopback.
type memberProc struct {
	name, client, peer string
	dataDir, logPath   string
	cmd                *exec.Cmd
	done               chan struct{}
	err                error // after done
}

// newMemberURLs picks a member's client and peer URLs and its data dir
// under dir.
func newMemberURLs(t *testing.T, dir, name string) *memberProc {
	return &memberProc{name: name,
		client:  fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		peer:    fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		dataDir: filepath.Join(dir, name), logPath: filepath.Join(dir, name+".log")}
}

// start runs bin (quorumd or etcd, which take the same flags) as member m
// of initialCluster in state "new" or "existing"; it is killed when the
// test ends, and its log is shown if the test failed.
func (m *memberProc) start(t *testing.T, bin, initialCluster, state string, extra ...string) {
	t.Helper()
	args := append([]string{"--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", initialCluster, "--initial-cluster-state", state,
		"--heartbeat-interval", "50", "--election-timeout", "500"}, extra...)
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(bin, args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", m.name, err)
	}
	m.done = make(chan struct{})
	go func() { m.err = m.cmd.Wait(); logf.Close(); close(m.done) }()
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			b, _ := os.ReadFile(m.logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 30 {
				lines = lines[len(lines)-30:]
			}
			t.Logf("--- last lines of %s:\n%s", m.logPath, strings.Join(lines, "\n"))
		}
	})
}

func (m *memberProc) kill() {
	if m.cmd == nil {
		return
	}
	select {
	case <-m.done:
	default:
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

func (m *memberProc) log() string {
	b, _ := os.ReadFile(m.logPath)
	return string(b)
}

func memberClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// retryUnhealthy retries a reconfiguration while --strict-reconfig-check
// refuses it because the peers have not been connected long enough yet
// (etcd's HealthInterval, 5 s), and after a timeout unless done says it
// happened: Raft drops a conf change proposed while another is unapplied
// (a new leader counts its whole log as such), and so the outcome of a
// timed-out one is unknown, as with etcd.
func retryUnhealthy(t *testing.T, what string, f func(ctx context.Context) error, done func(ctx context.Context) bool) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f(ctx)
		if err != nil && (errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail)) {
			t.Logf("%s: %v", what, err)
			if done(ctx) {
				err = nil
			} else {
				err = rpctypes.ErrUnhealthy // not done: try again
			}
		}
		cancel()
		if err == nil {
			return
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// memberWith returns the listed member with peer URL u (nil if none).
func memberWith(ctx context.Context, cli *clientv3.Client, u string) *etcdserverpb.Member {
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return nil
	}
	for _, m := range ml.Members {
		if len(m.PeerURLs) == 1 && m.PeerURLs[0] == u {
			return m
		}
	}
	return nil
}

// (a), (d): a three-member cluster under a steady write load; one member
// fails and is removed (restarted, it exits 0 with etcd's message, as etcd,
// told by its peers), wiped, and added back
// under a new name and ID on the same peer URL, as an operator replaces a
// failed machine; started with --initial-cluster-state existing it learns
// the cluster from its peers, is caught up by a snapshot (the log was
// compacted meanwhile), and serves every acknowledged write.
func TestReplaceAMemberUnderLoadServesEveryAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
	dir := t.TempDir()
	ms := []*memberProc{newMemberURLs(t, dir, "n1"), newMemberURLs(t, dir, "n2"), newMemberURLs(t, dir, "n3")}
	var ic []string
	for _, m := range ms {
		ic = append(ic, m.name+"="+m.peer)
	}
	flags := []string{"--snapshot-count", "200", "--snapshot-catchup-entries", "50"}
	for _, m := range ms {
		m.start(t, quorumdBinary, strings.Join(ic, ","), "new", flags...)
	}
	cli := memberClient(t, ms[0].client, ms[1].client)
	eventually(t, 30*time.Second, "cluster up", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Put(ctx, "up", "1")
		return err
	})

	// The load: sequential puts through n1 and n2; acked holds every
	// acknowledged key.
	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("w/%05d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cli.Put(ctx, k, "v")
			cancel()
			if err == nil {
				mu.Lock()
				acked = append(acked, k)
				mu.Unlock()
			}
		}
	}()
	nAcked := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	// n3 fails (killed), and is removed while down; restarted on its data
	// dir, it learns from its peers (410 Gone) that it was removed, and
	// stops, non-zero, with etcd's message.
	st, err := memberClient(t, ms[2].client).Status(context.Background(), ms[2].client)
	if err != nil {
		t.Fatal(err)
	}
	oldID := st.Header.MemberId
	ms[2].kill()
	retryUnhealthy(t, "remove n3", func(ctx context.Context) error {
		_, err := cli.MemberRemove(ctx, oldID)
		return err
	}, func(ctx context.Context) bool { return memberWith(ctx, cli, ms[2].peer) == nil })
	ms[2].start(t, quorumdBinary, strings.Join(ic, ","), "new", flags...)
	select {
	case <-ms[2].done:
	case <-time.After(15 * time.Second):
		t.Fatal("the removed member is still running")
	}
	if ms[2].err != nil {
		t.Errorf("the removed member exited with %v, want status 0 as etcd", ms[2].err)
	}
	if l := ms[2].log(); !strings.Contains(l, "the member has been permanently removed from the cluster") ||
		!strings.Contains(l, "data-dir used by this member must be removed") || !strings.Contains(l, "peer rejected this member as removed") {
		t.Error("the removed member's log lacks etcd's lines")
	}

	// Enough writes for the leader to snapshot and compact past what the
	// new member could get from the log.
	for nAcked() < 600 {
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.RemoveAll(ms[2].dataDir); err != nil {
		t.Fatal(err)
	}
	n4 := &memberProc{name: "n4", client: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), peer: ms[2].peer,
		dataDir: filepath.Join(dir, "n4"), logPath: filepath.Join(dir, "n4.log")}
	var newID uint64
	retryUnhealthy(t, "add n4", func(ctx context.Context) error {
		r, err := cli.MemberAdd(ctx, []string{n4.peer})
		if err == nil {
			newID = r.Member.ID
		}
		return err
	}, func(ctx context.Context) bool {
		if m := memberWith(ctx, cli, n4.peer); m != nil {
			newID = m.ID
			return true
		}
		return false
	})
	if newID == oldID {
		t.Fatal("the replacement got the removed member's ID")
	}
	n4.start(t, quorumdBinary, strings.Join([]string{ic[0], ic[1], "n4=" + n4.peer}, ","), "existing", flags...)
	c4 := memberClient(t, n4.client)
	eventually(t, 30*time.Second, "n4 serves", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c4.Get(ctx, "up")
		return err
	})
	st, err = c4.Status(context.Background(), n4.client)
	if err != nil || st.Header.MemberId != newID || st.IsLearner {
		t.Fatalf("n4's status: %+v, %v; want member ID %x as MemberAdd returned", st, err, newID)
	}
	if !strings.Contains(n4.log(), "received database snapshot") {
		t.Error("n4 caught up without a snapshot; the test meant to cover one")
	}
	// More load with n4 a voter, then stop and read everything on n4.
	target := nAcked() + 200
	for nAcked() < target {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c4.Get(ctx, "w/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, kv := range r.Kvs {
		have[string(kv.Key)] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range acked {
		if !have[k] {
			t.Fatalf("acknowledged %s is not on the new member (%d acked, %d there)", k, len(acked), len(have))
		}
	}
	ml, err := c4.MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list on n4: %v %v", ml, err)
	}
	for _, m := range ml.Members {
		if m.ID == oldID {
			t.Fatal("the removed member is still listed")
		}
	}
	want := describeMemberList(ml.Members)

	// (e) Every member restarts (killed, so nothing is flushed on the way
	// out) with that membership, n4 from what it joined with.
	mu.Unlock()
	for _, m := range []*memberProc{ms[0], ms[1], n4} {
		m.kill()
	}
	ms[0].start(t, quorumdBinary, strings.Join(ic, ","), "new", flags...)
	ms[1].start(t, quorumdBinary, strings.Join(ic, ","), "new", flags...)
	n4.start(t, quorumdBinary, strings.Join([]string{ic[0], ic[1], "n4=" + n4.peer}, ","), "existing", flags...)
	for _, m := range []*memberProc{ms[0], ms[1], n4} {
		c := memberClient(t, m.client)
		eventually(t, 30*time.Second, m.name+" restarted with the membership", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			ml, err := c.MemberList(ctx)
			if err != nil {
				return err
			}
			if got := describeMemberList(ml.Members); got != want {
				return fmt.Errorf("member list %s, want %s", got, want)
			}
			return nil
		})
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	r, err = c4.Get(ctx2, "w/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	mu.Lock()
	if err != nil || r.Count < int64(len(acked)) {
		t.Fatalf("after the restart n4 has %v keys (%v), %d acknowledged", r, err, len(acked))
	}
}

func describeMemberList(ms []*etcdserverpb.Member) string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%x %s %v %v learner=%v", m.ID, m.Name, m.PeerURLs, m.ClientURLs, m.IsLearner))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// With auth on, only root changes the membership, and a promotion sent to
// a follower reaches the leader with root's token (etcd's
// promoteMemberHTTP): the leader's answer is about the learner, not about
// a missing user.
func TestMembershipChangesNeedRootAndPromotionForwardsTheToken(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lead := tc.leader()
	setUpAuth(t, ctx, tc.client(tc.Endpoints()...))
	var follower string
	for _, n := range tc.Nodes() {
		if n.Name() != lead.Name() {
			follower = n.ClientURL()
			break
		}
	}
	alice := tc.userClient("alice", "alicepw", follower)
	if _, err := alice.MemberAdd(ctx, []string{"http://127.0.0.1:9"}); !isPermissionDenied(err) {
		t.Fatalf("alice adds a member: %v, want permission denied", err)
	}
	root := tc.userClient("root", "rootpw", follower)
	var id uint64
	retryUnhealthy(t, "root adds a learner", func(ctx context.Context) error {
		r, err := root.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:9"})
		if err == nil {
			id = r.Member.ID
		}
		return err
	}, func(ctx context.Context) bool {
		if m := memberWith(ctx, root, "http://127.0.0.1:9"); m != nil {
			id = m.ID
			return true
		}
		return false
	})
	if _, err := alice.MemberPromote(ctx, id); !isPermissionDenied(err) {
		t.Fatalf("alice promotes: %v, want permission denied", err)
	}
	if _, err := root.MemberPromote(ctx, id); !errors.Is(rpctypes.Error(err), rpctypes.ErrMemberLearnerNotReady) {
		t.Fatalf("root promotes through a follower: %v, want %v", err, rpctypes.ErrMemberLearnerNotReady)
	}
	if _, err := root.MemberRemove(ctx, id); err != nil {
		t.Fatalf("root removes the learner: %v", err)
	}
}
