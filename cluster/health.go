package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// HealthWaiter is implemented by clusters that decide health themselves
// (the fake). WaitHealthy delegates to it when present.
type HealthWaiter interface {
	WaitHealthy(ctx context.Context) error
}

// LeaderFinder is implemented by clusters that know their leader without
// asking the servers (the fake). Leader delegates to it when present.
type LeaderFinder interface {
	Leader(ctx context.Context) (Node, error)
}

// MemberStatus is one node's answer to Maintenance.Status.
type MemberStatus struct {
	Node      Node
	MemberID  uint64 // the member's own id (response header)
	Leader    uint64 // the leader id the member reports; 0 = none known
	RaftTerm  uint64
	RaftIndex uint64
	Err       error // non-nil when the node did not answer
}

// HealthOption adjusts WaitHealthy and Leader.
type HealthOption func(*healthOptions)

type healthOptions struct {
	poll    time.Duration
	request time.Duration
}

func defaultHealthOptions() healthOptions {
	return healthOptions{poll: 200 * time.Millisecond, request: 2 * time.Second}
}

// WithPollInterval sets how long WaitHealthy waits between checks (default 200ms).
func WithPollInterval(d time.Duration) HealthOption {
	return func(o *healthOptions) { o.poll = d }
}

// WithRequestTimeout bounds each Status request (default 2s).
func WithRequestTimeout(d time.Duration) HealthOption {
	return func(o *healthOptions) { o.request = d }
}

// WaitHealthy polls until every Running node answers Maintenance.Status and
// all of them report the same leader, which is itself one of the answering
// nodes. Stopped and paused nodes are not asked. It returns nil as soon as
// that holds, or ctx's error wrapped together with the last reason the
// cluster was not healthy.
func WaitHealthy(ctx context.Context, c Cluster, opts ...HealthOption) error {
	if hw, ok := c.(HealthWaiter); ok {
		return hw.WaitHealthy(ctx)
	}
	o := defaultHealthOptions()
	for _, f := range opts {
		f(&o)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for healthy cluster: %w (last check: %v)", ctx.Err(), last)
		case <-t.C:
		}
		last = CheckHealthy(Statuses(ctx, c, opts...))
		if last == nil {
			return nil
		}
		t.Reset(o.poll)
	}
}

// CheckHealthy is WaitHealthy's verdict on one round of statuses: nil when
// at least one node answered, every node answered, and all agree on a leader
// that is among them.
func CheckHealthy(sts []MemberStatus) error {
	if len(sts) == 0 {
		return errors.New("no running node")
	}
	ids := make(map[uint64]string, len(sts))
	var bad []string
	for _, s := range sts {
		if s.Err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", s.Node.Name(), s.Err))
			continue
		}
		ids[s.MemberID] = s.Node.Name()
	}
	if len(bad) > 0 {
		return fmt.Errorf("nodes not answering: %s", strings.Join(bad, "; "))
	}
	lead := sts[0].Leader
	for _, s := range sts {
		if s.Leader == 0 {
			return fmt.Errorf("%s knows no leader", s.Node.Name())
		}
		if s.Leader != lead {
			return fmt.Errorf("leader disagreement: %s", describeLeaders(sts))
		}
	}
	if _, ok := ids[lead]; !ok {
		return fmt.Errorf("leader %x is not a running node (%s)", lead, describeLeaders(sts))
	}
	return nil
}

// Leader returns the node that a majority of the cluster's nodes (counting
// every node, whatever its state) report as leader, asking Running nodes
// with Maintenance.Status and matching the leader id against each answering
// node's own member id. A minority that disagrees (an isolated old leader)
// is outvoted. The error wraps ErrNoLeader when there is no such majority or
// the leader did not answer.
func Leader(ctx context.Context, c Cluster, opts ...HealthOption) (Node, error) {
	if lf, ok := c.(LeaderFinder); ok {
		return lf.Leader(ctx)
	}
	sts := Statuses(ctx, c, opts...)
	return MajorityLeader(sts, len(c.Nodes()))
}

// MajorityLeader is Leader's pure core: the node whose member id more than
// size/2 of the statuses report as leader.
func MajorityLeader(sts []MemberStatus, size int) (Node, error) {
	votes := make(map[uint64]int)
	byID := make(map[uint64]Node)
	for _, s := range sts {
		if s.Err != nil {
			continue
		}
		byID[s.MemberID] = s.Node
		if s.Leader != 0 {
			votes[s.Leader]++
		}
	}
	for id, n := range votes {
		if n > size/2 {
			if node, ok := byID[id]; ok {
				return node, nil
			}
			return nil, fmt.Errorf("%w: majority leader %x did not answer (%s)", ErrNoLeader, id, describeLeaders(sts))
		}
	}
	return nil, fmt.Errorf("%w: no majority of %d agrees (%s)", ErrNoLeader, size, describeLeaders(sts))
}

func describeLeaders(sts []MemberStatus) string {
	parts := make([]string, 0, len(sts))
	for _, s := range sts {
		if s.Err != nil {
			parts = append(parts, fmt.Sprintf("%s: error", s.Node.Name()))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s(%x): leader %x term %d", s.Node.Name(), s.MemberID, s.Leader, s.RaftTerm))
	}
	return strings.Join(parts, ", ")
}

// Statuses asks every Running node for Maintenance.Status in parallel and
// returns one entry per Running node, in node order. Unanswered requests
// carry Err. The slice is the caller's.
func Statuses(ctx context.Context, c Cluster, opts ...HealthOption) []MemberStatus {
	o := defaultHealthOptions()
	for _, f := range opts {
		f(&o)
	}
	var running []Node
	for _, n := range c.Nodes() {
		if n.State() == Running {
			running = append(running, n)
		}
	}
	tlsCfg := ClientTLS(c)
	out := make([]MemberStatus, len(running))
	var wg sync.WaitGroup
	for i, n := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = status(ctx, n, tlsCfg, o.request)
		}()
	}
	wg.Wait()
	return out
}

func status(ctx context.Context, n Node, tlsCfg *tls.Config, timeout time.Duration) MemberStatus {
	st := MemberStatus{Node: n}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{
		TLS:         tlsCfg,
		Endpoints:   []string{n.ClientURL()},
		DialTimeout: timeout,
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
	if err != nil {
		st.Err = fmt.Errorf("client for %s at %s: %w", n.Name(), n.ClientURL(), err)
		return st
	}
	defer cli.Close()
	resp, err := cli.Status(ctx, n.ClientURL())
	if err != nil {
		st.Err = fmt.Errorf("status of %s at %s: %w", n.Name(), n.ClientURL(), err)
		return st
	}
	st.MemberID = resp.Header.GetMemberId()
	st.Leader = resp.Leader
	st.RaftTerm = resp.RaftTerm
	st.RaftIndex = resp.RaftIndex
	return st
}
