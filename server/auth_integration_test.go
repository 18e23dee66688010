package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// userClient is a client of endpoints as user:password.
func (tc *testCluster) userClient(user, password string, endpoints ...string) *clientv3.Client {
	tc.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		Username: user, Password: password})
	if err != nil {
		tc.t.Fatalf("client of %s for %v: %v", user, endpoints, err)
	}
	tc.t.Cleanup(func() { cli.Close() })
	return cli
}

// setUpAuth adds root and alice (read on the /app/ prefix, through role
// reader) and enables auth, through cli (no auth yet).
func setUpAuth(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "reader"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "reader", "/app/", clientv3.GetPrefixRangeEnd("/app/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "reader"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("auth set-up step %d: %v", i, err)
		}
	}
}

func isPermissionDenied(err error) bool {
	return err != nil && errors.Is(rpctypes.Error(err), rpctypes.ErrPermissionDenied)
}

// The auth state is replicated: a permission change applies on every
// member alike (same auth revision, same refusals); a member caught up by
// a snapshot has the auth state, and so has a restarted one; a watch on a
// range the user may not read is canceled with "permission denied".
func TestAuthIsTheSameOnEveryMemberAndSurvivesSnapshotAndRestart(t *testing.T) {
	tc := startCluster(t, 3, "--snapshot-count=100", "--snapshot-catchup-entries=20", "--bcrypt-cost=4")
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var all []string
	for _, n := range tc.Nodes() {
		all = append(all, n.ClientURL())
	}
	setUpAuth(t, ctx, tc.client(all...))
	root := tc.userClient("root", "rootpw", all...)
	if _, err := root.Put(ctx, "/app/a", "1"); err != nil {
		t.Fatal(err)
	}

	// A permission granted and revoked: every member refuses alike, at the
	// same auth revision.
	if _, err := root.RoleGrantPermission(ctx, "reader", "/app/w", "", clientv3.PermissionType(clientv3.PermWrite)); err != nil {
		t.Fatal(err)
	}
	for _, u := range all {
		if _, err := tc.userClient("alice", "alicepw", u).Put(ctx, "/app/w", "by alice"); err != nil {
			t.Fatalf("alice's put through %s: %v", u, err)
		}
	}
	if _, err := root.RoleRevokePermission(ctx, "reader", "/app/w", ""); err != nil {
		t.Fatal(err)
	}
	var authRev []uint64
	for _, u := range all {
		alice := tc.userClient("alice", "alicepw", u)
		if _, err := alice.Put(ctx, "/app/w", "again"); !isPermissionDenied(err) {
			t.Errorf("alice's put through %s after the revoke: %v, want permission denied", u, err)
		}
		if _, err := alice.Get(ctx, "/app/a"); err != nil {
			t.Errorf("alice's get through %s: %v", u, err)
		}
		st, err := tc.userClient("root", "rootpw", u).AuthStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		authRev = append(authRev, st.AuthRevision)
	}
	if authRev[0] != authRev[1] || authRev[1] != authRev[2] {
		t.Errorf("auth revisions through the members: %v", authRev)
	}

	// A watch on a range alice may not read is canceled.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	wr, ok := <-tc.userClient("alice", "alicepw", all[0]).Watch(wctx, "/other")
	wcancel()
	if !ok || !wr.Canceled || !strings.Contains(wr.Err().Error(), "permission denied") {
		t.Errorf("watch on /other as alice: ok %v, canceled %v, err %v; want canceled with permission denied", ok, wr.Canceled, wr.Err())
	}

	// A lagging member catches up by snapshot, with the auth changes made
	// while it was down.
	// Maintenance.Status needs a user once auth is on (as etcd's), so the
	// leader is asked as root.
	lagging := tc.Nodes()[2]
	if st, err := root.Status(ctx, lagging.ClientURL()); err != nil {
		t.Fatal(err)
	} else if st.Leader == st.Header.MemberId {
		lagging = tc.Nodes()[1]
	}
	if err := lagging.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, n := range tc.Nodes() {
		if n.Name() != lagging.Name() {
			others = append(others, n.ClientURL())
		}
	}
	rootOthers := tc.userClient("root", "rootpw", others...)
	if _, err := rootOthers.RoleGrantPermission(ctx, "reader", "/app/w2", "", clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		t.Fatal(err)
	}
	if _, err := rootOthers.UserAdd(ctx, "bob", "bobpw"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		if _, err := rootOthers.Put(ctx, fmt.Sprintf("/s/%04d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := lagging.Start(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		eventually(t, 30*time.Second, lagging.Name()+" caught up "+when, func() error {
			resp, err := tc.userClient("root", "rootpw", lagging.ClientURL()).Get(ctx, "/s/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
			if err != nil {
				return err
			}
			if resp.Count != 300 {
				return fmt.Errorf("%d of 300 keys", resp.Count)
			}
			return nil
		})
		alice := tc.userClient("alice", "alicepw", lagging.ClientURL())
		if _, err := alice.Put(ctx, "/app/w2", "x"); err != nil {
			t.Errorf("%s: alice's put of /app/w2: %v", when, err)
		}
		if _, err := alice.Get(ctx, "/other"); !isPermissionDenied(err) {
			t.Errorf("%s: alice's get of /other: %v, want permission denied", when, err)
		}
		if _, err := tc.userClient("bob", "bobpw", lagging.ClientURL()).Get(ctx, "/app/a"); !isPermissionDenied(err) {
			t.Errorf("%s: bob's get: %v, want permission denied", when, err)
		}
		users, err := tc.userClient("root", "rootpw", lagging.ClientURL()).UserList(ctx)
		if err != nil || strings.Join(users.Users, ",") != "alice,bob,root" {
			t.Errorf("%s: users %v, %v", when, users, err)
		}
	}
	check("by snapshot")
	if !strings.Contains(tc.logOf(lagging.Name()), "restored the keyspace from a snapshot") {
		t.Fatalf("%s caught up without a snapshot transfer", lagging.Name())
	}
	if err := lagging.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lagging.Start(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a restart")
}

// tokenCtx carries token as etcd's clients send it.
func tokenCtx(ctx context.Context, token string) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(rpctypes.TokenFieldNameGRPC, token))
}

