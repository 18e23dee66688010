package server_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorum-kv/quorum/cluster"
)

// Auto compaction (--auto-compaction-mode, --auto-compaction-retention) on
// real processes: etcd's compactor runs on the leader and its compactions
// go through Raft, so every member ends compacted at the same revision.

var periodic1s = []string{"--auto-compaction-mode=periodic", "--auto-compaction-retention=1s"}

// compactedAt says whether a read of member cli at rev fails with etcd's
// "required revision has been compacted".
func compactedAt(ctx context.Context, cli *clientv3.Client, rev int64) (bool, error) {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := cli.Get(c, "any", clientv3.WithSerializable(), clientv3.WithRev(rev))
	if err != nil && strings.Contains(err.Error(), "required revision has been compacted") {
		return true, nil
	}
	return false, err
}

// waitCompactedTo waits until every one of nodes is compacted at exactly
// rev: a read at rev-1 is refused as compacted, a read at rev is served.
func waitCompactedTo(t *testing.T, tc *testCluster, nodes []cluster.Node, rev int64, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	for _, n := range nodes {
		cli := tc.client(n.ClientURL())
		eventually(t, d, fmt.Sprintf("%s compacted at %d", n.Name(), rev), func() error {
			if c, err := compactedAt(ctx, cli, rev-1); err != nil || !c {
				return fmt.Errorf("read at %d: compacted %v, %v", rev-1, c, err)
			}
			if c, err := compactedAt(ctx, cli, rev); err != nil || c {
				return fmt.Errorf("read at %d: compacted %v, %v (compacted past it)", rev, c, err)
			}
			return nil
		})
	}
}

// putFor writes to cli every 20 ms for d and returns the last revision.
func putFor(t *testing.T, cli *clientv3.Client, d time.Duration) int64 {
	t.Helper()
	var last int64
	for i, end := 0, time.Now().Add(d); time.Now().Before(end); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Put(ctx, fmt.Sprintf("k%d", i%10), fmt.Sprint(i))
		cancel()
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		last = resp.Header.Revision
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

func logHas(tc *testCluster, n cluster.Node, msg string) bool {
	return strings.Contains(tc.logOf(n.Name()), `"msg":"`+msg+`"`)
}

// Periodic mode with a 1 s retention: while writes go on, the leader
// compacts what is older than a second; once they stop, the window slides
// to the last revision and every member is compacted exactly there. Only
// the leader runs the compactor, with etcd's log lines.
func TestAutoCompactionPeriodicCompactsEveryMemberAtTheSameRevision(t *testing.T) {
	tc := startCluster(t, 3, periodic1s...)
	tc.waitHealthy()
	leader := tc.leader()
	last := putFor(t, tc.client(tc.Endpoints()...), 2500*time.Millisecond)
	waitCompactedTo(t, tc, tc.Nodes(), last, 10*time.Second)
	if l := tc.leader(); l.Name() != leader.Name() {
		t.Skipf("leader changed from %s to %s during the test; the leader-only check does not apply", leader.Name(), l.Name())
	}
	for _, n := range tc.Nodes() {
		ran := logHas(tc, n, "completed auto periodic compaction")
		if n.Name() == leader.Name() && (!ran || !logHas(tc, n, "starting auto periodic compaction")) {
			t.Errorf("leader %s logged no etcd periodic compaction lines", n.Name())
		}
		if n.Name() != leader.Name() && (ran || logHas(tc, n, "starting auto periodic compaction")) {
			t.Errorf("follower %s ran the compactor", n.Name())
		}
	}
}

// After a SIGKILL of the leader, the new leader's compactor takes over:
// the survivors end compacted at the last revision written after the
// kill, and the member that never led never compacted.
func TestAutoCompactionContinuesOnTheNewLeader(t *testing.T) {
	tc := startCluster(t, 3, periodic1s...)
	tc.waitHealthy()
	old := tc.leader()
	putFor(t, tc.client(tc.Endpoints()...), 1500*time.Millisecond)
	eventually(t, 5*time.Second, "first leader compacts", func() error {
		if !logHas(tc, old, "completed auto periodic compaction") {
			return fmt.Errorf("no compaction logged by %s", old.Name())
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := old.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	var survivors []cluster.Node
	var urls []string
	for _, n := range tc.Nodes() {
		if n.Name() != old.Name() {
			survivors = append(survivors, n)
			urls = append(urls, n.ClientURL())
		}
	}
	cli := tc.client(urls...)
	eventually(t, 15*time.Second, "write after leader kill", func() error {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cli.Put(c, "after-kill", "0")
		return err
	})
	last := putFor(t, cli, 1500*time.Millisecond)
	waitCompactedTo(t, tc, survivors, last, 10*time.Second)
	nw := tc.leader()
	for _, n := range survivors {
		ran := logHas(tc, n, "completed auto periodic compaction")
		if n.Name() == nw.Name() && !ran {
			t.Errorf("new leader %s logged no compaction", n.Name())
		}
		if n.Name() != nw.Name() && ran {
			t.Errorf("%s, never leader, compacted", n.Name())
		}
	}
}

// Revision mode keeps the last --auto-compaction-retention revisions.
// etcd's compactor checks every 5 minutes (v3compactor's revInterval, a
// constant with no clock to inject through v3compactor.New), so this test
// takes over five minutes and runs only with QUORUM_SLOW_TESTS=1; the
// wiring of revision mode is also pinned by TestAutoCompactorIsEtcds.
func TestAutoCompactionRevisionKeepsTheLastRevisionsOnEveryMember(t *testing.T) {
	if os.Getenv("QUORUM_SLOW_TESTS") != "1" {
		t.Skip("takes over 5 minutes (etcd's revision compactor checks every 5 minutes); set QUORUM_SLOW_TESTS=1")
	}
	tc := startCluster(t, 3, "--auto-compaction-mode=revision", "--auto-compaction-retention=10")
	tc.waitHealthy()
	cli := tc.client(tc.Endpoints()...)
	var last int64
	for i := 0; i < 30; i++ {
		resp, err := cli.Put(context.Background(), fmt.Sprintf("k%d", i), "v")
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Header.Revision
	}
	waitCompactedTo(t, tc, tc.Nodes(), last-10, 6*time.Minute)
	leader := tc.leader()
	for _, n := range tc.Nodes() {
		if ran := logHas(tc, n, "completed auto revision compaction"); ran != (n.Name() == leader.Name()) {
			t.Errorf("%s (leader %s): logged a revision compaction: %v", n.Name(), leader.Name(), ran)
		}
	}
}
