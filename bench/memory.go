package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/quorum-kv/quorum/cluster"
)

// leaseTTL is the TTL of a lease-memory cell's leases, in seconds: longer
// than any run, so none expires while it is measured.
const leaseTTL = 3600

// settleRSS samples every member's VmRSS every 250 ms until none moved by
// more than max(512 KiB, 0.5%) over the last 2 s, or bound passed (at
// least one sample is taken). It returns the last sample (0 for a member
// without a process) and whether it settled.
func settleRSS(ctx context.Context, nodes []cluster.Node, bound time.Duration) (rss, anon []int64, settled bool) {
	const every, window = 250 * time.Millisecond, 2 * time.Second
	var hist [][]int64
	start := time.Now()
	for {
		cur := make([]int64, len(nodes))
		for i, n := range nodes {
			if p := pid(n); p != 0 {
				cur[i], _ = procRSS(p)
			}
		}
		hist = append(hist, cur)
		if k := int(window / every); len(hist) > k {
			old := hist[len(hist)-1-k]
			steady := true
			for i := range cur {
				d := cur[i] - old[i]
				if d < 0 {
					d = -d
				}
				if d > max(512<<10, cur[i]/200) {
					steady = false
				}
			}
			if steady {
				return cur, anonRSS(nodes), true
			}
		}
		if time.Since(start) >= bound || ctx.Err() != nil {
			return cur, anonRSS(nodes), false
		}
		select {
		case <-time.After(every):
		case <-ctx.Done():
		}
	}
}

// anonRSS is every member's RssAnon now (0 for a member without a
// process).
func anonRSS(nodes []cluster.Node) []int64 {
	out := make([]int64, len(nodes))
	for i, n := range nodes {
		if p := pid(n); p != 0 {
			out[i], _ = procRSSAnon(p)
		}
	}
	return out
}

// memoryCell measures one memory cell (watch-memory or lease-memory) on c:
// each member's RSS at steady state, then MemoryWatchers idle watchers
// opened (spread over watchConnsFor connections pinned to the members) or
// MemoryLeases leases granted (over one connection per member), then each
// member's RSS at steady state again. Throughput and Latency are those of
// the creations. The watchers are closed at the end; the leases stay (they
// outlive the run: later cells on this cluster run beside them).
func (e *engine) memoryCell(ctx context.Context, c cluster.Cluster, srv Server, size, round int, w string) (LoadCell, error) {
	nodes := c.Nodes()
	before, anonBefore, settledBefore := settleRSS(ctx, nodes, e.cfg.MemorySettle)
	usage := startUsage(nodes)
	cell := LoadCell{Server: srv.Label, Round: round, Size: size, Workload: w}
	m := &MemoryStats{}
	var hist *hdrhistogram.Histogram
	idleEvents := func() int64 { return 0 }
	t0 := time.Now()
	switch w {
	case WorkloadWatchMemory:
		n := e.cfg.MemoryWatchers
		conns, err := dialConns(ctx, c, e.cfg.watchConnsFor(n))
		if err != nil {
			return LoadCell{}, err
		}
		defer closeConns(conns)
		ws, events, err := openIdleWatchers(ctx, conns, e.ks, n, watchCreateTimeout(n))
		if err != nil {
			return LoadCell{}, fmt.Errorf("%s: %w", w, err)
		}
		defer ws.close()
		cell.OK, cell.Conns, cell.Watchers = int64(n), len(conns), n
		m.Kind, m.Objects, hist = "watchers", n, ws.created
		idleEvents = events.Load
	case WorkloadLeaseMemory:
		n := e.cfg.MemoryLeases
		conns, err := dialConns(ctx, c, len(c.Endpoints()))
		if err != nil {
			return LoadCell{}, err
		}
		defer closeConns(conns)
		hist = hdrhistogram.New(histMin, histMax, histSigFigs)
		ok, failed, err := grantLeases(ctx, conns, n, leaseTTL, e.cfg.OpTimeout, hist)
		cell.OK, cell.Errors, cell.Conns, cell.Leases = ok, failed, len(conns), n
		if err != nil {
			cell.ErrorSample = err.Error()
		}
		m.Kind, m.Objects, m.Errors = "leases", int(ok), failed
	default:
		return LoadCell{}, fmt.Errorf("memory cell: unknown workload %q", w)
	}
	cell.Measured = time.Since(t0)
	cell.Latency = latencyOf(hist)
	if cell.Measured > 0 {
		cell.Throughput = float64(cell.OK) / cell.Measured.Seconds()
	}
	after, anonAfter, settledAfter := settleRSS(ctx, nodes, e.cfg.MemorySettle)
	usage.finish(&cell)
	cell.IdleWatchEvents = idleEvents()
	m.Settled = settledBefore && settledAfter
	for i := range cell.Members {
		cell.Members[i].RSSBefore, cell.Members[i].RSSAfter = before[i], after[i]
		cell.Members[i].RSSAnonBefore, cell.Members[i].RSSAnonAfter = anonBefore[i], anonAfter[i]
		if before[i] > 0 && after[i] > 0 {
			d := after[i] - before[i]
			m.RSSDelta += d
			m.MaxMemberDelta = max(m.MaxMemberDelta, d)
		}
		if anonBefore[i] > 0 && anonAfter[i] > 0 {
			m.AnonDelta += anonAfter[i] - anonBefore[i]
		}
	}
	cell.Memory = m
	if ctx.Err() != nil {
		return cell, ctx.Err()
	}
	return cell, nil
}
