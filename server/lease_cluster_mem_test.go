package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// proposeOK proposes r through s, retrying while the cluster is between
// leaders, and returns the applied result.
func (c *memCluster) proposeOK(s *Server, r *pb.InternalRaftRequest) applyResult {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := s.propose(ctx, r)
		cancel()
		if err == nil {
			return res
		}
		if attempt == 20 {
			c.t.Fatalf("propose %v through member %x: %v", r, s.id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantLeases checks that every running member has exactly the leases want
// (their IDs, sorted, as fmt prints a slice).
func (c *memCluster) wantLeases(want string) {
	c.t.Helper()
	for _, s := range c.members {
		if s == nil {
			continue
		}
		if got := fmt.Sprint(s.lessor.ids()); got != want {
			c.t.Errorf("member %x has leases %s, want %s", s.id, got, want)
		}
	}
}

func leasePut(key string, lease int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte("v"), Lease: lease}}
}

// Grant, attach through puts and a txn, refuse a missing lease, and revoke:
// every attached key is deleted in one revision, on every member, and the
// keys of other leases and without one stay.
func TestMemClusterLeaseRevokeDeletesAttachedKeysInOneRevision(t *testing.T) {
	c := newMemCluster(t, 3)
	_, lead := c.leader()
	f := c.members[0]
	if f == lead {
		f = c.members[1]
	}
	res := c.proposeOK(f, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 100, TTL: 60}})
	if res.err != nil || res.resp.(*pb.LeaseGrantResponse).TTL != 60 {
		t.Fatalf("grant: %+v", res)
	}
	if res := c.proposeOK(lead, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 100, TTL: 60}}); !errors.Is(res.err, errLeaseExists) {
		t.Errorf("second grant of 100: %v, want errLeaseExists", res.err)
	}
	c.proposeOK(lead, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 200, TTL: 60}})
	for _, k := range []string{"a", "b"} {
		if res := c.proposeOK(f, leasePut(k, 100)); res.err != nil {
			t.Fatal(res.err)
		}
	}
	c.proposeOK(f, &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Lease: 100}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("d"), Lease: 200}}},
	}}})
	c.proposeOK(f, leasePut("e", 0))
	if res := c.proposeOK(f, leasePut("z", 300)); !errors.Is(res.err, errLeaseNotFound) && !strings.Contains(fmt.Sprint(res.err), "lease not found") {
		t.Errorf("put with a missing lease: %v, want lease not found", res.err)
	}
	before := c.converged()
	for _, s := range c.members {
		if ks, _ := s.lessor.keys(100); fmt.Sprint(ks) != "[a b c]" {
			t.Errorf("member %x: lease 100 has keys %v, want [a b c]", s.id, ks)
		}
	}
	res = c.proposeOK(f, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 100}})
	if res.err != nil {
		t.Fatal(res.err)
	}
	after := c.converged()
	var revBefore int64
	fmt.Sscanf(before, "rev %d:", &revBefore)
	if res.rev != revBefore+1 || !strings.HasPrefix(after, fmt.Sprintf("rev %d: ", revBefore+1)) {
		t.Errorf("revoke at rev %d; before it %q, after %q: want one revision", res.rev, before, after)
	}
	if strings.Contains(after, "a=") || strings.Contains(after, "b=") || strings.Contains(after, "c=") ||
		!strings.Contains(after, "d=") || !strings.Contains(after, "e=") {
		t.Errorf("after the revoke: %s; want only d and e", after)
	}
	if res := c.proposeOK(f, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 100}}); !errors.Is(res.err, errLeaseNotFound) {
		t.Errorf("second revoke: %v, want errLeaseNotFound", res.err)
	}
	c.wantLeases("[200]")
}

// A lease nobody renews is revoked by the leader through Raft: its keys
// vanish at the same revision on every member. One that is renewed stays.
func TestMemClusterExpiredLeaseIsRevokedThroughRaft(t *testing.T) {
	c := newMemCluster(t, 3)
	_, lead := c.leader()
	for _, id := range []int64{1, 2} {
		if res := c.proposeOK(lead, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: 1}}); res.err != nil {
			t.Fatal(res.err)
		}
		c.proposeOK(lead, leasePut(fmt.Sprint("k", id), id))
	}
	before := c.converged()
	var rev int64
	fmt.Sscanf(before, "rev %d:", &rev)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := lead.leaseRenew(context.Background(), 2); err != nil {
			t.Fatalf("renew lease 2: %v", err)
		}
		if v := lead.readView().view; v.Rev() > rev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease 1 not revoked after 10s: %s", c.converged())
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := c.converged()
	if want := fmt.Sprintf("rev %d: k2=v@", rev+1); !strings.HasPrefix(after, want) {
		t.Errorf("after expiry %q, want %q...: k1 deleted at one revision, k2 kept", after, want)
	}
	c.wantLeases("[2]")
}

