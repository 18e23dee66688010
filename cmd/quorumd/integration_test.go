package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorum-kv/quorum/internal/testbin"
)

var quorumdBinary string

func TestMain(m *testing.M) { testbin.Main(m, &quorumdBinary) }

// freeBase returns a port base b such that b+10..b+32 (three members'
// client, peer and metrics ports, as kubeadmArgs lays them out) are free on
// 127.0.0.1.
func freeBase(t *testing.T) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b := l.Addr().(*net.TCPAddr).Port/100*100 - 100
		l.Close()
		if b < 10000 || b+40 > 65535 {
			continue
		}
		ok := true
		for i := 1; i <= 3 && ok; i++ {
			for off := 0; off < 3 && ok; off++ {
				c, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", b+i*10+off))
				if err != nil {
					ok = false
					break
				}
				c.Close()
			}
		}
		if ok {
			return b
		}
	}
	t.Fatal("no free port range on 127.0.0.1")
	return 0
}

// startMembers starts one process of bin (quorumd, or tools/bin/etcd,
// which takes the same flags) per argument list and stops them at the end
// of the test, printing their logs if it failed.
func startMembers(t *testing.T, bin, dir string, argv [][]string) {
	t.Helper()
	for i, args := range argv {
		logPath := filepath.Join(dir, fmt.Sprintf("member%d.log", i+1))
		f, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			f.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logPath)
				t.Logf("%s:\n%s", logPath, b)
			}
		})
	}
}

// putGet writes through the first endpoint and reads the key back through
// every endpoint with etcd's client, over TLS with tlsCfg if not nil.
func putGet(t *testing.T, endpoints []string, tlsCfg *tls.Config) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints[:1], DialTimeout: 5 * time.Second, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for try := 0; ; try++ { // the cluster is electing its first leader
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = cli.Put(pctx, "drop-in", "etcd 3.6")
		pcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || try > 100 {
			t.Fatalf("put: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, ep := range endpoints {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, TLS: tlsCfg})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(ctx, "drop-in")
		c.Close()
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "etcd 3.6" {
			t.Fatalf("get from %s: %v %v", ep, resp, err)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// startThree starts 3 real quorumd members on 127.0.0.1 ports base+i*10
// (+1 peer, +2 metrics) with the command lines args gives member i, checks
// that they serve a put and a get, and returns their client endpoints and
// base.
func startThree(t *testing.T, args func(dir string, i, base int) []string) ([]string, int) {
	t.Helper()
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	return startCluster(t, quorumdBinary, 3, args)
}

// startCluster starts n (at most 3) members of bin as startThree does.
func startCluster(t *testing.T, bin string, n int, args func(dir string, i, base int) []string) ([]string, int) {
	t.Helper()
	dir, base := t.TempDir(), freeBase(t)
	var argv [][]string
	var eps []string
	for i := 1; i <= n; i++ {
		argv = append(argv, args(dir, i, base))
		eps = append(eps, fmt.Sprintf("127.0.0.1:%d", base+i*10))
	}
	startMembers(t, bin, dir, argv)
	var tlsCfg *tls.Config
	for _, a := range argv[0] {
		if strings.HasPrefix(a, "--cert-file=") { // kubeadmArgs' certificates
			tlsCfg = loadTestPKI(filepath.Join(dir, "pki")).clientTLS(t, "client")
		}
	}
	putGet(t, eps, tlsCfg)
	return eps, base
}

// kubeadm's etcd static-pod flags, certificates included, start a
// 3-member cluster that serves etcd's client over TLS with a client
// certificate (as kube-apiserver's --etcd-certfile).
func TestKubeadmManifestFlagsStartAThreeMemberCluster(t *testing.T) {
	var dir string
	eps, base := startThree(t, func(d string, i, base int) []string { dir = d; return kubeadmArgs(d, i, base) })
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: loadTestPKI(filepath.Join(dir, "pki")).clientTLS(t, "client")}}
	resp, err := c.Get("https://" + eps[0] + "/version")
	if err != nil {
		t.Fatalf("GET /version: %v", err)
	}
	v, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(v) != `{"etcdserver":"3.6.16","etcdcluster":"3.6.0","storage":"3.6.0"}` {
		t.Errorf("/version = %s", v)
	}
	if m := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", base+12)); !strings.Contains(m, "etcd_server_has_leader") {
		t.Errorf("--listen-metrics-urls serves no etcd_server_has_leader")
	}
}

// A config file per member equivalent to the README's hand-started cluster
// starts the same cluster.
func TestConfigFilesOfTheReadmeClusterStartIt(t *testing.T) {
	startThree(t, func(dir string, i, base int) []string {
		return []string{"--config-file", writeFile(t, dir, fmt.Sprintf("n%d.yml", i), readmeClusterYAML(dir, i, base))}
	})
}
