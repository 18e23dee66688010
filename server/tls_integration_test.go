package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/local"
)

// Over https peer links (the harness's TLS cluster: client certificates
// required on both ports), a member that missed a compacted stretch of the
// log catches up by a snapshot sent over TLS, and a lease keep-alive sent
// to a follower is forwarded to the leader over TLS.
func TestTLSSnapshotSendAndLeaseForwarding(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
	dir := t.TempDir()
	cfg := local.DefaultConfig()
	cfg.Server.Binary = quorumdBinary
	cfg.Server.TLS = true
	cfg.Size = 3
	cfg.Dir = dir
	cfg.ExtraArgs = []string{"--snapshot-count=100", "--snapshot-catchup-entries=20"}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := local.New(ctx, cfg)
	if err != nil {
		t.Fatalf("start TLS cluster: %v", err)
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
	tlsCfg := cluster.ClientTLS(c)
	if tlsCfg == nil {
		t.Fatal("a TLS cluster without a client TLS configuration")
	}
	client := func(eps ...string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, TLS: tlsCfg, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	for _, ep := range c.Endpoints() {
		if !strings.HasPrefix(ep, "https://") {
			t.Fatalf("endpoint %s is not https", ep)
		}
	}
	leader := tc.leader()
	var lagging cluster.Node
	var others []string
	for _, n := range c.Nodes() {
		switch {
		case n.Name() == leader.Name():
			others = append(others, n.ClientURL())
		case lagging == nil:
			lagging = n
		default:
			others = append(others, n.ClientURL())
		}
	}
	if err := lagging.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cli := client(others...)
	for i := 0; i < 800; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("s%04d", i), "v"); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := lagging.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := client(lagging.ClientURL())
	eventually(t, 30*time.Second, "lagging member catches up over TLS", func() error {
		r, err := back.Get(ctx, "s", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if r.Count != 800 {
			return fmt.Errorf("%s has %d of 800 keys", lagging.Name(), r.Count)
		}
		return nil
	})
	if !strings.Contains(tc.logOf(lagging.Name()), "restored the keyspace from a snapshot") {
		t.Fatalf("%s caught up without a snapshot over TLS", lagging.Name())
	}
	// A follower forwards keep-alives to the leader's peer URL.
	follower := client(lagging.ClientURL())
	if l := tc.leader(); l.Name() == lagging.Name() {
		t.Skipf("%s became the leader; no forwarding to check", lagging.Name())
	}
	g, err := follower.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := follower.KeepAliveOnce(ctx, g.ID)
	if err != nil || ka.TTL <= 0 {
		t.Fatalf("keep-alive through follower %s over TLS: %v %v", lagging.Name(), ka, err)
	}
	ttl, err := follower.TimeToLive(ctx, g.ID)
	if err != nil || ttl.TTL <= 0 || ttl.GrantedTTL != 30 {
		t.Fatalf("time-to-live through follower %s over TLS: %v %v", lagging.Name(), ttl, err)
	}
}
