package server_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/local"
	"github.com/quorum-kv/quorum/server"
)

// manualMember is a member's quorumd run by hand with extra flags, its
// output in a buffer: for the restarts that the local cluster's Start
// (which expects the member to come up) cannot do.
type manualMember struct {
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
}

// runMember runs the stopped member n with its arguments and extra.
func runMember(t *testing.T, n *local.Node, extra ...string) *manualMember {
	t.Helper()
	m := &manualMember{done: make(chan struct{})}
	m.cmd = exec.Command(quorumdBinary, append(n.Args(), extra...)...)
	m.cmd.Stdout, m.cmd.Stderr = &m.out, &m.out
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start %s by hand: %v", n.Name(), err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() { _ = m.cmd.Process.Kill(); <-m.done })
	return m
}

// waitOutput waits up to d for s in the member's output.
func (m *manualMember) waitOutput(d time.Duration, s string) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(m.out.String(), s) {
			return true
		}
		select {
		case <-m.done:
			return strings.Contains(m.out.String(), s)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// stop ends the member with SIGTERM and waits for it.
func (m *manualMember) stop(t *testing.T) {
	t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		t.Fatal("member did not stop on SIGTERM")
	}
}

// The corruption checks as etcd's, on a 3-member cluster whose leader runs
// the periodic check every second. A follower is stopped and its newest
// snapshot rewritten consistently with one value changed (its WAL after
// the snapshot does not touch that key), so it starts fine but holds
// different data. Restarted with the initial check, it refuses to start
// naming the inconsistency (and an untouched member passes that check);
// restarted without it, it serves, and the leader's periodic check raises
// the CORRUPT alarm for it through Raft, which `etcdctl alarm list` shows;
// then writes fail with etcd's "corrupt cluster" on every member.
func TestCorruptionChecksFindAMemberWithDifferentData(t *testing.T) {
	tc := startCluster(t, 3, "--snapshot-count=50", "--corrupt-check-time=1s")
	tc.waitHealthy()
	eps := tc.Endpoints()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, victimID, leader := stopFollowerWithSnapshot(t, tc)

	// Untouched, the member passes the initial check and serves.
	m := runMember(t, n, "--experimental-initial-corrupt-check=true")
	if !m.waitOutput(30*time.Second, "initial corruption checking passed; no corruption") ||
		!m.waitOutput(30*time.Second, "ready to serve client requests") {
		t.Fatalf("untouched %s did not pass the initial check:\n%s", n.Name(), m.out.String())
	}
	m.stop(t)
	rewriteVictim(t, n)

	// With the initial check it refuses to start, naming the inconsistency.
	m = runMember(t, n, "--experimental-initial-corrupt-check=true")
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s with different data did not exit:\n%s", n.Name(), m.out.String())
	}
	want := fmt.Sprintf("%x found data inconsistency with peers", victimID)
	if m.cmd.ProcessState.Success() || !strings.Contains(m.out.String(), want) ||
		!strings.Contains(m.out.String(), "found different hash values from remote peer") {
		t.Fatalf("%s exited %v without %q:\n%s", n.Name(), m.cmd.ProcessState, want, m.out.String())
	}
	for _, l := range strings.Split(m.out.String(), "\n") {
		if strings.Contains(l, "inconsistency") || strings.Contains(l, "different hash") {
			t.Logf("%s: %s", n.Name(), l)
		}
	}

	// Without it, it starts and holds different data.
	startAndServeVictim(t, tc, n)

	// The leader's periodic check raises CORRUPT for it.
	waitCorruptAlarm(t, eps, victimID)
	if !strings.Contains(tc.logOf(leader.Name()), "same compact revision then hashes must match") {
		t.Errorf("the leader's log does not name the mismatch")
	}
	// With CORRUPT active every member refuses writes; reads still work.
	for _, ep := range eps {
		c := tc.client(ep)
		if _, err := c.Put(ctx, "after", "x"); err == nil || err.Error() != rpctypes.ErrCorrupt.Error() {
			t.Fatalf("put on %s with CORRUPT active: %v", ep, err)
		}
		if _, err := c.Get(ctx, "other/000"); err != nil {
			t.Fatalf("get on %s with CORRUPT active: %v", ep, err)
		}
	}
}