// Leases are in the snapshot: a follower restarted from its storage and
// caught up by a snapshot from the leader has the leases and their keys,
// and a revoke then deletes the keys there too.
func TestMemClusterLeasesSurviveRestartAndSnapshotCatchUp(t *testing.T) {
	c := newMemCluster(t, 3)
	_, lead := c.leader()
	c.proposeOK(lead, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 1, TTL: 600}})
	c.proposeOK(lead, leasePut("early", 1))
	f := 0
	for c.members[f] == lead {
		f++
	}
	c.stop(f)
	c.proposeOK(lead, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 2, TTL: 600}})
	c.proposeOK(lead, leasePut("late", 2))
	followerCommit := c.disks[f].hs.Commit
	for n := 0; ; n++ {
		c.put(lead, fmt.Sprintf("k%03d", n), "x")
		if first, _ := lead.raft.storage.FirstIndex(); n >= 60 && first > followerCommit+1 {
			break
		}
		if n == 5000 {
			t.Fatal("the leader's log was never compacted past the stopped follower")
		}
	}
	c.converged()
	c.disks[f].trace = &trace{}
	c.start(f)
	c.converged()
	if got := c.disks[f].trace.take(); !strings.Contains(got, "save-snapshot") {
		t.Errorf("the follower caught up without a snapshot:\n%s", got)
	}
	s := c.members[f]
	for id, want := range map[int64]string{1: "[early]", 2: "[late]"} {
		if ks, err := s.lessor.keys(id); err != nil || fmt.Sprint(ks) != want {
			t.Errorf("restarted follower: lease %d keys %v, %v; want %s", id, ks, err, want)
		}
	}
	c.proposeOK(s, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 2}})
	if state := c.converged(); strings.Contains(state, "late=") || !strings.Contains(state, "early=") {
		t.Errorf("after revoking lease 2: %s", state)
	}
}

// No lease expires because of an election: the new leader gives every
// lease its full TTL again (etcd's Promote), so a key is still there after
// its lease's original deadline, and expires only a TTL after the change.
func TestMemClusterNewLeaderExtendsEveryLease(t *testing.T) {
	c := newMemCluster(t, 3)
	i, lead := c.leader()
	granted := time.Now()
	c.proposeOK(lead, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 9, TTL: 3}})
	c.proposeOK(lead, leasePut("k", 9))
	time.Sleep(2 * time.Second)
	c.stop(i)
	_, next := c.leader()
	changed := time.Now()
	time.Sleep(time.Until(granted.Add(3*time.Second + 500*time.Millisecond)))
	if v := next.readView().view; !strings.Contains(keyspace(t, v), "k=v@") {
		t.Fatalf("k vanished by its original deadline, %v after the leader change: %s", time.Since(changed), keyspace(t, v))
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(keyspace(t, next.readView().view), "k=v@") {
		if time.Now().After(deadline) {
			t.Fatal("k never expired under the new leader")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if took := time.Since(changed); took < 3*time.Second {
		t.Errorf("k expired %v after the leader change, before a full TTL (3s)", took)
	}
}

// With lease checkpoints on (1 s interval here, etcd's 5 min by default),
// the leader records a long lease's remaining TTL through Raft on every
// member; a new leader then extends the lease by what was left (plus the
// election timeout), not by its whole TTL; a renewal clears the record on
// every member first, so the lease gets its full TTL
// back; the record survives a member's restart from its WAL. Without
// checkpoints the new leader gives the whole TTL (the test above).
func TestMemClusterLeaseCheckpointsSurviveALeaderChange(t *testing.T) {
	c := newMemCluster(t, 3)
	for i := range c.members {
		c.stop(i)
		c.cfgs[i].LeaseCheckpoint = true
		c.cfgs[i].LeaseCheckpointInterval = time.Second
		c.start(i)
	}
	i, lead := c.leader()
	const ttl = 30
	c.proposeOK(lead, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: ttl}})
	c.proposeOK(lead, leasePut("k", 7))
	remaining := func(s *Server) int64 {
		for _, r := range s.lessor.records() {
			if r.ID == 7 {
				return r.RemainingTTL
			}
		}
		return -1
	}
	// Two checkpoints have been applied everywhere after 2.5 s: 28 s left.
	time.Sleep(2500 * time.Millisecond)
	for _, s := range c.members {
		waitFor(t, fmt.Sprintf("member %x has lease 7 checkpointed at 29 s or less", s.id), func() bool {
			r := remaining(s)
			return r > 0 && r <= ttl-2
		})
	}
	c.stop(i)
	_, next := c.leader()
	st, err := next.leaseTimeToLive(context.Background(), &pb.LeaseTimeToLiveRequest{ID: 7})
	if err != nil {
		t.Fatal(err)
	}
	// Extended by the checkpointed ≤28 s plus the 200 ms election timeout,
	// rounded down: at most 28 s; without checkpoints 30.
	if st.TTL > ttl-2 || st.TTL < ttl-6 || st.GrantedTTL != ttl {
		t.Errorf("after the leader change: TTL %d s of %d granted; want ≤ %d (the checkpointed remainder)", st.TTL, st.GrantedTTL, ttl-2)
	}
	c.start(i)
	c.converged()
	if r := remaining(c.members[i]); r <= 0 || r > ttl-2 {
		t.Errorf("restarted member %x: lease 7's checkpointed TTL %d, want 1..%d", c.members[i].id, r, ttl-2)
	}

	// (The memory network carries Raft only, so renew on the leader; a
	// follower's renewal is forwarded to the same renewOnLeader.)
	if got, err := next.leaseRenew(context.Background(), 7); err != nil || got != ttl {
		t.Fatalf("renew on leader %x: %d, %v", next.id, got, err)
	}
	if st, err := next.leaseTimeToLive(context.Background(), &pb.LeaseTimeToLiveRequest{ID: 7}); err != nil || st.TTL < ttl-1 {
		t.Errorf("after the renewal: %+v, %v; want %d s left", st, err, ttl)
	}
	for _, s := range c.members {
		waitFor(t, fmt.Sprintf("member %x has lease 7's record cleared or newly checkpointed", s.id), func() bool {
			r := remaining(s)
			return r == 0 || r >= ttl-2
		})
	}
}
