package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
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
	blocks := readmeBlocks(t, "## Running with TLS")
	if len(blocks) == 0 {
		t.Fatal("README's \"Running with TLS\" section has no sh block")
	}
	block := blocks[0]
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	buildCommands(ctx, t, filepath.Join(dir, "bin"), "quorumd", "quorumctl", "quorum")
	var script []string
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(l, "go build ") {
			continue
		}
		script = append(script, strings.ReplaceAll(l, "go run ./cmd/quorum ", "bin/quorum "))
	}
	// Stop the members however the block ends.
	body := "set -e\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + strings.Join(script, "\n") + "\n"
	out, err := runScript(ctx, t, dir, body)
	if err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "n1.log"))
		t.Fatalf("README block: %v\n%s\nn1.log:\n%s", err, out, logs)
	}
	t.Logf("README block output:\n%s", out)
	if !strings.Contains(string(out), "/greeting") {
		t.Errorf("get / --prefix --keys-only did not list /greeting:\n%s", out)
	}
}
