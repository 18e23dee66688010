package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quorum certs writes a CA, one certificate per member and a client
// certificate, keys with mode 0600, every certificate valid for --hosts.
func TestCertsWritesCertificatesAndKeysWithMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	var out, errb bytes.Buffer
	cmd := newRoot(&out, &errb)
	cmd.SetArgs([]string{"certs", "--dir", dir, "--members", "2", "--hosts", "127.0.0.1,10.0.0.7,n1.example"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("quorum certs: %v\n%s", err, errb.String())
	}
	for _, f := range []string{"ca.crt", "n1.crt", "n1.key", "n2.crt", "n2.key", "client.crt", "client.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if strings.HasSuffix(f, ".key") {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "n3.crt")); err == nil {
		t.Error("n3.crt written for --members 2")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "n2.crt"))
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "n2" || len(c.IPAddresses) != 2 || !c.IPAddresses[1].Equal(net.ParseIP("10.0.0.7")) ||
		len(c.DNSNames) != 1 || c.DNSNames[0] != "n1.example" {
		t.Errorf("n2.crt: CN %q, IPs %v, DNS %v", c.Subject.CommonName, c.IPAddresses, c.DNSNames)
	}
}

// The README's "Running with TLS" block, run as written in a scratch
// directory (its go build/go run lines replaced by binaries built once):
// the cluster starts with the seeds' flags and quorumctl writes and reads
// over TLS with the client certificate.
func TestReadmeTLSCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member quorumd cluster (skipped with -short)")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Running with TLS")
	if !ok {
		t.Fatal("README has no \"Running with TLS\" section")
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, _ := strings.Cut(rest, "```")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, b := range [][2]string{{"quorumd", "./cmd/quorumd"}, {"quorumctl", "./cmd/quorumctl"}, {"quorum", "./cmd/quorum"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "bin", b[0]), b[1])
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b[0], err, out)
		}
	}
	var script []string
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(l, "go build ") {
			continue
		}
		script = append(script, strings.ReplaceAll(l, "go run ./cmd/quorum ", "bin/quorum "))
	}
	// Stop the members however the block ends.
	body := "set -e\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + strings.Join(script, "\n")
	cmd := exec.CommandContext(ctx, "bash", "-c", body)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "n1.log"))
		t.Fatalf("README block: %v\n%s\nn1.log:\n%s", err, out, logs)
	}
	t.Logf("README block output:\n%s", out)
	if !strings.Contains(string(out), "/greeting") {
		t.Errorf("get / --prefix --keys-only did not list /greeting:\n%s", out)
	}
}
