package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/reports"
)

// hashKVPoll is how long the HashKV check waits between rounds.
const hashKVPoll = 200 * time.Millisecond

// checkHashKV is the end-of-run consistency check: it reads the leader's
// current revision R and asks every node for Maintenance.HashKV at R,
// again and again (every member answers "future revision" until it has
// applied R, and members that have not applied the same compaction are
// not comparable) until every node has answered with one compact
// revision, two answers differ, or timeout passes. It returns the last
// answers as data (reports.HashKV); their verdict is the caller's to
// apply. Clusters without a client API (the fake's endpoints are not
// URLs) give nil.
func checkHashKV(ctx context.Context, c cluster.Cluster, timeout time.Duration) *reports.HashKV {
	nodes := c.Nodes()
	if len(nodes) == 0 {
		return nil
	}
	if u := nodes[0].ClientURL(); !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tlsCfg := cluster.ClientTLS(c)
	clients := make([]*clientv3.Client, len(nodes))
	defer func() {
		for _, cli := range clients {
			if cli != nil {
				cli.Close()
			}
		}
	}()
	for i, n := range nodes {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{n.ClientURL()}, TLS: tlsCfg, DialTimeout: 2 * time.Second, Logger: zap.NewNop(), Context: ctx,
		})
		if err != nil {
			return &reports.HashKV{Error: fmt.Sprintf("client for %s: %v", n.Name(), err)}
		}
		clients[i] = cli
	}
	h := &reports.HashKV{}
	var lastErr error
	for h.Revision == 0 {
		lead, err := cluster.Leader(ctx, c)
		if err == nil {
			var resp *clientv3.GetResponse
			resp, err = clients[indexOf(nodes, lead)].Get(ctx, "quorum-hashkv-probe")
			if err == nil {
				h.Revision = resp.Header.Revision
				break
			}
		}
		lastErr = err
		if !sleepCtx(ctx, hashKVPoll) {
			return &reports.HashKV{Error: fmt.Sprintf("no revision to hash within %v: %v", timeout, lastErr)}
		}
	}
	for {
		round := hashRound(ctx, nodes, clients, h.Revision)
		if ctx.Err() != nil && h.Members != nil {
			// The time ran out during this round: its answers are the
			// deadline's, not the members'; keep the previous round.
			return h
		}
		h.Members = round
		switch h.Outcome() {
		case reports.HashKVEqual, reports.HashKVDiffer, reports.HashKVSkipped:
			return h
		}
		if !sleepCtx(ctx, hashKVPoll) {
			return h
		}
	}
}

// hashRound asks every running node for HashKV at rev once.
func hashRound(ctx context.Context, nodes []cluster.Node, clients []*clientv3.Client, rev int64) []reports.HashKVMember {
	out := make([]reports.HashKVMember, len(nodes))
	for i, n := range nodes {
		m := reports.HashKVMember{Name: n.Name()}
		if st := n.State(); st != cluster.Running {
			m.Error = "member " + st.String()
			out[i] = m
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := clients[i].HashKV(rctx, n.ClientURL(), rev)
		cancel()
		switch {
		case status.Code(err) == codes.Unimplemented:
			m.Unimplemented = true
		case errors.Is(err, rpctypes.ErrFutureRev):
			m.Error = fmt.Sprintf("has not reached revision %d", rev)
		case errors.Is(err, rpctypes.ErrCompacted):
			// Compacted past rev since R was chosen: not comparable; the
			// run compacts only through the compact nemesis, which has
			// stopped, so this is worth saying.
			m.Error = fmt.Sprintf("revision %d compacted: %v", rev, err)
		case err != nil:
			m.Error = err.Error()
		default:
			m.MemberID = resp.Header.GetMemberId()
			m.Hash = resp.Hash
			m.CompactRevision = resp.CompactRevision
			m.HashRevision = resp.HashRevision
		}
		out[i] = m
	}
	return out
}

func indexOf(nodes []cluster.Node, n cluster.Node) int {
	for i, x := range nodes {
		if x.Name() == n.Name() {
			return i
		}
	}
	return 0
}

// sleepCtx sleeps d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
