package server

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"
)

// Conf changes, as etcd makes and applies them (etcdserver/server.go
// AddMember, RemoveMember, PromoteMember, UpdateMember, applyConfChange;
// api/membership/cluster.go ValidateConfigurationChange): a raftpb.ConfChange
// (V1) whose Context is the member's JSON — for ConfChangeAddNode and
// ConfChangeAddLearnerNode etcd's ConfigChangeContext (the member and
// isPromote), for ConfChangeUpdateNode the member — and nothing for
// ConfChangeRemoveNode. The same entries mean the same thing to quorumd and
// to etcd.
//
// Every member validates a committed conf change against its applied
// membership, in log order, so all of them accept or refuse it alike; a
// refused change is applied to Raft with NodeID 0 (a no-op, as etcd does)
// and its proposer gets the error.

// confChangeContext is etcd's membership.ConfigChangeContext.
type confChangeContext struct {
	Member
	// IsPromote marks a ConfChangeAddNode that promotes a learner.
	IsPromote bool `json:"isPromote"`
}

// newAddedMemberID is the ID etcd gives a member added at runtime
// (membership.NewMember("", urls, "", &now) in v3rpc's MemberAdd): the hash
// of the sorted peer URLs and the Unix time in seconds, without the
// cluster token.
func newAddedMemberID(peerURLs []string, now time.Time) uint64 {
	return ComputeMemberID(peerURLs, fmt.Sprintf("%d", now.Unix()))
}

// IsRemoved reports whether id was removed from the cluster.
func (m *Membership) IsRemoved(id uint64) bool {
	i := sort.Search(len(m.Removed), func(i int) bool { return m.Removed[i] >= id })
	return i < len(m.Removed) && m.Removed[i] == id
}

// VotingMembers are the members that are not learners, sorted by ID.
func (m *Membership) VotingMembers() []*Member {
	var out []*Member
	for _, x := range m.Members {
		if !x.IsLearner {
			out = append(out, x)
		}
	}
	return out
}

func (m *Membership) learners() int {
	n := 0
	for _, x := range m.Members {
		if x.IsLearner {
			n++
		}
	}
	return n
}

// validateConfChange is etcd's ValidateConfigurationChange: the error (on
// the wire as etcd's v3rpc sends it) with which every member refuses cc,
// or nil. maxLearners is --max-learners.
func (m *Membership) validateConfChange(cc raftpb.ConfChange, maxLearners int) error {
	if m.IsRemoved(cc.NodeID) {
		return rpctypes.ErrGRPCMemberNotFound // membership.ErrIDRemoved
	}
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		var ctx confChangeContext
		if len(cc.Context) == 0 {
			// A bootstrap entry written before conf changes carried their
			// member: the member is in the bootstrap membership.
			return nil
		}
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			return fmt.Errorf("conf change context does not decode: %w", err)
		}
		cur := m.Member(cc.NodeID)
		if ctx.IsPromote {
			if cur == nil {
				return rpctypes.ErrGRPCMemberNotFound
			}
			if !cur.IsLearner {
				return rpctypes.ErrGRPCMemberNotLearner
			}
			return nil
		}
		if cur != nil {
			if samePeerURLs(cur.PeerURLs, ctx.PeerURLs) && cur.IsLearner == ctx.IsLearner {
				// The bootstrap entries add the members the bootstrap
				// membership already lists.
				return nil
			}
			return rpctypes.ErrGRPCMemberExist
		}
		used := map[string]bool{}
		for _, x := range m.Members {
			for _, u := range x.PeerURLs {
				used[u] = true
			}
		}
		for _, u := range ctx.PeerURLs {
			if used[u] {
				return rpctypes.ErrGRPCPeerURLExist
			}
		}
		if ctx.IsLearner && cc.Type == raftpb.ConfChangeAddLearnerNode && m.learners()+1 > maxLearners {
			return rpctypes.ErrGRPCTooManyLearners
		}
	case raftpb.ConfChangeRemoveNode:
		if m.Member(cc.NodeID) == nil {
			return rpctypes.ErrGRPCMemberNotFound
		}
	case raftpb.ConfChangeUpdateNode:
		if m.Member(cc.NodeID) == nil {
			return rpctypes.ErrGRPCMemberNotFound
		}
		var nm Member
		if err := json.Unmarshal(cc.Context, &nm); err != nil {
			return fmt.Errorf("conf change context does not decode: %w", err)
		}
		for _, x := range m.Members {
			if x.ID == cc.NodeID {
				continue
			}
			for _, u := range x.PeerURLs {
				for _, v := range nm.PeerURLs {
					if u == v {
						return rpctypes.ErrGRPCPeerURLExist
					}
				}
			}
		}
	default:
		return fmt.Errorf("unknown conf change type %v", cc.Type)
	}
	return nil
}