// stopFollowerWithSnapshot writes victim=good and enough more for a
// snapshot (the cluster runs with --snapshot-count=50), stops a follower
// that has a snapshot, and writes more that it will replay, none to the
// victim. It returns the follower, its ID and the leader.
func stopFollowerWithSnapshot(t *testing.T, tc *testCluster) (n *local.Node, victimID uint64, leader cluster.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	if _, err := cli.Put(ctx, "victim", "good"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 150; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("other/%03d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	leader = tc.leader()
	for _, node := range tc.Nodes() {
		if node.Name() != leader.Name() {
			n = tc.LocalNode(node.Name())
			break
		}
	}
	st, err := cli.Status(ctx, n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	victimID = st.Header.MemberId
	snapDir := filepath.Join(n.DataDir(), "member", "snap")
	eventually(t, 20*time.Second, "a snapshot on "+n.Name(), func() error {
		if ms, _ := filepath.Glob(filepath.Join(snapDir, "*.snap")); len(ms) == 0 {
			return fmt.Errorf("no snapshot in %s", snapDir)
		}
		return nil
	})
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// More writes the stopped member will replay from the leader, none to
	// the victim.
	for i := 150; i < 160; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("other/%03d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	return n, victimID, leader
}

// rewriteVictim rewrites the stopped member n's newest snapshot with
// victim=evil.
func rewriteVictim(t *testing.T, n *local.Node) {
	t.Helper()
	idx, rev, err := server.RewriteNewestSnapshotValue(n.DataDir(), []byte("victim"), []byte("evil"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote %s's snapshot at index %d (revision %d): victim=evil", n.Name(), idx, rev)
}

// startAndServeVictim starts n and waits until it serves victim=evil.
func startAndServeVictim(t *testing.T, tc *testCluster, n *local.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	nc := tc.client(n.ClientURL())
	eventually(t, 20*time.Second, n.Name()+" serving the rewritten value", func() error {
		r, err := nc.Get(ctx, "victim", clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "evil" {
			return fmt.Errorf("victim on %s: %v", n.Name(), r.Kvs)
		}
		return nil
	})
}

// waitCorruptAlarm waits for `etcdctl alarm list` to show CORRUPT for id.
func waitCorruptAlarm(t *testing.T, eps []string, id uint64) {
	t.Helper()
	want := fmt.Sprintf("memberID:%d alarm:CORRUPT", id)
	eventually(t, 30*time.Second, "the CORRUPT alarm", func() error {
		out, err := ctl(t, eps, "alarm", "list")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, l := range alarmLines(t, out) {
			if l == want {
				return nil
			}
		}
		return fmt.Errorf("alarm list: %q", out)
	})
}

// The compaction hash check as etcd's (CompactHashCheck, every second):
// the follower with different data stores a different hash when the
// cluster compacts, and the leader raises CORRUPT for it, the odd one
// out.
func TestCompactHashCheckFindsAMemberWithDifferentData(t *testing.T) {
	tc := startCluster(t, 3, "--snapshot-count=50", "--feature-gates=CompactHashCheck=true", "--compact-hash-check-time=1s")
	tc.waitHealthy()
	eps := tc.Endpoints()
	n, victimID, leader := stopFollowerWithSnapshot(t, tc)
	rewriteVictim(t, n)
	startAndServeVictim(t, tc, n)
	if ls := alarmLines(t, mustCtl(t, eps, "alarm", "list")); len(ls) != 0 {
		t.Fatalf("alarms before any compaction: %q", ls)
	}
	cli := tc.client(eps...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := cli.Get(ctx, "victim")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, r.Header.Revision); err != nil {
		t.Fatal(err)
	}
	waitCorruptAlarm(t, eps, victimID)
	if !strings.Contains(tc.logOf(leader.Name()), "Detected compaction hash mismatch") {
		t.Errorf("the leader's log does not name the mismatch")
	}
}
