package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// waitStarted waits until every member of s's applied membership has
// published its name (etcd's "started").
func waitStarted(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m := s.readView().membership
		started := 0
		for _, x := range m.Members {
			if x.Name != "" {
				started++
			}
		}
		if started >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d members started: %+v", n, s.readView().membership.Members)
}

// memberList is MemberList's raft attributes (ID, peer URLs, learner):
// what conf changes change.
func memberList(t *testing.T, s *Server) []string {
	t.Helper()
	r, err := (&clusterServer{s: s}).MemberList(context.Background(), &pb.MemberListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range r.Members {
		out = append(out, fmt.Sprintf("%x %v learner=%v", m.ID, m.PeerURLs, m.IsLearner))
	}
	return out
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Bad reconfigurations are refused with etcd's errors and change nothing;
// a removed member stops with etcd's error; the membership (learners,
// updated URLs, removed IDs) survives a restart of every member, through
// snapshots and the WAL.
func TestMemClusterMembershipChangesSurviveRestartOfEveryMember(t *testing.T) {
	c := newMemCluster(t, 3)
	li, lead := c.leader()
	waitStarted(t, lead, 3)
	cs := &clusterServer{s: lead}
	before := memberList(t, lead)

	// (c) bad input: etcd's errors, nothing changes.
	if _, err := cs.MemberRemove(ctx10(t), &pb.MemberRemoveRequest{ID: 0x1234}); !errors.Is(err, rpctypes.ErrGRPCMemberNotFound) {
		t.Fatalf("remove unknown ID: %v, want %v", err, rpctypes.ErrGRPCMemberNotFound)
	}
	if _, err := cs.MemberAdd(ctx10(t), &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:1"}}); !errors.Is(err, rpctypes.ErrGRPCPeerURLExist) {
		t.Fatalf("add with a peer URL in use: %v, want %v", err, rpctypes.ErrGRPCPeerURLExist)
	}
	if _, err := cs.MemberAdd(ctx10(t), &pb.MemberAddRequest{PeerURLs: []string{"not a url"}}); !errors.Is(err, rpctypes.ErrGRPCMemberBadURLs) {
		t.Fatalf("add with a bad URL: %v, want %v", err, rpctypes.ErrGRPCMemberBadURLs)
	}
	if after := memberList(t, lead); !reflect.DeepEqual(after, before) {
		t.Fatalf("refused changes changed the membership: %v, was %v", after, before)
	}

	// A learner that never starts: listed without a name, not promotable.
	add, err := cs.MemberAdd(ctx10(t), &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:9"}, IsLearner: true})
	if err != nil || !add.Member.IsLearner || len(add.Members) != 4 {
		t.Fatalf("add learner: %v %v", add, err)
	}
	learner := add.Member.ID
	if _, err := cs.MemberPromote(ctx10(t), &pb.MemberPromoteRequest{ID: learner}); !errors.Is(err, rpctypes.ErrGRPCLearnerNotReady) {
		t.Fatalf("promote a learner that has nothing: %v, want %v", err, rpctypes.ErrGRPCLearnerNotReady)
	}
	if _, err := cs.MemberAdd(ctx10(t), &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:8"}, IsLearner: true}); !errors.Is(err, rpctypes.ErrGRPCTooManyLearners) {
		t.Fatalf("a second learner with --max-learners 1: %v, want %v", err, rpctypes.ErrGRPCTooManyLearners)
	}

	// (d) a removed follower stops with etcd's error.
	f := (li + 1) % 3
	removed := c.members[f]
	if _, err := cs.MemberRemove(ctx10(t), &pb.MemberRemoveRequest{ID: removed.id}); err != nil {
		t.Fatalf("remove follower: %v", err)
	}
	select {
	case err := <-removed.Err():
		if !errors.Is(err, ErrMemberRemoved) {
			t.Fatalf("removed member stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removed member did not stop")
	}
	c.stop(f)

	// Enough writes for snapshots (--snapshot-count 20), then a change
	// that only the WAL holds.
	for i := 0; i < 60; i++ {
		c.put(lead, fmt.Sprintf("k%02d", i), "v")
	}
	if _, err := cs.MemberUpdate(ctx10(t), &pb.MemberUpdateRequest{ID: learner, PeerURLs: []string{"http://127.0.0.1:10"}}); err != nil {
		t.Fatalf("update learner: %v", err)
	}
	want := lead.readView().membership
	if !want.IsRemoved(removed.id) || want.Member(learner) == nil || !want.Member(learner).IsLearner ||
		want.Member(learner).PeerURLs[0] != "http://127.0.0.1:10" || len(want.Members) != 3 {
		t.Fatalf("membership before restart: %+v removed %v", want.Members, want.Removed)
	}

	// (e) every member restarts with it.
	for i := range c.members {
		c.stop(i)
	}
	for i := range c.members {
		if i != f {
			c.start(i)
		}
	}
	c.leader()
	for i, s := range c.members {
		if s == nil {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for !reflect.DeepEqual(s.readView().membership, want) {
			if time.Now().After(deadline) {
				t.Fatalf("member %d restarted with %+v removed %v, want %+v removed %v", i,
					s.readView().membership.Members, s.readView().membership.Removed, want.Members, want.Removed)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	c.converged()

	// The removed member, restarted on its data dir, stops again.
	c.start(f)
	select {
	case err := <-c.members[f].Err():
		if !errors.Is(err, ErrMemberRemoved) {
			t.Fatalf("restarted removed member stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the restarted removed member did not stop")
	}
}

// (c) The only voting member cannot be removed: etcd's "not enough started
// members", and the member goes on.
func TestRemovingTheLastVoterIsRefused(t *testing.T) {
	c := newMemCluster(t, 1)
	_, lead := c.leader()
	waitStarted(t, lead, 1)
	cs := &clusterServer{s: lead}
	_, err := cs.MemberRemove(ctx10(t), &pb.MemberRemoveRequest{ID: lead.id})
	if err == nil || err.Error() != "etcdserver: re-configuration failed due to not enough started members" {
		t.Fatalf("remove the only voter: %v", err)
	}
	if got := memberList(t, lead); len(got) != 1 || got[0] != fmt.Sprintf("%x [http://127.0.0.1:1] learner=false", lead.id) {
		t.Fatalf("membership changed: %v", got)
	}
	c.put(lead, "still", "serving")
}

// A follower forwards MemberPromote to the leader's peer
// /members/promote/<id>, whose answer it returns; MoveLeader goes only
// through the leader and only to a voting member.
func TestPromoteIsForwardedToTheLeaderAndMoveLeaderIsEtcds(t *testing.T) {
	c := newMemCluster(t, 3)
	li, lead := c.leader()
	waitStarted(t, lead, 3)
	follower := c.members[(li+1)%3]
	// The in-memory network routes by ID; give the leader a real peer URL
	// for the forwarded promotion.
	srv := httptest.NewServer(lead.peerHandlerWithMembers(http.NotFoundHandler()))
	defer srv.Close()
	lcs := &clusterServer{s: lead}
	// On a loaded machine a proposal can time out (etcd's "request timed
	// out") while the first heartbeats settle; a timed-out one is retried.
	var add *pb.MemberAddResponse
	for i, step := range []func() error{
		func() error {
			_, err := lcs.MemberUpdate(ctx10(t), &pb.MemberUpdateRequest{ID: lead.id, PeerURLs: []string{srv.URL}})
			return err
		},
		func() (err error) {
			add, err = lcs.MemberAdd(ctx10(t), &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:9"}, IsLearner: true})
			return err
		},
	} {
		err := step()
		for try := 0; try < 3 && err != nil && strings.Contains(err.Error(), "request timed out"); try++ {
			err = step()
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for follower.readView().membership.Member(add.Member.ID) == nil || follower.readView().membership.Member(lead.id).PeerURLs[0] != srv.URL {
		if time.Now().After(deadline) {
			t.Fatal("the follower did not apply the changes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fcs := &clusterServer{s: follower}
	if _, err := fcs.MemberPromote(ctx10(t), &pb.MemberPromoteRequest{ID: add.Member.ID}); !errors.Is(err, rpctypes.ErrGRPCLearnerNotReady) {
		t.Fatalf("promote through a follower: %v, want %v", err, rpctypes.ErrGRPCLearnerNotReady)
	}
	if _, err := fcs.MemberPromote(ctx10(t), &pb.MemberPromoteRequest{ID: 0x1234}); !errors.Is(err, rpctypes.ErrGRPCMemberNotFound) {
		t.Fatalf("promote an unknown ID through a follower: %v, want %v", err, rpctypes.ErrGRPCMemberNotFound)
	}

	ms := func(s *Server) *maintenanceServer { return &maintenanceServer{s: s} }
	if _, err := ms(follower).MoveLeader(ctx10(t), &pb.MoveLeaderRequest{TargetID: follower.id}); !errors.Is(err, rpctypes.ErrGRPCNotLeader) {
		t.Fatalf("move-leader on a follower: %v, want %v", err, rpctypes.ErrGRPCNotLeader)
	}
	if _, err := ms(lead).MoveLeader(ctx10(t), &pb.MoveLeaderRequest{TargetID: add.Member.ID}); !errors.Is(err, rpctypes.ErrGRPCBadLeaderTransferee) {
		t.Fatalf("move-leader to a learner: %v, want %v", err, rpctypes.ErrGRPCBadLeaderTransferee)
	}
	if _, err := ms(lead).MoveLeader(ctx10(t), &pb.MoveLeaderRequest{TargetID: follower.id}); err != nil {
		t.Fatalf("move-leader to a follower: %v", err)
	}
	if l := follower.status.leader(); l != follower.id {
		t.Fatalf("leader after move-leader: %x, want %x", l, follower.id)
	}
}

// Conf changes proposed back to back, each as soon as the last one is
// answered, all succeed: the answer comes only once Raft knows the last
// one is applied, so Raft does not drop the next as "pending" (the
// proposer would time out).
func TestBackToBackConfChangesAreNotDropped(t *testing.T) {
	c := newMemCluster(t, 3)
	_, lead := c.leader()
	waitStarted(t, lead, 3)
	cs := &clusterServer{s: lead}
	for i := 0; i < 300; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := cs.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: lead.id, PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", 1000+i)}})
		cancel()
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
}

// A client that has its answer reads its write on the member it wrote
// through, with a serializable read too (as with etcd, which applies
// before it answers): the applier answers a batch's proposers only once the
// batch is published to readers. Several writers, so batches hold several
// entries.
func TestAnsweredWritesAreReadBySerializableReadsOnTheSameMember(t *testing.T) {
	c := newMemCluster(t, 3)
	li, _ := c.leader()
	for _, s := range []*Server{c.members[li], c.members[(li+1)%3]} {
		kv := &kvServer{s: s}
		errc := make(chan error, 4)
		for w := 0; w < 4; w++ {
			go func() {
				for i := 0; i < 100; i++ {
					key := fmt.Sprintf("w%d/%x", w, s.id)
					val := fmt.Sprint(i)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					put, err := kv.Put(ctx, &pb.PutRequest{Key: []byte(key), Value: []byte(val)})
					if err != nil {
						cancel()
						errc <- fmt.Errorf("put %s: %w", key, err)
						return
					}
					got, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte(key), Serializable: true})
					cancel()
					if err != nil {
						errc <- fmt.Errorf("get %s: %w", key, err)
						return
					}
					if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != val || got.Header.Revision < put.Header.Revision {
						errc <- fmt.Errorf("member %x answered put %s=%s at revision %d, then read %v at revision %d",
							s.id, key, val, put.Header.Revision, got.Kvs, got.Header.Revision)
						return
					}
				}
				errc <- nil
			}()
		}
		for w := 0; w < 4; w++ {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
}
