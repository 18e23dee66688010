// Package pki makes the certificates a TLS cluster needs: a certificate
// authority, member and client certificates signed by it, and certificate
// revocation lists, written as the PEM (certificates, keys) and DER (CRLs)
// files etcd's --cert-file, --key-file, --trusted-ca-file and
// --client-crl-file read. Keys are ECDSA P-256 and are written with mode
// 0600. It is used by tests and by the harness (one CA per run); nothing
// is fetched and no external tool is needed.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// CA is a self-signed certificate authority. Its key signs the
// certificates it issues and its CRLs.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     *ecdsa.PrivateKey
}

// Pair is an issued certificate and its private key, both PEM-encoded.
type Pair struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Request describes a certificate to issue. The zero NotBefore means an
// hour ago (tolerating clock skew); the zero NotAfter means NotBefore plus
// a year. A certificate is good for both server and client
// authentication, as etcd's peer certificates must be (a member is both).
type Request struct {
	CommonName string
	IPs        []net.IP
	DNSNames   []string
	NotBefore  time.Time
	NotAfter   time.Time
}

// NewCA makes a self-signed CA named cn, valid from an hour ago for
// validity.
func NewCA(cn string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"quorum"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), Key: key}, nil
}

// Issue signs a new key pair for r.
func (ca *CA) Issue(r Request) (*Pair, error) {
	if r.CommonName == "" && len(r.IPs) == 0 && len(r.DNSNames) == 0 {
		return nil, errors.New("issue: a certificate needs a common name, an IP or a DNS name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %q: %w", r.CommonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	nb, na := r.NotBefore, r.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = nb.Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: r.CommonName, Organization: []string{"quorum"}},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  r.IPs,
		DNSNames:     r.DNSNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %q: %w", r.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Pair{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("EC PRIVATE KEY", kder)}, nil
}

// CRL returns a DER-encoded revocation list, signed by ca, that revokes
// the given certificates (none: an empty list). It is valid for a day.
func (ca *CA) CRL(revoked ...*x509.Certificate) ([]byte, error) {
	now := time.Now()
	entries := make([]x509.RevocationListEntry, len(revoked))
	for i, c := range revoked {
		entries[i] = x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(-time.Minute)}
	}
	num, err := newSerial()
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    num,
		ThisUpdate:                now.Add(-time.Hour),
		NextUpdate:                now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign CRL: %w", err)
	}
	return der, nil
}

// WriteCert writes the CA's certificate (what --trusted-ca-file reads) to
// path, mode 0644.
func (ca *CA) WriteCert(path string) error {
	return writeFile(path, ca.CertPEM, 0o644)
}

// WriteCRL writes ca.CRL(revoked...) to path, mode 0644.
func (ca *CA) WriteCRL(path string, revoked ...*x509.Certificate) error {
	der, err := ca.CRL(revoked...)
	if err != nil {
		return err
	}
	return writeFile(path, der, 0o644)
}

// Write writes the certificate to certPath (mode 0644) and the key to
// keyPath (mode 0600). Each file is replaced whole (written beside it,
// then renamed), so that a process reading it concurrently (etcd's
// TLSInfo reads both at every handshake) never sees half a file.
func (p *Pair) Write(certPath, keyPath string) error {
	if err := writeFile(keyPath, p.KeyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, p.CertPEM, 0o644)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile keeps an existing file's mode
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
