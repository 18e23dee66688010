package server

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// peerUpdater is the part of the Transport the applier changes as conf
// changes are applied.
type peerUpdater interface {
	AddPeer(id uint64, urls []string)
	RemovePeer(id uint64)
	UpdatePeer(id uint64, urls []string)
}

// confChangeResult is what the proposer of a conf change gets back: the
// membership right after it.
type confChangeResult struct {
	members *Membership
}

// applyConfChange applies a committed conf change, as etcd's
// applyConfChange: validated against the applied membership (a refused
// change reaches Raft with NodeID 0, a no-op, and its proposer gets the
// error), then applied to Raft, the membership and the transport. A change
// that removes this member calls onRemoved. The proposer waiting on cc.ID
// gets the membership after the change, once Raft has been told it is
// applied (so that its next change is not dropped as "pending").
func (a *applier) applyConfChange(cc raftpb.ConfChange) {
	if err := a.membership.validateConfChange(cc, a.maxLearners); err != nil {
		a.lg.Error("Validation on configuration change failed", "error", err)
		cc.NodeID = raft.None
		a.confState = *a.raft.ApplyConfChange(cc)
		a.answer(cc.ID, applyResult{err: err})
		return
	}
	a.confState = *a.raft.ApplyConfChange(cc)
	ch := a.membership.applyConfChange(cc, a.bootstrap)
	a.lg.Info("applied a conf change", "local-member-id", idString(a.self), "raft-conf-change", cc.Type.String(),
		"raft-conf-change-node-id", idString(cc.NodeID))
	switch {
	case ch.op == peerRemove && ch.id == a.self:
		if a.onRemoved != nil {
			a.onRemoved()
		}
	case ch.id == a.self || a.peers == nil:
	case ch.op == peerAdd:
		a.peers.AddPeer(ch.id, ch.urls)
	case ch.op == peerRemove:
		a.peers.RemovePeer(ch.id)
	case ch.op == peerUpdate:
		a.peers.UpdatePeer(ch.id, ch.urls)
	}
	a.answer(cc.ID, applyResult{resp: confChangeResult{members: a.membership.Clone()}})
}

// syncPeers makes the transport's peers the applied membership's, after a
// snapshot replaced it; a snapshot that no longer lists this member among
// the members but among the removed calls onRemoved.
func (a *applier) syncPeers() {
	if a.membership.IsRemoved(a.self) && a.onRemoved != nil {
		a.onRemoved()
	}
	if a.peers == nil {
		return
	}
	for _, id := range a.membership.Removed {
		if id != a.self {
			a.peers.RemovePeer(id)
		}
	}
	for _, m := range a.membership.Members {
		if m.ID != a.self {
			a.peers.AddPeer(m.ID, m.PeerURLs)
			a.peers.UpdatePeer(m.ID, m.PeerURLs)
		}
	}
}
