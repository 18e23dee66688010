package server

import (
	"fmt"
	"time"
)

// peerWaitForTickAdvance is how long adjustTicks waits for peer streams:
// etcd's rafthttp.ConnReadTimeout.
const peerWaitForTickAdvance = 5 * time.Second

// adjustTicks is etcd's EtcdServer.adjustTicks, run once when the member
// starts. A member that is its cluster's only one fast-forwards its
// election ticks to one before the timeout, whatever the flag says: it
// elects itself at once. Otherwise, with --initial-election-tick-advance
// (default on), it waits up to 5 s for its streams to more than one peer
// to come up and then fast-forwards to two ticks before the timeout, so a
// cluster that starts or restarts elects sooner; a leader's heartbeat
// (every tick) still reaches it before it would campaign. Without peers
// within the wait it does nothing. Ticks are Raft's, sent to the node as
// its ticker sends them.
func (s *Server) adjustTicks() {
	et := s.cfg.electionTicks()
	dur := func(ticks int) string { return fmt.Sprintf("%v", time.Duration(ticks)*s.cfg.HeartbeatInterval) }
	members := s.readView().membership.Members
	if len(members) == 1 {
		ticks := et - 1
		s.lg.Info("started as single-node; fast-forwarding election ticks", "local-member-id", idString(s.id),
			"forward-ticks", ticks, "forward-duration", dur(ticks), "election-ticks", et, "election-timeout", dur(et))
		s.advanceTicks(ticks)
		return
	}
	if s.cfg.DisableInitialElectionTickAdvance {
		s.lg.Info("skipping initial election tick advance", "election-ticks", et)
		return
	}
	s.lg.Info("starting initial election tick advance", "election-ticks", et)
	pa, ok := s.transport.(peerActivity)
	if !ok {
		return
	}
	const every = 50 * time.Millisecond
	for range int(peerWaitForTickAdvance / every) {
		select {
		case <-time.After(every):
		case <-s.stopc:
			return
		}
		active := 0
		for _, m := range s.readView().membership.Members {
			if m.ID != s.id && !pa.ActiveSince(m.ID).IsZero() {
				active++
			}
		}
		if active > 1 {
			ticks := et - 2
			s.lg.Info("initialized peer connections; fast-forwarding election ticks", "local-member-id", idString(s.id),
				"forward-ticks", ticks, "forward-duration", dur(ticks), "election-ticks", et, "election-timeout", dur(et),
				"active-remote-members", active)
			s.advanceTicks(ticks)
			return
		}
	}
}

// advanceTicks ticks the Raft node n times at once.
func (s *Server) advanceTicks(n int) {
	for range n {
		s.raft.node.Tick()
	}
}