// peerChange is what applying a conf change asks of the transport.
type peerChange struct {
	op   peerOp
	id   uint64
	urls []string
}

type peerOp int

const (
	peerNone peerOp = iota
	peerAdd
	peerRemove
	peerUpdate
)

// applyConfChange applies cc, which validateConfChange accepted, to m and
// says what the transport must do. bootstrap is the membership the member
// started with, for a bootstrap entry without a context.
func (m *Membership) applyConfChange(cc raftpb.ConfChange, bootstrap *Membership) peerChange {
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		var ctx confChangeContext
		if len(cc.Context) == 0 {
			ctx.ID = cc.NodeID
			if bootstrap != nil {
				if b := bootstrap.Member(cc.NodeID); b != nil {
					ctx.PeerURLs = append([]string(nil), b.PeerURLs...)
				}
			}
		} else {
			_ = json.Unmarshal(cc.Context, &ctx) // validated
		}
		if ctx.IsPromote {
			m.Member(cc.NodeID).IsLearner = false
			return peerChange{}
		}
		if cur := m.Member(cc.NodeID); cur != nil {
			return peerChange{op: peerAdd, id: cur.ID, urls: cur.PeerURLs}
		}
		nm := &Member{ID: cc.NodeID, PeerURLs: append([]string(nil), ctx.PeerURLs...), IsLearner: ctx.IsLearner,
			Name: ctx.Name, ClientURLs: append([]string(nil), ctx.ClientURLs...)}
		m.Members = append(m.Members, nm)
		sort.Slice(m.Members, func(i, j int) bool { return m.Members[i].ID < m.Members[j].ID })
		return peerChange{op: peerAdd, id: nm.ID, urls: nm.PeerURLs}
	case raftpb.ConfChangeRemoveNode:
		for i, x := range m.Members {
			if x.ID == cc.NodeID {
				m.Members = append(m.Members[:i:i], m.Members[i+1:]...)
				break
			}
		}
		m.Removed = append(m.Removed, cc.NodeID)
		sort.Slice(m.Removed, func(i, j int) bool { return m.Removed[i] < m.Removed[j] })
		return peerChange{op: peerRemove, id: cc.NodeID}
	case raftpb.ConfChangeUpdateNode:
		var nm Member
		_ = json.Unmarshal(cc.Context, &nm) // validated
		cur := m.Member(cc.NodeID)
		cur.PeerURLs = append([]string(nil), nm.PeerURLs...)
		return peerChange{op: peerUpdate, id: cur.ID, urls: cur.PeerURLs}
	}
	return peerChange{}
}

func samePeerURLs(a, b []string) bool {
	x, y := append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// isReadyToAddVotingMember, isReadyToRemoveVotingMember and
// isReadyToPromoteMember are etcd's RaftCluster checks of the same names
// for --strict-reconfig-check: after the change, a quorum of the voting
// members must have started (published their name).
func (m *Membership) isReadyToAddVotingMember() bool {
	nmembers, nstarted := 1, 0
	for _, x := range m.VotingMembers() {
		if x.Name != "" {
			nstarted++
		}
		nmembers++
	}
	if nstarted == 1 && nmembers == 2 {
		// Adding a member to a one-member cluster (restoring a cluster).
		return true
	}
	return nstarted >= nmembers/2+1
}

func (m *Membership) isReadyToRemoveVotingMember(id uint64) bool {
	nmembers, nstarted := 0, 0
	for _, x := range m.VotingMembers() {
		if x.ID == id {
			continue
		}
		if x.Name != "" {
			nstarted++
		}
		nmembers++
	}
	return nstarted >= nmembers/2+1
}

func (m *Membership) isReadyToPromoteMember() bool {
	nmembers, nstarted := 1, 1
	for _, x := range m.VotingMembers() {
		if x.Name != "" {
			nstarted++
		}
		nmembers++
	}
	return nstarted >= nmembers/2+1
}
