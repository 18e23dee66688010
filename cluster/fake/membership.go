package fake

import (
	"context"
	"fmt"
	"slices"

	"github.com/quorum-kv/quorum/cluster"
)

var (
	_ cluster.MembershipCluster = (*Cluster)(nil)
	_ cluster.Joiner            = (*Node)(nil)
)

// Membership models etcd's Cluster API just enough for membership
// nemeses: a member list that starts with one voter per node (member IDs
// 0x1001, 0x1002, ... for n1, n2, ...), in which Add gives a new member a
// fresh ID and no name until its node Joins. The calls are recorded as
// "member-add" (Node is the peer URL's node), "member-remove",
// "member-promote" and "join"; FailNext and BlockNext take those ops with
// the member's node name. The leader model ignores membership.
func (c *Cluster) Membership(ctx context.Context, via []cluster.Node) (cluster.Membership, error) {
	return fakeMembership{c}, nil
}

type fakeMembership struct{ c *Cluster }

// memberList returns the member list; the caller holds mu.
func (c *Cluster) memberList() []cluster.Member {
	if c.members == nil {
		for i, n := range c.nodes {
			c.members = append(c.members, cluster.Member{ID: 0x1001 + uint64(i), Name: n.name, PeerURLs: []string{n.PeerURL()}})
			c.nextID = 0x1001 + uint64(len(c.nodes))
		}
	}
	return c.members
}

// Members returns the fake's member list; the slice is the caller's.
func (c *Cluster) Members() []cluster.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneMembers(c.memberList())
}

func cloneMembers(ms []cluster.Member) []cluster.Member {
	out := slices.Clone(ms)
	for i := range out {
		out[i].PeerURLs = slices.Clone(out[i].PeerURLs)
	}
	return out
}

// nodeOfPeer returns the name of the node advertising peerURL, or "".
func (c *Cluster) nodeOfPeer(peerURL string) string {
	for _, n := range c.nodes {
		if n.PeerURL() == peerURL {
			return n.name
		}
	}
	return ""
}

func (c *Cluster) nodeOfID(id uint64) string {
	for _, m := range c.memberList() {
		if m.ID == id && len(m.PeerURLs) > 0 {
			return c.nodeOfPeer(m.PeerURLs[0])
		}
	}
	return ""
}

func (m fakeMembership) List(ctx context.Context) ([]cluster.Member, error) {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return cloneMembers(c.memberList()), nil
}

func (m fakeMembership) Add(ctx context.Context, peerURL string, learner bool) (cluster.Member, []cluster.Member, error) {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	node := c.nodeOfPeer(peerURL)
	ms := c.memberList()
	err := c.refuse(ctx, "member-add", node)
	if err == nil {
		if _, ok := cluster.MemberByPeerURL(ms, peerURL); ok {
			err = fmt.Errorf("fake member add %s: peer URL exists", peerURL)
		}
	}
	var added cluster.Member
	if err == nil {
		added = cluster.Member{ID: c.nextID, PeerURLs: []string{peerURL}, Learner: learner}
		c.nextID++
		c.members = append(ms, added)
	}
	c.record(Call{Op: "member-add", Node: node, Err: err})
	if err != nil {
		return cluster.Member{}, nil, err
	}
	return added, cloneMembers(c.members), nil
}

func (m fakeMembership) Remove(ctx context.Context, id uint64) error {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	node := c.nodeOfID(id)
	err := c.refuse(ctx, "member-remove", node)
	if err == nil {
		i := slices.IndexFunc(c.memberList(), func(m cluster.Member) bool { return m.ID == id })
		if i < 0 {
			err = fmt.Errorf("fake member remove %x: member not found", id)
		} else {
			c.members = slices.Delete(c.members, i, i+1)
		}
	}
	return c.record(Call{Op: "member-remove", Node: node, Err: err})
}

func (m fakeMembership) Promote(ctx context.Context, id uint64) error {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	node := c.nodeOfID(id)
	err := c.refuse(ctx, "member-promote", node)
	if err == nil {
		i := slices.IndexFunc(c.memberList(), func(m cluster.Member) bool { return m.ID == id })
		switch {
		case i < 0:
			err = fmt.Errorf("fake member promote %x: member not found", id)
		case !c.members[i].Learner:
			err = fmt.Errorf("fake member promote %x: not a learner", id)
		default:
			c.members[i].Learner = false
		}
	}
	return c.record(Call{Op: "member-promote", Node: node, Err: err})
}

func (fakeMembership) Close() error { return nil }

// Join starts the stopped node as the member with j.MemberID (which Add
// must have added with the node's peer URL): the member takes the node's
// name. Recorded as "join".
func (n *Node) Join(ctx context.Context, j cluster.Join) error {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if n.state != cluster.Stopped {
		err = fmt.Errorf("join %s: %w: the node is %s", n.name, cluster.ErrInvalidState, n.state)
	}
	if err == nil {
		err = c.refuse(ctx, "join", n.name)
	}
	var i int
	if err == nil {
		i = slices.IndexFunc(c.memberList(), func(m cluster.Member) bool { return m.ID == j.MemberID })
		if i < 0 || !slices.Contains(c.members[i].PeerURLs, n.PeerURL()) {
			err = fmt.Errorf("join %s: member %x with peer URL %s was not added", n.name, j.MemberID, n.PeerURL())
		}
	}
	if err == nil {
		c.members[i].Name = n.name
		n.state = cluster.Running
		n.joins = append(n.joins, j)
	}
	return c.record(Call{Op: "join", Node: n.name, Err: err})
}

// Joins returns the Join arguments of the node's successful joins; the
// slice is the caller's.
func (n *Node) Joins() []cluster.Join {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return slices.Clone(n.joins)
}
