package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/nemesis"
)

// prober is the steady write load of the availability part: an open-loop
// stream of Puts, one every interval, round-robin over the members (a
// client pinned to each), each bounded by its own timeout, at most
// maxInFlight at once. It remembers every acknowledged write; the
// resolution of a window is the interval, not the timeout.
//
// The prober's goroutines own the clients; acks is the only shared state,
// behind mu, read through firstAckAfter.
type prober struct {
	mu   sync.Mutex
	acks []probeAck // in acknowledgement order

	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*clientv3.Client
}

type probeAck struct{ start, end time.Time }

// startProber dials one client per endpoint and starts the stream. Stop it
// with stop.
func startProber(ctx context.Context, cl cluster.Cluster, interval, timeout time.Duration) (*prober, error) {
	p := &prober{}
	endpoints := cl.Endpoints()
	for _, ep := range endpoints {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: cluster.ClientTLS(cl), DialTimeout: timeout, Logger: zap.NewNop()})
		if err != nil {
			closeConns(p.conns)
			return nil, fmt.Errorf("probe client for %s: %w", ep, err)
		}
		p.conns = append(p.conns, c)
	}
	ctx, p.cancel = context.WithCancel(ctx)
	maxInFlight := int(timeout/interval) + 2*len(endpoints)
	sem := make(chan struct{}, maxInFlight)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // every slot waits on a stuck member: skip a beat
			}
			cli := p.conns[i%len(p.conns)]
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer func() { <-sem }()
				start := time.Now()
				octx, cancel := context.WithTimeout(ctx, timeout)
				_, err := cli.Put(octx, fmt.Sprintf("bench-probe/%d", i%len(p.conns)), start.Format(time.RFC3339Nano))
				cancel()
				if err == nil {
					end := time.Now()
					p.mu.Lock()
					p.acks = append(p.acks, probeAck{start, end})
					p.mu.Unlock()
				}
			}()
		}
	}()
	return p, nil
}

// firstAckAfter returns the earliest acknowledgement of a write invoked at
// or after t, and drops acks older than t (callers ask with times that
// only grow).
func (p *prober) firstAckAfter(t time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := p.acks[:0]
	var best time.Time
	for _, a := range p.acks {
		if a.start.Before(t) {
			continue
		}
		keep = append(keep, a)
		if best.IsZero() || a.end.Before(best) {
			best = a.end
		}
	}
	p.acks = keep
	return best, !best.IsZero()
}

// waitAck polls until a write invoked at or after t is acknowledged, or
// until deadline; ok is false at the deadline.
func (p *prober) waitAck(ctx context.Context, t, deadline time.Time) (time.Time, bool) {
	for {
		if at, ok := p.firstAckAfter(t); ok {
			return at, true
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			return time.Time{}, false
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop ends the stream and waits for the writes in flight.
func (p *prober) stop() {
	p.cancel()
	p.wg.Wait()
	closeConns(p.conns)
}

// trial runs one fault repetition on a healthy, writable cluster: it
// finds the leader, has nem plan and inject the fault, waits (up to
// FaultWait) for a write invoked after the fault to be acknowledged, heals,
// and waits until the cluster is healthy and writable again. err means the
// cluster was not healthy before the fault (t.Leader is empty) or could
// not be brought back after it (t is measured): the caller replaces the
// cluster.
func (e *engine) trial(ctx context.Context, c cluster.Cluster, p *prober, fault string, nem nemesis.Nemesis) (t FaultTrial, err error) {
	var names []string
	for _, n := range c.Nodes() {
		names = append(names, n.Name())
	}
	if err := e.recover(ctx, c, p); err != nil {
		return t, fmt.Errorf("before %s: %w", fault, err)
	}
	leader, err := e.leader(ctx, c)
	if err != nil {
		return FaultTrial{}, fmt.Errorf("find leader before %s: %w", fault, err)
	}
	f, err := nem.(nemesis.Planner).Plan(ctx, c)
	if err != nil {
		return FaultTrial{}, fmt.Errorf("plan %s: %w", fault, err)
	}
	lost := len(names) - f.Reach(names)
	t = FaultTrial{Size: len(names), Fault: fault, Targets: faultTargets(f, leader.Name()), Lost: lost, Leader: leader.Name(),
		PredictedWritable: Predict(len(names), lost).Writable}

	t0 := time.Now()
	t.Start = t0
	applyErr := nem.(nemesis.Planner).Apply(ctx, c, f)
	if applyErr == nil {
		applied := time.Now()
		at, writable := p.waitAck(ctx, applied, t0.Add(e.cfg.FaultWait))
		if writable && at.Sub(t0) <= e.cfg.FaultWait {
			t.Writable, t.Window = true, at.Sub(t0)
		} else {
			t.Window = e.cfg.FaultWait
		}
		e.cfg.Logger.Info("fault trial", "fault", fault, "size", len(names), "fault_detail", f.String(),
			"writable", t.Writable, "window", t.Window)
	}

	// Heal, whatever part of the fault is in force.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RecoveryTimeout)
	defer cancel()
	healErr := nem.Heal(hctx, c, f)
	switch {
	case applyErr != nil:
		return t, fmt.Errorf("%s: %w", fault, errors.Join(applyErr, healErr))
	case healErr != nil:
		return t, fmt.Errorf("%s: heal: %w", fault, healErr)
	case ctx.Err() != nil:
		return t, ctx.Err()
	}
	return t, e.recover(ctx, c, p)
}

// faultTargets are the members a fault took away: its targets, or for a
// split (which has none) the side of the leader.
func faultTargets(f nemesis.Fault, leader string) []string {
	if len(f.Targets) > 0 || len(f.Groups) == 0 {
		return slices.Clone(f.Targets)
	}
	for _, g := range f.Groups {
		if slices.Contains(g, leader) {
			return slices.Clone(g)
		}
	}
	return slices.Clone(f.Groups[0])
}

// recover waits until every member is healthy and a write invoked after
// that is acknowledged, then lets the cluster settle for a moment.
func (e *engine) recover(ctx context.Context, c cluster.Cluster, p *prober) error {
	rctx, cancel := context.WithTimeout(ctx, e.cfg.RecoveryTimeout)
	defer cancel()
	if err := cluster.WaitHealthy(rctx, c); err != nil {
		return fmt.Errorf("cluster did not recover: %w", err)
	}
	dl, _ := rctx.Deadline()
	if _, ok := p.waitAck(rctx, time.Now(), dl); !ok {
		return fmt.Errorf("cluster healthy but not writable within %v", e.cfg.RecoveryTimeout)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(300 * time.Millisecond):
	}
	return nil
}

// leader asks for the leader until a majority agrees on one that answers,
// for up to RecoveryTimeout (a busy member may miss one Status deadline).
func (e *engine) leader(ctx context.Context, c cluster.Cluster) (cluster.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RecoveryTimeout)
	defer cancel()
	for {
		n, err := cluster.Leader(ctx, c)
		if err == nil {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
