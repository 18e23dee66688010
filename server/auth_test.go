package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/quorum-kv/quorum/server/mvcc"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testAuthStore(t *testing.T, rec *authRecord) (auth.AuthStore, *authBackend) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BcryptCost = 4
	ap, err := newAuthParts(&cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	as, be := newAuthStore(&cfg, discardLogger(), ap, rec)
	t.Cleanup(func() { as.Close() })
	return as, be
}

// The snapshot carries the auth state (version 3): enabled, revision,
// users with their hashes and roles with their permissions; a version 2
// snapshot loads with auth disabled and no users.
func TestSnapshotCarriesAuthState(t *testing.T) {
	as, be := testAuthStore(t, nil)
	for _, err := range []error{
		func() error {
			_, err := as.UserAdd(&pb.AuthUserAddRequest{Name: "root", HashedPassword: "JDJhJDA0JGZha2U="})
			return err
		}(),
		func() error {
			_, err := as.UserGrantRole(&pb.AuthUserGrantRoleRequest{User: "root", Role: "root"})
			return err
		}(),
		func() error { _, err := as.RoleAdd(&pb.AuthRoleAddRequest{Name: "reader"}); return err }(),
		func() error {
			_, err := as.RoleGrantPermission(&pb.AuthRoleGrantPermissionRequest{Name: "reader",
				Perm: &authpb.Permission{PermType: authpb.READ, Key: []byte("/app/"), RangeEnd: []byte("/app0")}})
			return err
		}(),
		as.AuthEnable(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	mem := NewMembership(DefaultConfig().InitialCluster, "t")
	var b bytes.Buffer
	if err := encodeSnapshot(&b, mvcc.New().View(), snapshotSections{membership: mem, auth: be.record()}); err != nil {
		t.Fatal(err)
	}
	c, err := decodeSnapshot(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	as2, _ := testAuthStore(t, c.auth)
	if !as2.IsAuthEnabled() || as2.Revision() != as.Revision() {
		t.Fatalf("restored: enabled %v revision %d, want true %d", as2.IsAuthEnabled(), as2.Revision(), as.Revision())
	}
	role, err := as2.RoleGet(&pb.AuthRoleGetRequest{Role: "reader"})
	if err != nil || len(role.Perm) != 1 || string(role.Perm[0].Key) != "/app/" {
		t.Fatalf("restored role: %v %v", role, err)
	}
	if err := as2.IsAdminPermitted(&auth.AuthInfo{Username: "root", Revision: as2.Revision()}); err != nil {
		t.Fatalf("restored root is not admin: %v", err)
	}

	// Version 2: the same without the auth section.
	var noAuth bytes.Buffer
	if err := writeJSONSection(&noAuth, mem); err != nil {
		t.Fatal(err)
	}
	if err := writeJSONSection(&noAuth, []leaseRecord{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mvcc.New().View().WriteTo(&noAuth); err != nil {
		t.Fatal(err)
	}
	v2 := append(append([]byte{}, snapMagicV2...), noAuth.Bytes()...)
	c2, err := decodeSnapshot(v2)
	if err != nil {
		t.Fatal(err)
	}
	as3, _ := testAuthStore(t, c2.auth)
	if as3.IsAuthEnabled() || len(mustUsers(t, as3)) != 0 {
		t.Fatalf("a version 2 snapshot loads with auth enabled %v, users %v", as3.IsAuthEnabled(), mustUsers(t, as3))
	}
}

func mustUsers(t *testing.T, as auth.AuthStore) []string {
	t.Helper()
	r, err := as.UserList(&pb.AuthUserListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Users
}

// What the backend hands out is a copy: changing it changes nothing
// stored (etcd's AuthStore changes the users it reads before putting them
// back).
func TestAuthBackendClonesInAndOut(t *testing.T) {
	be := newAuthBackend(nil)
	tx := be.BatchTx()
	tx.Lock()
	u := &authpb.User{Name: []byte("a"), Roles: []string{"r"}}
	tx.UnsafePutUser(u)
	u.Roles[0] = "changed"
	got := tx.UnsafeGetUser("a")
	got.Roles = append(got.Roles, "more")
	tx.Unlock()
	if r := be.GetUser("a").Roles; len(r) != 1 || r[0] != "r" {
		t.Fatalf("stored roles %v, want [r]", r)
	}
}

// With --client-cert-auth a request without a token is made by the user
// its verified client certificate names (CN), as etcd's AuthInfoFromTLS.
func TestClientCertificateCNIsTheUser(t *testing.T) {
	as, _ := testAuthStore(t, nil)
	s := &Server{cfg: Config{ClientTLS: transport.TLSInfo{ClientCertAuth: true}}, auth: as}

	ca, caKey := newTestCert(t, "ca", nil, nil, true)
	srvCert, srvKey := newTestCert(t, "server", ca, caKey, false)
	cliCert, cliKey := newTestCert(t, "alice", ca, caKey, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	got := make(chan *auth.AuthInfo, 1)
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}},
			ClientCAs:    pool, ClientAuth: tls.RequireAndVerifyClientCert,
		})),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ai, err := s.authInfoFromCtx(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- ai
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(g, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{cliCert.Raw}, PrivateKey: cliKey}},
		RootCAs:      pool, ServerName: "server",
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if ai := <-got; ai == nil || ai.Username != "alice" || ai.Revision != as.Revision() {
		t.Fatalf("auth info %+v, want alice at revision %d", ai, as.Revision())
	}
	// Without --client-cert-auth the certificate names nobody.
	s.cfg.ClientTLS.ClientCertAuth = false
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if ai := <-got; ai != nil {
		t.Fatalf("auth info %+v without --client-cert-auth, want none", ai)
	}
}

// newTestCert makes a certificate for cn signed by parent (self-signed
// when nil).
func newTestCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames:    []string{cn},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// Writes are checked when applied, with the user and auth revision their
// proposer put in the header (etcd's authApplierV3): a put made before a
// permission was revoked, applied after, is refused, as on every member.
func TestApplierChecksWritesWithTheHeadersUser(t *testing.T) {
	r := newApplierRig(t, 1000, 5)
	as := r.a.auth
	steps := []*pb.InternalRaftRequest{
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: "JDJhJDA0JGZha2U="}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}},
		{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "w"}},
		{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "w",
			Perm: &authpb.Permission{PermType: authpb.WRITE, Key: []byte("k")}}},
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "alice", HashedPassword: "JDJhJDA0JGZha2U="}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "alice", Role: "w"}},
		{AuthEnable: &pb.AuthEnableRequest{}},
	}
	var payloads []any
	for i, s := range steps {
		payloads = append(payloads, req(uint64(10+i), s))
	}
	if err := r.a.applyBatch(applyJob{entries: r.log(t, 1, payloads...)}); err != nil {
		t.Fatal(err)
	}
	asAlice := func(id uint64, rev uint64) *pb.InternalRaftRequest {
		p := put(id, "k", "v")
		p.Header.Username, p.Header.AuthRevision = "alice", rev
		return p
	}
	rev := as.Revision()
	revoke := req(30, &pb.InternalRaftRequest{AuthRoleRevokePermission: &pb.AuthRoleRevokePermissionRequest{Role: "w", Key: []byte("k")}})
	revoke.Header.Username, revoke.Header.AuthRevision = "root", rev
	noUser := put(33, "k", "v")
	ents := r.log(t, uint64(len(steps)+1), asAlice(31, rev), revoke, asAlice(32, rev), asAlice(34, rev+1), noUser)
	w := map[uint64]<-chan applyResult{}
	for _, id := range []uint64{31, 32, 33, 34} {
		w[id] = r.results.register(id)
	}
	if err := r.a.applyBatch(applyJob{entries: ents}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[uint64]error{31: nil, 32: auth.ErrAuthOldRevision, 34: auth.ErrPermissionDenied, 33: auth.ErrUserEmpty} {
		if res := <-w[id]; res.err != want {
			t.Errorf("put %d: %v, want %v", id, res.err, want)
		}
	}
	if got := keyspace(t, r.a.readView().view); got != "k=v@2" {
		t.Errorf("keyspace %q, want only the first put", got)
	}
}
