package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/internal/pki"
)

// testPKI is a CA and the certificates the TLS tests use, written under
// dir: ca.crt; member.crt/key (CN member, IP SAN 127.0.0.1: served on
// the client and peer ports and presented to peers); client.crt/key (CN
// root); and the certificates to be refused: other-ca's client, an
// expired client, a revoked client (crl.der revokes it) and a peer
// "intruder" signed by the CA with another CN.
type testPKI struct {
	dir     string
	ca      *pki.CA
	member  *pki.Pair
	revoked *pki.Pair
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	p, err := buildTestPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeTestPKI writes the files of a new testPKI under dir.
func writeTestPKI(dir string) error {
	_, err := buildTestPKI(dir)
	return err
}

func buildTestPKI(dir string) (*testPKI, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ca, err := pki.NewCA("quorum test CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	p := &testPKI{dir: dir, ca: ca}
	if err := ca.WriteCert(p.path("ca.crt")); err != nil {
		return nil, err
	}
	issue := func(name string, r pki.Request, by *pki.CA) *pki.Pair {
		if err != nil {
			return nil
		}
		var pair *pki.Pair
		if pair, err = by.Issue(r); err == nil {
			err = pair.Write(p.path(name+".crt"), p.path(name+".key"))
		}
		return pair
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	p.member = issue("member", pki.Request{CommonName: "member", IPs: loopback}, ca)
	issue("client", pki.Request{CommonName: "root"}, ca)
	issue("expired", pki.Request{CommonName: "root", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}, ca)
	p.revoked = issue("revoked", pki.Request{CommonName: "root"}, ca)
	issue("intruder", pki.Request{CommonName: "intruder", IPs: loopback}, ca)
	other, oerr := pki.NewCA("another CA", 24*time.Hour)
	if oerr != nil {
		return nil, oerr
	}
	issue("other-ca", pki.Request{CommonName: "root", IPs: loopback}, other)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteCRL(p.path("crl.der"), p.revoked.Cert); err != nil {
		return nil, err
	}
	return p, nil
}

// loadTestPKI is the client side of a testPKI written under dir.
func loadTestPKI(dir string) *testPKI { return &testPKI{dir: dir} }

func (p *testPKI) path(name string) string { return filepath.Join(p.dir, name) }

// clientTLS is a client configuration trusting the CA and presenting
// cert (a base name under dir, "" for none).
func (p *testPKI) clientTLS(t *testing.T, cert string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(p.path(cert+".crt"), p.path(cert+".key"))
		if err != nil {
			t.Fatal(err)
		}
		// Presented whatever CAs the server asks for (Go's client
		// would otherwise send nothing for another CA's certificate).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return cfg
}

// seedsArgs is the seeds' production flag set for member i of 3 on
// 127.0.0.1: client port base+i*10 (and a second client listener on
// base+i*10+2), peer port base+i*10+1.
func seedsArgs(p *testPKI, dir string, i, base int) []string {
	u := func(j, off int) string { return fmt.Sprintf("https://127.0.0.1:%d", base+j*10+off) }
	var members []string
	for j := 1; j <= 3; j++ {
		members = append(members, fmt.Sprintf("n%d=%s", j, u(j, 1)))
	}
	return []string{"--name", fmt.Sprintf("n%d", i), "--data-dir", filepath.Join(dir, fmt.Sprintf("n%d", i)),
		"--cert-file", p.path("member.crt"), "--key-file", p.path("member.key"),
		"--peer-cert-file", p.path("member.crt"), "--peer-key-file", p.path("member.key"),
		"--trusted-ca-file", p.path("ca.crt"), "--peer-trusted-ca-file", p.path("ca.crt"),
		"--peer-client-cert-auth", "--client-cert-auth",
		"--initial-advertise-peer-urls", u(i, 1), "--listen-peer-urls", u(i, 1),
		"--listen-client-urls", u(i, 0) + "," + u(i, 2), "--advertise-client-urls", u(i, 0),
		"--initial-cluster", strings.Join(members, ","),
	}
}

var ctlOnce struct {
	sync.Once
	bin string
	err error
}

// quorumctl builds cmd/quorumctl once per test binary, beside quorumd.
func quorumctl(t *testing.T) string {
	t.Helper()
	ctlOnce.Do(func() {
		bin := filepath.Join(filepath.Dir(quorumdBinary), "quorumctl")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/quorum-kv/quorum/cmd/quorumctl").CombinedOutput()
		if err != nil {
			ctlOnce.err = fmt.Errorf("build quorumctl: %v\n%s", err, out)
		}
		ctlOnce.bin = bin
	})
	if ctlOnce.err != nil {
		t.Fatal(ctlOnce.err)
	}
	return ctlOnce.bin
}

// tlsClient is etcd's client for endpoint over TLS with cfg.
func tlsClient(t *testing.T, cfg *tls.Config, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, TLS: cfg, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// waitPut puts key=val through cli, retrying while the cluster elects.
func waitPut(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := cli.Put(ctx, key, val)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v", key, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mustGet(t *testing.T, cli *clientv3.Client, key, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != want {
		t.Fatalf("get %s from %v: %v %v", key, cli.Endpoints(), resp, err)
	}
}

// waitLog waits until the log at path has a line with every one of subs.
func waitLog(t *testing.T, path string, subs ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
	lines:
		for _, l := range strings.Split(string(b), "\n") {
			for _, s := range subs {
				if !strings.Contains(l, s) {
					continue lines
				}
			}
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no line with %q", path, subs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func skipShort(t *testing.T) {
	t.Helper()
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
}

// The seeds' production flag set — certificates on both ports, client and
// peer certificate auth, https everywhere, two client listeners — starts a
// 3-member cluster that quorumctl reads with --cacert/--cert/--key, that
// takes puts and gets through every member and every listener, and that
// refuses, each with etcd's log line and the member serving on
// afterwards: plaintext on the TLS client and peer ports, a client without
// a certificate, a certificate from another CA, an expired certificate,
// and a peer whose certificate's IP SANs do not cover it.
func TestTLSClusterWithTheSeedsFlags(t *testing.T) {
	skipShort(t)
	dir, base := t.TempDir(), freeBase(t)
	p := newTestPKI(t, filepath.Join(dir, "pki"))
	var argv [][]string
	for i := 1; i <= 3; i++ {
		argv = append(argv, seedsArgs(p, dir, i, base))
	}
	startMembers(t, quorumdBinary, dir, argv)
	good := p.clientTLS(t, "client")
	ep := func(i, off int) string { return fmt.Sprintf("127.0.0.1:%d", base+i*10+off) }
	waitPut(t, tlsClient(t, good, ep(1, 0)), "/seed", "v0")
	for i := 1; i <= 3; i++ {
		for _, off := range []int{0, 2} {
			cli := tlsClient(t, good, ep(i, off))
			key := fmt.Sprintf("/k%d-%d", i, off)
			waitPut(t, cli, key, "v")
			for j := 1; j <= 3; j++ {
				mustGet(t, tlsClient(t, good, ep(j, 0)), key, "v")
			}
		}
	}
	ctl := func(endpoint string) (string, error) {
		cmd := exec.Command(quorumctl(t), "--endpoints", "https://"+endpoint, "get", "/", "--prefix", "--keys-only", "--limit=10",
			"--cacert", p.path("ca.crt"), "--cert", p.path("client.crt"), "--key", p.path("client.key"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	serves := func(t *testing.T) {
		t.Helper()
		for i := 1; i <= 3; i++ {
			out, err := ctl(ep(i, 0))
			if err != nil {
				t.Fatalf("quorumctl get / --prefix --keys-only against member %d: %v\n%s", i, err, out)
			}
		}
		mustGet(t, tlsClient(t, good, ep(1, 0)), "/seed", "v0")
	}
	if out, err := ctl(ep(2, 2)); err != nil || !strings.Contains(out, "/seed") || !strings.Contains(out, "/k1-0") {
		t.Fatalf("quorumctl get / --prefix --keys-only: %v\n%s", err, out)
	}
	log1 := filepath.Join(dir, "member1.log")

	// httpsGet makes one GET over TLS with cfg and returns the error.
	httpsGet := func(cfg *tls.Config, url string) error {
		c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	if err := httpsGet(good, "https://"+ep(1, 0)+"/health"); err != nil {
		t.Fatalf("/health over TLS: %v", err)
	}
	if err := httpsGet(good, "https://"+ep(1, 0)+"/metrics"); err != nil {
		t.Fatalf("/metrics over TLS: %v", err)
	}
	if err := httpsGet(good, "https://"+ep(1, 0)+"/version"); err != nil {
		t.Fatalf("/version over TLS: %v", err)
	}

	refusals := []struct {
		name    string
		try     func() error
		logMsg  string
		logWant string
	}{
		{"plaintext HTTP to the TLS client port", func() error {
			return httpsGet(nil, "http://"+ep(1, 0)+"/health")
		}, "rejected connection on client endpoint", "first record does not look like a TLS handshake"},
		{"plaintext gRPC to the TLS client port", func() error {
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep(1, 0)}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err = cli.Get(ctx, "seed")
			return err
		}, "rejected connection on client endpoint", "first record does not look like a TLS handshake"},
		{"client without a certificate", func() error {
			return httpsGet(p.clientTLS(t, ""), "https://"+ep(1, 0)+"/health")
		}, "rejected connection on client endpoint", "client didn't provide a certificate"},
		{"certificate from another CA", func() error {
			return httpsGet(p.clientTLS(t, "other-ca"), "https://"+ep(1, 0)+"/health")
		}, "rejected connection on client endpoint", "certificate signed by unknown authority"},
		{"expired certificate", func() error {
			return httpsGet(p.clientTLS(t, "expired"), "https://"+ep(1, 0)+"/health")
		}, "rejected connection on client endpoint", "certificate has expired"},
		{"plaintext peer stream to the TLS peer port", func() error {
			// What a member whose --initial-cluster says http:// for this
			// peer sends: the stream request in plaintext.
			c, err := net.DialTimeout("tcp", ep(1, 1), 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			fmt.Fprintf(c, "POST /raft/stream HTTP/1.1\r\nHost: %s\r\nUpgrade: quorum-raft/1\r\nContent-Length: 0\r\n\r\n", ep(1, 1))
			b, err := io.ReadAll(c)
			if strings.HasPrefix(string(b), "HTTP/1.1 101") {
				return nil
			}
			return fmt.Errorf("peer port answered %q (%v)", b, err)
		}, "rejected connection on peer endpoint", "first record does not look like a TLS handshake"},
		{"peer without a client certificate", func() error {
			return httpsGet(p.clientTLS(t, ""), "https://"+ep(1, 1)+"/raft/probing")
		}, "rejected connection on peer endpoint", "client didn't provide a certificate"},
		{"peer certificate from another CA", func() error {
			return httpsGet(p.clientTLS(t, "other-ca"), "https://"+ep(1, 1)+"/raft/probing")
		}, "rejected connection on peer endpoint", "certificate signed by unknown authority"},
		{"peer certificate without the peer's IP", func() error {
			// client.crt has no IP SAN... etcd then skips the SAN check;
			// a certificate naming another IP is refused.
			pair, err := p.ca.Issue(pki.Request{CommonName: "member", IPs: []net.IP{net.ParseIP("10.9.9.9")}})
			if err != nil {
				return nil
			}
			if err := pair.Write(p.path("elsewhere.crt"), p.path("elsewhere.key")); err != nil {
				return nil
			}
			return httpsGet(p.clientTLS(t, "elsewhere"), "https://"+ep(1, 1)+"/raft/probing")
		}, "rejected connection on peer endpoint", "10.9.9.9"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			if err := r.try(); err == nil {
				t.Fatal("accepted")
			}
			waitLog(t, log1, r.logMsg, r.logWant)
			serves(t)
		})
	}
}

// A member with --client-crl-file refuses a revoked client certificate,
// and with --peer-cert-allowed-cn a peer certificate of another CN, both
// logged as etcd logs them; the good certificates still work.
func TestTLSRevokedClientAndDisallowedPeerCNAreRefused(t *testing.T) {
	skipShort(t)
	dir, base := t.TempDir(), freeBase(t)
	p := newTestPKI(t, filepath.Join(dir, "pki"))
	args := seedsArgs(p, dir, 1, base)
	peer := fmt.Sprintf("https://127.0.0.1:%d", base+11)
	for i, a := range args {
		if a == "--initial-cluster" {
			args[i+1] = "n1=" + peer
		}
	}
	args = append(args, "--client-crl-file", p.path("crl.der"), "--peer-cert-allowed-cn", "member", "--listen-metrics-urls", fmt.Sprintf("https://127.0.0.1:%d", base+13))
	startMembers(t, quorumdBinary, dir, [][]string{args})
	log1 := filepath.Join(dir, "member1.log")
	ep := fmt.Sprintf("127.0.0.1:%d", base+10)
	good := tlsClient(t, p.clientTLS(t, "client"), ep)
	waitPut(t, good, "a", "1")

	revoked := tlsClient(t, p.clientTLS(t, "revoked"), ep)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := revoked.Get(ctx, "a")
	cancel()
	if err == nil {
		t.Fatal("revoked certificate accepted")
	}
	waitLog(t, log1, "rejected connection on client endpoint", fmt.Sprintf("certificate serial %x revoked", p.revoked.Cert.SerialNumber.Bytes()))
	mustGet(t, good, "a", "1")

	get := func(cert, url string) error {
		c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: p.clientTLS(t, cert)}}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get("intruder", peer+"/raft/probing"); err == nil {
		t.Fatal("peer certificate with CN intruder accepted")
	}
	waitLog(t, log1, "rejected connection on peer endpoint", "client certificate authentication failed")
	if err := get("member", peer+"/raft/probing"); err != nil {
		t.Fatalf("peer certificate with CN member refused: %v", err)
	}
	// https metrics with the client certificate, as etcd's.
	if err := get("client", fmt.Sprintf("https://127.0.0.1:%d/metrics", base+13)); err != nil {
		t.Fatalf("https metrics: %v", err)
	}
	mustGet(t, good, "a", "1")
}

// Certificates replaced on disk are served from the next handshake on,
// without a restart (etcd's TLSInfo reads them at every handshake), on the
// client and the peer port alike; the cluster keeps working throughout.
func TestTLSRotatedCertificatesAreUsedWithoutARestart(t *testing.T) {
	skipShort(t)
	dir, base := t.TempDir(), freeBase(t)
	p := newTestPKI(t, filepath.Join(dir, "pki"))
	var argv [][]string
	for i := 1; i <= 3; i++ {
		argv = append(argv, seedsArgs(p, dir, i, base))
	}
	startMembers(t, quorumdBinary, dir, argv)
	cfg := p.clientTLS(t, "client")
	ep := fmt.Sprintf("127.0.0.1:%d", base+10)
	waitPut(t, tlsClient(t, cfg, ep), "before", "1")
	served := func(addr string) string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	old := p.member.Cert.SerialNumber.String()
	for _, addr := range []string{ep, fmt.Sprintf("127.0.0.1:%d", base+11)} {
		if got := served(addr); got != old {
			t.Fatalf("%s serves serial %s, want %s", addr, got, old)
		}
	}
	next, err := p.ca.Issue(pki.Request{CommonName: "member", IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Write(p.path("member.crt"), p.path("member.key")); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{ep, fmt.Sprintf("127.0.0.1:%d", base+11)} {
		if got := served(addr); got != next.Cert.SerialNumber.String() {
			t.Fatalf("after rotation %s serves serial %s, want the new %s", addr, got, next.Cert.SerialNumber)
		}
	}
	// New clients and new peer connections use the new certificate.
	cli := tlsClient(t, cfg, fmt.Sprintf("127.0.0.1:%d", base+20))
	waitPut(t, cli, "after", "2")
	mustGet(t, tlsClient(t, cfg, fmt.Sprintf("127.0.0.1:%d", base+30)), "after", "2")
}

// http and https client URLs serve side by side — on separate ports and
// on the same port — with etcd's "insecurely" and "securely" lines.
func TestTLSMixedHTTPAndHTTPSClientListeners(t *testing.T) {
	skipShort(t)
	dir, base := t.TempDir(), freeBase(t)
	p := newTestPKI(t, filepath.Join(dir, "pki"))
	plain, secure, both := fmt.Sprintf("127.0.0.1:%d", base+10), fmt.Sprintf("127.0.0.1:%d", base+12), fmt.Sprintf("127.0.0.1:%d", base+20)
	peer := fmt.Sprintf("http://127.0.0.1:%d", base+11)
	startMembers(t, quorumdBinary, dir, [][]string{{"--name", "n1", "--data-dir", filepath.Join(dir, "n1"),
		"--cert-file", p.path("member.crt"), "--key-file", p.path("member.key"),
		"--listen-client-urls", "http://" + plain + ",https://" + secure + ",http://" + both + ",https://" + both,
		"--advertise-client-urls", "https://" + secure,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "n1=" + peer}})
	tlsCfg := p.clientTLS(t, "")
	waitPut(t, tlsClient(t, tlsCfg, secure), "k", "v")
	mustGet(t, tlsClient(t, nil, plain), "k", "v")
	mustGet(t, tlsClient(t, nil, both), "k", "v")
	mustGet(t, tlsClient(t, tlsCfg, both), "k", "v")
	if v := httpGet(t, "http://"+both+"/version"); !strings.Contains(v, "3.6.16") {
		t.Errorf("plaintext /version on the shared port: %s", v)
	}
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	resp, err := c.Get("https://" + both + "/health")
	if err != nil {
		t.Fatalf("https /health on the shared port: %v", err)
	}
	resp.Body.Close()
	log1 := filepath.Join(dir, "member1.log")
	waitLog(t, log1, "serving client traffic insecurely", plain)
	waitLog(t, log1, "serving client traffic insecurely", both)
	waitLog(t, log1, "serving client traffic securely", secure)
	waitLog(t, log1, "serving client traffic securely", both)
	// Plaintext to the https-only port is refused.
	if _, err := http.Get("http://" + secure + "/health"); err == nil {
		t.Error("plaintext accepted on the https-only port")
	}
}

// --auto-tls and --peer-auto-tls make etcd's self-signed certificates under
// the data dir and serve with them: a 3-member cluster over https peer
// URLs (peers dialed without verification, as etcd) and https clients.
func TestTLSAutoTLS(t *testing.T) {
	skipShort(t)
	dir, base := t.TempDir(), freeBase(t)
	u := func(j, off int) string { return fmt.Sprintf("https://127.0.0.1:%d", base+j*10+off) }
	var argv [][]string
	cluster := fmt.Sprintf("n1=%s,n2=%s,n3=%s", u(1, 1), u(2, 1), u(3, 1))
	for i := 1; i <= 3; i++ {
		argv = append(argv, []string{"--name", fmt.Sprintf("n%d", i), "--data-dir", filepath.Join(dir, fmt.Sprintf("n%d", i)),
			"--auto-tls", "--peer-auto-tls", "--self-signed-cert-validity", "2",
			"--listen-client-urls", u(i, 0), "--advertise-client-urls", u(i, 0),
			"--listen-peer-urls", u(i, 1), "--initial-advertise-peer-urls", u(i, 1), "--initial-cluster", cluster})
	}
	startMembers(t, quorumdBinary, dir, argv)
	insecure := &tls.Config{InsecureSkipVerify: true}
	waitPut(t, tlsClient(t, insecure, u(1, 0)[len("https://"):]), "auto", "tls")
	for i := 1; i <= 3; i++ {
		mustGet(t, tlsClient(t, insecure, u(i, 0)[len("https://"):]), "auto", "tls")
	}
	for _, f := range []string{"n1/fixtures/client/cert.pem", "n1/fixtures/client/key.pem", "n1/fixtures/peer/cert.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("auto TLS: %v", err)
		}
	}
	c, err := tls.Dial("tcp", u(1, 0)[len("https://"):], insecure)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cert := c.ConnectionState().PeerCertificates[0]
	if d := cert.NotAfter.Sub(cert.NotBefore); d < 2*365*24*time.Hour-48*time.Hour || d > 2*366*24*time.Hour {
		t.Errorf("self-signed certificate valid for %v, want --self-signed-cert-validity 2 years", d)
	}
}
