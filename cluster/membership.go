package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Joiner is implemented by nodes that can start as a member added to a
// running cluster: the same node (name, URLs, log) started with etcd's
// --initial-cluster-state existing and the --initial-cluster that
// MemberAdd's answer implies, as an operator replacing a failed machine
// does. Membership nemeses need it; both real backends and the fake
// implement it.
type Joiner interface {
	Node
	// Join starts the stopped node with the member flags of j in place of
	// those it was launched with; later Starts keep them (a server that
	// has data ignores them). It returns once the client port accepts
	// connections, like Start; it does not wait for the member to be
	// healthy. The node's data should be wiped first: a member added
	// again has a new ID and must not reuse the old one's data.
	Join(ctx context.Context, j Join) error
}

// Join is how a node joins a running cluster.
type Join struct {
	// MemberID is the ID MemberAdd gave the member (backends whose fault
	// proxies attribute peer traffic by member ID learn it).
	MemberID uint64
	// InitialCluster is etcd's name=peerURL,... of every member after the
	// add, the new one included (InitialCluster builds it).
	InitialCluster string
}

// Member is one entry of a cluster's member list (etcd's Cluster API).
type Member struct {
	ID       uint64
	Name     string // empty for a member added but not started yet
	PeerURLs []string
	Learner  bool
}

// Membership is the Cluster API of a running cluster: etcd's MemberList,
// MemberAdd, MemberRemove and MemberPromote. Open one with OpenMembership;
// it is safe for concurrent use; Close it when done.
type Membership interface {
	// List returns the members, in the server's order.
	List(ctx context.Context) ([]Member, error)
	// Add adds a member with the given peer URL (as a learner when
	// learner is set) and returns it (with its new ID, no name yet) and
	// the member list after the add.
	Add(ctx context.Context, peerURL string, learner bool) (Member, []Member, error)
	// Remove removes the member with the given ID.
	Remove(ctx context.Context, id uint64) error
	// Promote promotes the learner with the given ID to a voting member.
	Promote(ctx context.Context, id uint64) error
	// Close releases the connections; the Membership is unusable after.
	Close() error
}

// MembershipCluster is implemented by clusters that model membership
// themselves (the fake); OpenMembership delegates to it when present.
type MembershipCluster interface {
	Membership(ctx context.Context, via []Node) (Membership, error)
}

// OpenMembership returns the Cluster API of c, asked through the Running
// nodes not named in avoid (a member being removed must not be the one
// that answers its own removal). It fails when no such node is running.
func OpenMembership(ctx context.Context, c Cluster, avoid ...string) (Membership, error) {
	var via []Node
	for _, n := range c.Nodes() {
		if n.State() == Running && !slices.Contains(avoid, n.Name()) {
			via = append(via, n)
		}
	}
	if len(via) == 0 {
		return nil, fmt.Errorf("membership: no running member besides %v to ask", avoid)
	}
	if mc, ok := c.(MembershipCluster); ok {
		return mc.Membership(ctx, via)
	}
	eps := make([]string, len(via))
	for i, n := range via {
		eps[i] = n.ClientURL()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: eps, TLS: ClientTLS(c), DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("membership: client for %v: %w", eps, err)
	}
	return etcdMembership{cli}, nil
}

// etcdMembership is the Cluster API over clientv3.
type etcdMembership struct{ cli *clientv3.Client }

func members(ms []*etcdserverpb.Member) []Member {
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = Member{ID: m.ID, Name: m.Name, PeerURLs: slices.Clone(m.PeerURLs), Learner: m.IsLearner}
	}
	return out
}

func (e etcdMembership) List(ctx context.Context) ([]Member, error) {
	resp, err := e.cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("member list: %w", err)
	}
	return members(resp.Members), nil
}

func (e etcdMembership) Add(ctx context.Context, peerURL string, learner bool) (Member, []Member, error) {
	add := e.cli.MemberAdd
	if learner {
		add = e.cli.MemberAddAsLearner
	}
	resp, err := add(ctx, []string{peerURL})
	if err != nil {
		return Member{}, nil, fmt.Errorf("member add %s (learner %v): %w", peerURL, learner, err)
	}
	return members([]*etcdserverpb.Member{resp.Member})[0], members(resp.Members), nil
}

func (e etcdMembership) Remove(ctx context.Context, id uint64) error {
	if _, err := e.cli.MemberRemove(ctx, id); err != nil {
		return fmt.Errorf("member remove %x: %w", id, err)
	}
	return nil
}

func (e etcdMembership) Promote(ctx context.Context, id uint64) error {
	if _, err := e.cli.MemberPromote(ctx, id); err != nil {
		return fmt.Errorf("member promote %x: %w", id, err)
	}
	return nil
}

func (e etcdMembership) Close() error { return e.cli.Close() }

// InitialCluster is the --initial-cluster a member added as added must
// start with, given the member list after the add: exactly what etcdctl
// member add prints as ETCD_INITIAL_CLUSTER — name=peerURL for each peer
// URL of every member, in the list's order, the added member (which has
// no name yet) under name.
func InitialCluster(name string, added Member, ms []Member) string {
	var parts []string
	for _, m := range ms {
		n := m.Name
		if m.ID == added.ID {
			n = name
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// MemberByPeerURL returns the member advertising peerURL.
func MemberByPeerURL(ms []Member, peerURL string) (Member, bool) {
	for _, m := range ms {
		if slices.Contains(m.PeerURLs, peerURL) {
			return m, true
		}
	}
	return Member{}, false
}

// IsUnhealthyCluster reports whether err is etcd's refusal of a
// membership change that its strict reconfiguration check finds unsafe
// now (rpctypes.ErrGRPCUnhealthy, "etcdserver: unhealthy cluster"): a
// member needed for the quorum afterwards has not been connected long
// enough. Callers wait and retry.
func IsUnhealthyCluster(err error) bool {
	return err != nil && strings.Contains(err.Error(), "etcdserver: unhealthy cluster")
}

// notReady is etcd's answer to a MemberPromote of a learner that has not
// caught up with the leader yet (rpctypes.ErrGRPCLearnerNotReady).
const notReady = "can only promote a learner member which is in sync with leader"

// IsLearnerNotReady reports whether err is etcd's answer to promoting a
// learner that is not in sync with the leader yet.
func IsLearnerNotReady(err error) bool {
	return err != nil && strings.Contains(err.Error(), notReady)
}
