package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// splitProbe is what a client finds on a member started with
// --listen-client-urls (grpcURL) and --listen-client-http-urls (httpURL):
// whether gRPC works on each, and what HTTP answers there.
func splitProbe(t *testing.T, grpcURL, httpURL string, tlsCfg *tls.Config) []string {
	t.Helper()
	var out []string
	grpcOn := func(u string) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{u}, DialTimeout: 2 * time.Second, TLS: tlsCfg, Logger: zap.NewNop()})
		if err == nil {
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = cli.Put(ctx, "split", "v")
		}
		res := "ok"
		if err != nil {
			res = "fails"
		}
		out = append(out, fmt.Sprintf("gRPC put on the %s URL: %s", map[bool]string{true: "gRPC", false: "HTTP"}[u == grpcURL], res))
	}
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	httpOn := func(u, method, path, body string) {
		req, _ := http.NewRequest(method, u+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		which := map[bool]string{true: "gRPC", false: "HTTP"}[u == grpcURL]
		if err != nil {
			out = append(out, fmt.Sprintf("%s %s on the %s URL: no HTTP answer", method, path, which))
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got := headerIDs.ReplaceAllString(compactJSON(b), `"$1":"-"`)
		out = append(out, fmt.Sprintf("%s %s on the %s URL: %d %s", method, path, which, resp.StatusCode, got))
	}
	// The member may still be electing itself: wait for gRPC on its URL.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out = out[:0]
		grpcOn(grpcURL)
		if out[0] == "gRPC put on the gRPC URL: ok" || time.Now().After(deadline) {
			break
		}
	}
	grpcOn(httpURL)
	httpOn(httpURL, "GET", "/health", "")
	httpOn(httpURL, "GET", "/version", "")
	httpOn(httpURL, "POST", "/v3/kv/range", `{"key": "c3BsaXQ="}`)
	httpOn(grpcURL, "GET", "/health", "")
	return out
}

// compactJSON is b without insignificant space if it is JSON (protojson
// varies its spacing from one binary to the next on purpose), else b.
func compactJSON(b []byte) string {
	// protobuf-go's error texts vary too: "proto:" is followed by a space
	// or a no-break space, per binary.
	b = bytes.ReplaceAll(b, []byte("\u00a0"), []byte(" "))
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return strings.TrimSpace(string(b))
	}
	return buf.String()
}

// headerIDs are the response header's fields that differ between two
// clusters.
var headerIDs = regexp.MustCompile(`"(cluster_id|member_id|raft_term)":"[0-9]+"`)

// --listen-client-http-urls splits the client traffic as etcd does: HTTP
// alone there, gRPC alone on --listen-client-urls, each listener logged
// with its traffic; an address in both is refused with etcd's error. Over
// http and over https, compared with a real etcd.
func TestListenClientHTTPURLsSplitTrafficAsEtcd(t *testing.T) {
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	etcd := needEtcd(t)
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			base := freeBase(t)
			dir := t.TempDir()
			var tlsCfg *tls.Config
			var tlsFlags []string
			if scheme == "https" {
				p := newTestPKI(t, filepath.Join(dir, "pki"))
				tlsCfg = p.clientTLS(t, "client") // --trusted-ca-file: client certificates are required
				tlsFlags = []string{"--cert-file=" + p.path("member.crt"), "--key-file=" + p.path("member.key"), "--trusted-ca-file=" + p.path("ca.crt")}
			}
			grpcURL := fmt.Sprintf("%s://127.0.0.1:%d", scheme, base+10)
			httpURL := fmt.Sprintf("%s://127.0.0.1:%d", scheme, base+12)
			peer := fmt.Sprintf("http://127.0.0.1:%d", base+11)
			args := func(name, clientHTTP string) []string {
				return append([]string{"--name=" + name, "--data-dir=" + filepath.Join(dir, name),
					"--listen-client-urls=" + grpcURL, "--advertise-client-urls=" + grpcURL,
					"--listen-client-http-urls=" + clientHTTP,
					"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
					"--initial-cluster=" + name + "=" + peer}, tlsFlags...)
			}
			got := map[string][]string{}
			logs := map[string]string{}
			for _, srv := range []struct{ name, bin string }{{"etcd", etcd}, {"quorumd", quorumdBinary}} {
				t.Run(srv.name, func(t *testing.T) {
					sub := t.TempDir()
					startMembers(t, srv.bin, sub, [][]string{args(srv.name, httpURL)})
					got[srv.name] = splitProbe(t, grpcURL, httpURL, tlsCfg)
					b, _ := os.ReadFile(filepath.Join(sub, "member1.log"))
					logs[srv.name] = string(b)
				})
			}
			if strings.Join(got["quorumd"], "\n") != strings.Join(got["etcd"], "\n") {
				t.Errorf("split client traffic:\nquorumd:\n%s\netcd:\n%s", strings.Join(got["quorumd"], "\n"), strings.Join(got["etcd"], "\n"))
			}
			t.Logf("probe:\n%s", strings.Join(got["etcd"], "\n"))
			msg := "serving client traffic insecurely; this is strongly discouraged!"
			if scheme == "https" {
				msg = "serving client traffic securely"
			}
			for name, log := range logs {
				var traffic []string
				for _, l := range withMsg(logLines(t, log), msg) {
					traffic = append(traffic, fmt.Sprint(l["traffic"]))
				}
				if strings.Join(slices.Sorted(slices.Values(traffic)), ",") != "grpc,http" {
					t.Errorf("%s logged traffic %v in %q lines, want grpc and http", name, traffic, msg)
				}
			}
			// One address in both lists.
			for _, srv := range []struct{ name, bin string }{{"etcd", etcd}, {"quorumd", quorumdBinary}} {
				code, out := runToExit(t, srv.bin, args(srv.name+"-both", grpcURL))
				if code != 1 || !strings.Contains(out, "cannot bind both --listen-client-urls and --listen-client-http-urls on the same url "+grpcURL) {
					t.Errorf("%s with one URL in both: exit %d:\n%s", srv.name, code, tail(out, 2000))
				}
			}
		})
	}
}
