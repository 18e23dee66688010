package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Certificate flags that do not fit together stop start-up, before the
// data dir is written, with one line carrying etcd's error for the same
// flags, prefixed with the flag to mend; where tools/bin/etcd is built,
// etcd given the same flags fails with the same error.
func TestTLSStartFailuresNameTheFlagWithEtcdsError(t *testing.T) {
	dir := t.TempDir()
	p := newTestPKI(t, filepath.Join(dir, "pki"))
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	member := func(clientScheme, peerScheme string, extra ...string) (args []string, client, peer string) {
		client, peer = clientScheme+"://"+free(), peerScheme+"://"+free()
		return append([]string{"--name", "n1",
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "n1=" + peer}, extra...), client, peer
	}
	missing := filepath.Join(dir, "missing.crt")
	type tc struct {
		name, want, etcdWant string
		args                 []string
	}
	var tests []tc
	{
		args, client, _ := member("https", "http")
		msg := "TLS key/cert (--cert-file, --key-file) must be provided for client url " + client + " with HTTPS scheme"
		tests = append(tests, tc{"https client URL without a certificate", msg, msg, args})
	}
	{
		args, _, peer := member("http", "https")
		msg := "cannot listen on TLS for " + strings.TrimPrefix(peer, "https://") + ": KeyFile and CertFile are not presented"
		tests = append(tests, tc{"https peer URL without a certificate", msg + " (--peer-cert-file, --peer-key-file", msg, args})
	}
	{
		args, _, _ := member("https", "http", "--cert-file", missing, "--key-file", p.path("member.key"))
		msg := "open " + missing + ": no such file or directory"
		tests = append(tests, tc{"unreadable --cert-file", "--cert-file: " + msg, msg, args})
	}
	{
		args, _, _ := member("https", "http", "--cert-file", p.path("member.crt"))
		msg := "KeyFile and CertFile must both be present[key: , cert: " + p.path("member.crt") + "]"
		tests = append(tests, tc{"--cert-file without --key-file", "--key-file: " + msg, msg, args})
	}
	{
		args, _, _ := member("http", "https", "--peer-cert-file", p.path("member.crt"), "--peer-key-file", p.path("client.key"))
		msg := "tls: private key does not match public key"
		tests = append(tests, tc{"--peer-key-file not matching --peer-cert-file", "--peer-cert-file, --peer-key-file: " + msg, msg, args})
	}
	{
		args, _, _ := member("http", "https", "--peer-cert-file", p.path("member.crt"), "--peer-key-file", p.path("member.key"), "--peer-trusted-ca-file", missing)
		msg := "open " + missing + ": no such file or directory"
		tests = append(tests, tc{"unreadable --peer-trusted-ca-file", "--peer-trusted-ca-file: " + msg, msg, args})
	}
	{
		args, _, _ := member("https", "http", "--cert-file", p.path("member.crt"), "--key-file", p.path("member.key"), "--client-crl-file", missing)
		// etcd starts and rejects every connection instead.
		tests = append(tests, tc{"unreadable --client-crl-file", "--client-crl-file: open " + missing + ": no such file or directory", "", args})
	}
	etcd, _ := filepath.Abs("../../tools/bin/etcd")
	if _, err := os.Stat(etcd); err != nil {
		etcd = ""
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			code := run(append([]string{"--data-dir", data}, tt.args...), nil, &bytes.Buffer{}, &stderr)
			lines := withMsg(logLines(t, stderr.String()), "failed to start")
			if code != 1 || len(lines) != 1 || lines[0]["level"] != "warn" {
				t.Fatalf("exit %d, %d failed-to-start lines; stderr:\n%s", code, len(lines), stderr.String())
			}
			if e, _ := lines[0]["error"].(string); !strings.Contains(e, tt.want) {
				t.Fatalf("error %q does not say %q", e, tt.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("data dir written before the certificates were checked: %v", err)
			}
			if etcd == "" || tt.etcdWant == "" {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, _ := exec.CommandContext(ctx, etcd, append([]string{"--data-dir", filepath.Join(t.TempDir(), "etcd")}, tt.args...)...).CombinedOutput()
			if !strings.Contains(string(out), fmt.Sprintf(`"error":"%s`, tt.etcdWant)) {
				t.Errorf("etcd does not fail with %q:\n%s", tt.etcdWant, out)
			}
		})
	}
}