func dialRaw(t *testing.T, clientURL string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(clientURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A simple token unused for --auth-token-ttl is invalid.
func TestSimpleTokenExpiresAfterAuthTokenTTL(t *testing.T) {
	tc := startCluster(t, 1, "--auth-token-ttl=2", "--bcrypt-cost=4")
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u := tc.Nodes()[0].ClientURL()
	setUpAuth(t, ctx, tc.client(u))
	conn := dialRaw(t, u)
	resp, err := pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	kv := pb.NewKVClient(conn)
	for i := 0; i < 3; i++ { // each use renews it
		if _, err := kv.Range(tokenCtx(ctx, resp.Token), &pb.RangeRequest{Key: []byte("/app/a")}); err != nil {
			t.Fatalf("range with a fresh token: %v", err)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(4 * time.Second)
	_, err = kv.Range(tokenCtx(ctx, resp.Token), &pb.RangeRequest{Key: []byte("/app/a")})
	if rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(rpctypes.ErrGRPCInvalidAuthToken) {
		t.Fatalf("range with a token unused for 4s of a 2s TTL: %v, want %v", err, rpctypes.ErrGRPCInvalidAuthToken)
	}
}

// With --auth-token=jwt a token signed on one member is good on every
// member, and etcd's clients work as with etcd.
func TestJWTTokensWorkOnEveryMember(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "jwt.key")
	pubf := filepath.Join(dir, "jwt.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubf, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := startCluster(t, 3, "--auth-token=jwt,pub-key="+pubf+",priv-key="+priv+",sign-method=RS256,ttl=1h", "--bcrypt-cost=4")
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var all []string
	for _, n := range tc.Nodes() {
		all = append(all, n.ClientURL())
	}
	setUpAuth(t, ctx, tc.client(all...))
	resp, err := pb.NewAuthClient(dialRaw(t, all[0])).Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(resp.Token, ".") != 2 {
		t.Fatalf("token %q is not a JWT", resp.Token)
	}
	for _, u := range all {
		kv := pb.NewKVClient(dialRaw(t, u))
		if _, err := kv.Range(tokenCtx(ctx, resp.Token), &pb.RangeRequest{Key: []byte("/app/a")}); err != nil {
			t.Errorf("range through %s with the JWT: %v", u, err)
		}
		_, err := kv.Put(tokenCtx(ctx, resp.Token), &pb.PutRequest{Key: []byte("/app/a"), Value: []byte("x")})
		if rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(rpctypes.ErrGRPCPermissionDenied) {
			t.Errorf("put through %s with alice's JWT: %v, want permission denied", u, err)
		}
	}
	root := tc.userClient("root", "rootpw", all...)
	if _, err := root.Put(ctx, "/app/b", "2"); err != nil {
		t.Fatal(err)
	}
	if r, err := tc.userClient("alice", "alicepw", all[2]).Get(ctx, "/app/b"); err != nil || len(r.Kvs) != 1 {
		t.Errorf("alice's get through the JWT client: %v %v", r, err)
	}
}
