package server

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/tlsutil"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"google.golang.org/grpc"
)

// TLS is etcd's: the certificates, trusted CAs, CRLs and allowed names of
// the client and peer ports are etcd's transport.TLSInfo (filled from the
// same flags by embed.Config), and every tls.Config comes from its
// ServerConfig or ClientConfig. Those read the certificate and key files
// at every handshake, so certificates rotated on disk are used by the next
// connection without a restart, and the CRL file is read at every accepted
// connection (transport.NewTLSListener).

// tlsFlags names the flags that set one TLSInfo, so that a start-up error
// names the flag to mend.
type tlsFlags struct {
	cert, key, clientCert, clientKey, ca, crl string
}

var (
	clientTLSFlags = tlsFlags{"--cert-file", "--key-file", "--client-cert-file", "--client-key-file", "--trusted-ca-file", "--client-crl-file"}
	peerTLSFlags   = tlsFlags{"--peer-cert-file", "--peer-key-file", "--peer-client-cert-file", "--peer-client-key-file", "--peer-trusted-ca-file", "--peer-crl-file"}
)

// checkTLS builds info's server configuration as etcd's listeners do at
// start-up and, when that fails, returns etcd's error prefixed with the
// flag whose file is missing, unreadable or does not match. It also reads
// the CRL file, which etcd reads only at the first connection.
func checkTLS(info *transport.TLSInfo, f tlsFlags) error {
	if _, err := info.ServerConfig(); err != nil {
		return fmt.Errorf("%s: %w", blame(info, f), err)
	}
	if info.CRLFile != "" {
		if _, err := os.ReadFile(info.CRLFile); err != nil {
			return fmt.Errorf("%s: %w", f.crl, err)
		}
	}
	return nil
}

// blame returns the flag (or pair of flags) that a failed ServerConfig is
// about, checking in the order etcd's baseConfig does.
func blame(info *transport.TLSInfo, f tlsFlags) string {
	pair := func(cert, key, certFlag, keyFlag string) string {
		switch {
		case cert == "":
			return certFlag
		case key == "":
			return keyFlag
		}
		if _, err := os.ReadFile(cert); err != nil {
			return certFlag
		}
		if _, err := os.ReadFile(key); err != nil {
			return keyFlag
		}
		if _, err := tlsutil.NewCert(cert, key, nil); err != nil {
			return certFlag + ", " + keyFlag
		}
		return ""
	}
	if b := pair(info.CertFile, info.KeyFile, f.cert, f.key); b != "" {
		return b
	}
	if info.ClientCertFile != "" || info.ClientKeyFile != "" {
		if b := pair(info.ClientCertFile, info.ClientKeyFile, f.clientCert, f.clientKey); b != "" {
			return b
		}
	}
	if info.TrustedCAFile != "" {
		return f.ca
	}
	return f.cert + ", " + f.key
}

// peerClientTLS is the tls.Config this member dials its peers' https URLs
// with: etcd's PeerTLSInfo.ClientConfig() (the peer certificate, or
// --peer-client-cert-file, presented as the client certificate, read at
// every handshake; --peer-trusted-ca-file as the roots; peer auto TLS
// skips verification, as etcd's self-signed certificates must).
func peerClientTLS(info *transport.TLSInfo) (*tls.Config, error) {
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("peer client TLS: %w", err)
	}
	return cfg, nil
}

// peerHTTPClientTransport is an http.Transport for requests to peer URLs
// (snapshots, probes, lease forwarding): HTTP/1.1, over TLS with tlsCfg
// for https URLs.
func peerHTTPClientTransport(tlsCfg *tls.Config) *http.Transport {
	return &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: false}
}

// grpcHandlerFunc sends gRPC requests to gs and the rest to other, as
// etcd's embed/serve.go does on a TLS client port, where net/http owns the
// HTTP/2 connection.
func grpcHandlerFunc(gs *grpc.Server, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.Contains(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
		} else {
			other.ServeHTTP(w, r)
		}
	})
}

// cipherSuiteNames names info's cipher suites as etcd's --cipher-suites
// does, for the "starting with ... TLS" lines.
func cipherSuiteNames(info *transport.TLSInfo) []string {
	var out []string
	for _, id := range info.CipherSuites {
		out = append(out, tls.CipherSuiteName(id))
	}
	return out
}
