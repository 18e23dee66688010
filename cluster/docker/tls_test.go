package docker

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/cluster"
)

// A TLS cluster in containers serves https with the run's certificates:
// members start with etcd's TLS flags pointing at /certs, where each finds
// the CA and its own certificate and key (and nothing else); a client with
// the run's client certificate puts and gets, one without is refused; a
// killed member restarts with its certificates; ClientTLS survives the
// wrapper that hides partitions. Against quorumd and, when tools/bin/etcd
// is built, real etcd.
func TestTLSClusterServesClientCertificateOnlyAndRestarts(t *testing.T) {
	etcd, _ := filepath.Abs("../../tools/bin/etcd")
	for _, srv := range []string{"quorumd", "etcd"} {
		t.Run(srv, func(t *testing.T) {
			eng := testEngine(t)
			cfg := testConfig(t, eng)
			cfg.Server.TLS = true
			if srv == "etcd" {
				if _, err := os.Stat(etcd); err != nil {
					t.Skipf("no etcd at %s (run: bash tools/build.sh)", etcd)
				}
				img, err := eng.EnsureImage(ctxFor(t, 2*time.Minute), etcd)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Server.Image = img
			}
			ctx := ctxFor(t, 3*time.Minute)
			c, err := New(ctx, cfg)
			if err != nil {
				t.Fatalf("new TLS cluster: %v", err)
			}
			t.Cleanup(func() {
				c.Close(context.Background())
				assertNothingLeft(t, eng, c.RunID())
			})
			checkTLSCluster(t, ctx, c)
		})
	}
}

func checkTLSCluster(t *testing.T, ctx context.Context, c *Cluster) {
	if cluster.ClientTLS(c) == nil || cluster.ClientTLS(withoutPartitions{Cluster: c, tls: c.ClientTLS()}) == nil {
		t.Fatal("no client TLS configuration (directly or behind withoutPartitions)")
	}
	for _, n := range c.nodes {
		if !strings.HasPrefix(n.ClientURL(), "https://") || !strings.HasPrefix(n.PeerURL(), "https://") {
			t.Errorf("%s: URLs %s %s are not https", n.name, n.ClientURL(), n.PeerURL())
		}
	}
	n1 := c.DockerNode("n1")
	args := strings.Join(n1.args, " ")
	for _, f := range []string{"--cert-file /certs/n1.crt", "--key-file /certs/n1.key", "--trusted-ca-file /certs/ca.crt",
		"--client-cert-auth", "--peer-client-cert-auth", "--listen-peer-urls https://", "--initial-cluster n1=https://"} {
		if !strings.Contains(args, f) {
			t.Errorf("n1's command line lacks %q: %s", f, args)
		}
	}
	if got := certsIn(t, ctx, c, n1); !slices.Equal(got, []string{"ca.crt", "n1.crt", "n1.key"}) {
		t.Errorf("n1's /certs holds %v; want the CA and its own certificate and key only", got)
	}

	kv := func(val string) error {
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second,
			TLS: cluster.ClientTLS(c).Clone(), Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer cli.Close()
		if _, err := cli.Put(ctx, "tls", val); err != nil {
			return err
		}
		r, err := cli.Get(ctx, "tls")
		if err != nil {
			return err
		}
		if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != val {
			return fmt.Errorf("get tls: %v, want %q", r.Kvs, val)
		}
		return nil
	}
	if err := kv("one"); err != nil {
		t.Fatalf("put/get with the client certificate: %v", err)
	}
	noCert := c.ClientTLS().Clone()
	noCert.Certificates = nil
	conn, err := tls.Dial("tcp", strings.TrimPrefix(c.Endpoints()[0], "https://"), noCert)
	if err == nil {
		// TLS 1.3: the server's refusal arrives with the first read.
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Errorf("a client without a certificate was served")
	}

	// The copied certificates live in the container: a kill and restart
	// keeps them, and the member rejoins over TLS peer links.
	if err := n1.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n1.Start(ctx); err != nil {
		t.Fatalf("restart over TLS: %v", err)
	}
	waitFor(t, ctx, func() bool {
		return cluster.CheckHealthy(cluster.Statuses(ctx, c, cluster.WithRequestTimeout(time.Second))) == nil
	}, "healthy TLS cluster after n1's restart")
	if err := kv("two"); err != nil {
		t.Fatalf("put/get after restart: %v", err)
	}
}

// certsIn lists the regular files under /certs in n's container.
func certsIn(t *testing.T, ctx context.Context, c *Cluster, n *Node) []string {
	t.Helper()
	res, err := c.eng.cli.CopyFromContainer(ctx, n.ctr.ID, client.CopyFromContainerOptions{SourcePath: certDir})
	if err != nil {
		t.Fatalf("read %s of %s: %v", certDir, n.container, err)
	}
	defer res.Content.Close()
	var names []string
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			names = append(names, filepath.Base(h.Name))
		}
	}
	slices.Sort(names)
	return names
}
