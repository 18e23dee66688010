package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/quorum-kv/quorum/internal/pki"
)

// TLSFiles are a TLS cluster's certificates on the host, in one directory
// (MakeTLS writes them):
//
//	ca.crt                    the CA (etcd's --trusted-ca-file, --peer-trusted-ca-file)
//	<member>.crt, <member>.key each member's certificate (CN the member's name), used
//	                          for both its client and its peer listener and
//	                          as its peer client certificate
//	client.crt, client.key    the client certificate (CN "client") every
//	                          harness client presents
//
// Keys have mode 0600. Every certificate is good for server and client
// authentication and carries the IPs and DNS names MakeTLS was given.
type TLSFiles struct {
	Dir string
}

// CAFile is the CA certificate's path.
func (t TLSFiles) CAFile() string { return filepath.Join(t.Dir, "ca.crt") }

// MemberCert and MemberKey are the named member's certificate and key paths.
func (t TLSFiles) MemberCert(name string) string { return filepath.Join(t.Dir, name+".crt") }
func (t TLSFiles) MemberKey(name string) string  { return filepath.Join(t.Dir, name+".key") }

// ClientCert and ClientKey are the client certificate's and key's paths.
func (t TLSFiles) ClientCert() string { return filepath.Join(t.Dir, "client.crt") }
func (t TLSFiles) ClientKey() string  { return filepath.Join(t.Dir, "client.key") }

// MakeTLS makes a fresh CA in dir (created with mode 0700 if missing),
// a certificate for each member name and the client certificate, all
// carrying hosts as SANs (each an IP address or a DNS name). Nothing is
// fetched: keys are generated here (internal/pki).
func MakeTLS(dir string, members []string, hosts []string) (TLSFiles, error) {
	t := TLSFiles{Dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return t, fmt.Errorf("certificates: %w", err)
	}
	var ips []net.IP
	var dns []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" {
			dns = append(dns, h)
		}
	}
	ca, err := pki.NewCA("quorum CA", 10*365*24*time.Hour)
	if err != nil {
		return t, fmt.Errorf("certificates: %w", err)
	}
	if err := ca.WriteCert(t.CAFile()); err != nil {
		return t, fmt.Errorf("certificates: %w", err)
	}
	issue := func(cn, cert, key string, dnsNames []string) error {
		p, err := ca.Issue(pki.Request{CommonName: cn, IPs: ips, DNSNames: dnsNames})
		if err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
		if err := p.Write(cert, key); err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
		return nil
	}
	for _, m := range members {
		if err := issue(m, t.MemberCert(m), t.MemberKey(m), dns); err != nil {
			return t, err
		}
	}
	if err := issue("client", t.ClientCert(), t.ClientKey(), dns); err != nil {
		return t, err
	}
	return t, nil
}

// Roots returns a pool holding the CA certificate.
func (t TLSFiles) Roots() (*x509.CertPool, error) {
	b, err := os.ReadFile(t.CAFile())
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s holds no certificate", t.CAFile())
	}
	return pool, nil
}

// ClientConfig is the TLS configuration of a client of the cluster: it
// trusts the CA and presents the client certificate. The returned config is
// the caller's.
func (t TLSFiles) ClientConfig() (*tls.Config, error) {
	roots, err := t.Roots()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(t.ClientCert(), t.ClientKey())
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// TLSFlags returns etcd's flags that make a member serve its client and
// peer listeners with its certificate and require a certificate signed by
// the CA from every client and peer:
//
//	--cert-file --key-file --trusted-ca-file --client-cert-auth
//	--peer-cert-file --peer-key-file --peer-trusted-ca-file --peer-client-cert-auth
//
// certDir is where the member sees the files (t.Dir on the host; a mount
// point in a container).
func (t TLSFiles) TLSFlags(member, certDir string) []string {
	in := TLSFiles{Dir: certDir}
	return []string{
		"--cert-file", in.MemberCert(member), "--key-file", in.MemberKey(member),
		"--trusted-ca-file", in.CAFile(), "--client-cert-auth",
		"--peer-cert-file", in.MemberCert(member), "--peer-key-file", in.MemberKey(member),
		"--peer-trusted-ca-file", in.CAFile(), "--peer-client-cert-auth",
	}
}

// TLSCluster is implemented by clusters whose members serve clients over
// TLS. ClientTLS returns the configuration every client of the cluster
// uses (workload clients, health and leader checks, probes); callers must
// not modify it (Clone it first).
type TLSCluster interface {
	ClientTLS() *tls.Config
}

// ClientTLS returns c's client TLS configuration, nil for a plaintext
// cluster.
func ClientTLS(c Cluster) *tls.Config {
	if t, ok := c.(TLSCluster); ok {
		return t.ClientTLS()
	}
	return nil
}

// Scheme returns the URL scheme of a cluster's listeners: "https" with TLS.
func Scheme(tlsOn bool) string {
	if tlsOn {
		return "https"
	}
	return "http"
}
