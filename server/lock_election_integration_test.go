package server_test

// etcd's Lock and Election gRPC services (v3lockpb, v3electionpb: what
// jetcd's and other non-Go clients' lock and election use), against a real
// etcd and a 3-member quorumd, with the calls spread over the members.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"
)

// errText is what a client sees of an RPC error: its gRPC message.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + status.Convert(err).Message()
}

// lockElectionScript runs the same calls on clis (used in turn) and
// returns what they answered, without revisions (a fresh etcd and a
// fresh quorumd differ in them). Lease IDs are the client's, so keys are
// comparable.
func lockElectionScript(t *testing.T, eps []string) []string {
	t.Helper()
	var clis []*clientv3.Client
	for _, ep := range eps {
		clis = append(clis, clientFor(t, ep))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []string
	say := func(f string, args ...any) { out = append(out, fmt.Sprintf(f, args...)) }
	cli := func(i int) *clientv3.Client { return clis[i%len(clis)] }
	lock := func(i int) v3lockpb.LockClient { return v3lockpb.NewLockClient(cli(i).ActiveConnection()) }
	elect := func(i int) v3electionpb.ElectionClient {
		return v3electionpb.NewElectionClient(cli(i).ActiveConnection())
	}
	const l1, l2 = 0x1111, 0x2222
	for i, id := range []int64{l1, l2} {
		if _, err := pb.NewLeaseClient(cli(i).ActiveConnection()).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: 60}); err != nil {
			t.Fatalf("grant %x: %v", id, err)
		}
	}

	// Lock: the first holder gets name/<lease>, the second waits for the
	// first's unlock.
	r1, err := lock(0).Lock(ctx, &v3lockpb.LockRequest{Name: []byte("L"), Lease: l1})
	say("lock L by %x: %s key=%s", l1, errText(err), r1.GetKey())
	second := make(chan string, 1)
	go func() {
		r, err := lock(1).Lock(ctx, &v3lockpb.LockRequest{Name: []byte("L"), Lease: l2})
		second <- fmt.Sprintf("lock L by %x: %s key=%s", l2, errText(err), r.GetKey())
	}()
	select {
	case s := <-second:
		say("second lock did not wait: %s", s)
	case <-time.After(500 * time.Millisecond):
		say("second lock waits")
	}
	_, err = lock(2).Unlock(ctx, &v3lockpb.UnlockRequest{Key: r1.GetKey()})
	say("unlock %s: %s", r1.GetKey(), errText(err))
	say("%s", <-second)
	_, err = lock(0).Lock(ctx, &v3lockpb.LockRequest{Name: []byte("L"), Lease: 0x9999})
	say("lock L by missing lease: %s", errText(err))

	// Election: campaign, leader, observe, proclaim, a waiting campaign,
	// resign hands over.
	_, err = elect(0).Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("E")})
	say("leader of empty E: %s", errText(err))
	c1, err := elect(0).Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("E"), Lease: l1, Value: []byte("p1")})
	say("campaign E by %x: %s name=%s key=%s lease=%x", l1, errText(err), c1.GetLeader().GetName(), c1.GetLeader().GetKey(), c1.GetLeader().GetLease())
	lr, err := elect(1).Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("E")})
	say("leader of E: %s %s", errText(err), kvOf(lr.GetKv()))
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	obs, err := elect(2).Observe(octx, &v3electionpb.LeaderRequest{Name: []byte("E")})
	if err != nil {
		t.Fatal(err)
	}
	observe := func() {
		r, err := obs.Recv()
		say("observed: %s %s", errText(err), kvOf(r.GetKv()))
	}
	observe()
	_, err = elect(1).Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: c1.GetLeader(), Value: []byte("p1b")})
	say("proclaim p1b: %s", errText(err))
	observe()
	campaign2 := make(chan *v3electionpb.CampaignResponse, 1)
	go func() {
		r, err := elect(1).Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("E"), Lease: l2, Value: []byte("p2")})
		if err != nil {
			t.Errorf("second campaign: %v", err)
		}
		campaign2 <- r
	}()
	select {
	case <-campaign2:
		say("second campaign did not wait")
	case <-time.After(500 * time.Millisecond):
		say("second campaign waits")
	}
	_, err = elect(2).Resign(ctx, &v3electionpb.ResignRequest{Leader: c1.GetLeader()})
	say("resign %s: %s", c1.GetLeader().GetKey(), errText(err))
	c2 := <-campaign2
	say("campaign E by %x won: key=%s", l2, c2.GetLeader().GetKey())
	observe()
	_, err = elect(0).Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: c1.GetLeader(), Value: []byte("stale")})
	say("proclaim by the resigned leader: %s", errText(err))
	return out
}

// sameAsEtcd runs script against a real etcd and a 3-member quorumd and
// requires the same transcript.
func sameAsEtcd(t *testing.T, what string, script func(*testing.T, []string) []string) {
	t.Helper()
	etcdEP := startRealEtcdWith(t)
	if etcdEP == "" {
		t.Skip("no etcd binary at tools/bin/etcd (bash tools/build.sh builds it)")
	}
	tc := startCluster(t, 3)
	tc.waitHealthy()
	want := script(t, []string{etcdEP})
	got := script(t, tc.Endpoints())
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\nquorumd:\n%s\netcd:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("transcript:\n%s", strings.Join(want, "\n"))
}

func TestLockAndElectionServicesMatchEtcd(t *testing.T) {
	sameAsEtcd(t, "Lock and Election services", lockElectionScript)
}

// kvOf is key=value of kv, or "none".
func kvOf(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "none"
	}
	return string(kv.Key) + "=" + string(kv.Value)
}

// authLockScript enables auth on the cluster behind eps (root, and alice
// with read-write on the prefix A only) and locks as nobody, as alice on
// her prefix and outside it, and as root: the Lock service acts with the
// caller's token, as etcd's does.
func authLockScript(t *testing.T, eps []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := clientFor(t, eps[0])
	for _, step := range []func() error{
		func() error { _, err := admin.RoleAdd(ctx, "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "a-writer"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "a-writer", "A", clientv3.GetPrefixRangeEnd("A"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "alice", "a-writer"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("auth set-up: %v", err)
		}
	}
	as := func(user, pw string, ep string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Username: user, Password: pw, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	var out []string
	lockAs := func(what string, cli *clientv3.Client, name string, lease int64) {
		r, err := v3lockpb.NewLockClient(cli.ActiveConnection()).Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: lease})
		out = append(out, fmt.Sprintf("lock %s as %s: %s key=%s", name, what, errText(err), r.GetKey()))
	}
	ep := func(i int) string { return eps[i%len(eps)] }
	root, alice := as("root", "rootpw", ep(1)), as("alice", "alicepw", ep(2))
	lease, err := alice.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	lockAs("nobody", clientFor(t, ep(0)), "A1", int64(lease.ID))
	lockAs("alice", alice, "A1", int64(lease.ID))
	lockAs("alice", alice, "B1", int64(lease.ID))
	rootLease, err := root.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	lockAs("root", root, "B1", int64(rootLease.ID))
	for i, o := range out { // lease IDs are the server's
		out[i] = strings.ReplaceAll(strings.ReplaceAll(o, fmt.Sprintf("%x", int64(lease.ID)), "<alice's lease>"), fmt.Sprintf("%x", int64(rootLease.ID)), "<root's lease>")
	}
	return out
}

func TestLockServiceActsWithTheCallersTokenAsEtcd(t *testing.T) {
	sameAsEtcd(t, "Lock under auth", authLockScript)
}
