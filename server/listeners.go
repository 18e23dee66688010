package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/soheilhy/cmux"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
)

// listeners are a member's bound sockets and the HTTP servers on them: the
// peer URLs serve the transport's handler, the client URLs serve the front
// (gRPC and HTTP on the same port, told apart by cmux), the metrics URLs
// serve /metrics and the health endpoints. They are bound in
// New, before anything is written to the data dir, and served in Start.
//
// TLS is etcd's (embed/etcd.go, embed/serve.go): an https peer URL is a
// transport.NewListenerWithOpts TLS listener with PeerTLS (client
// certificates checked against the trusted CA, the CRL, the allowed CNs
// and hostnames, and the remote IP against the certificate's SANs); an
// https client URL is a plain socket whose cmux hands TLS connections to
// transport.NewTLSListener with ClientTLS, served by net/http (HTTP/2 for
// gRPC, which net/http passes to the gRPC server). http and https URLs
// on the same address share one socket, as in etcd. A rejected handshake
// is logged by the TLSInfo's HandshakeFailure (embed.Config sets etcd's
// "rejected connection on client/peer endpoint").
type listeners struct {
	lg        *slog.Logger
	clientTLS *transport.TLSInfo
	client    []*clientListener
	peer      []net.Listener
	metrics   []net.Listener // --listen-metrics-urls
	metricsU  []url.URL
	httpSrvs  []*http.Server
	maxStrms  uint32
}

// clientListener is one client address: its socket, whether http
// (insecure) or https (secure) URLs, or both, name it, and what it
// serves: gRPC and HTTP, or, when there are --listen-client-http-urls,
// HTTP alone on those (httpOnly) and gRPC alone on the others (grpcOnly),
// as etcd's serveCtx.serve.
type clientListener struct {
	net.Listener
	secure, insecure   bool
	httpOnly, grpcOnly bool
}

// traffic is etcd's name for what cl serves, in its "serving client
// traffic" lines.
func (cl *clientListener) traffic() string {
	switch {
	case cl.grpcOnly:
		return "grpc"
	case cl.httpOnly:
		return "http"
	}
	return "grpc+http"
}

// listen binds the client and peer URLs, so that a port in use or a
// certificate that cannot be loaded is reported before anything is
// written to the data dir. On error nothing stays bound.
func listen(cfg *Config, lg *slog.Logger) (*listeners, error) {
	l := &listeners{lg: lg, clientTLS: &cfg.ClientTLS, maxStrms: cfg.maxConcurrentStreams()}
	var err error
	if !cfg.SocketOpts.Empty() {
		lg.Info("configuring socket options", "reuse-address", cfg.SocketOpts.ReuseAddress, "reuse-port", cfg.SocketOpts.ReusePort)
	}
	lg.Info("configuring peer listeners", "listen-peer-urls", urlStrings(cfg.ListenPeerURLs))
	if err := checkSchemes(cfg); err != nil {
		return nil, err
	}
	if !cfg.PeerTLS.Empty() {
		lg.Info("starting with peer TLS", "tls-info", fmt.Sprintf("%+v", cfg.PeerTLS), "cipher-suites", cipherSuiteNames(&cfg.PeerTLS))
	}
	if l.peer, err = bindPeers(cfg, lg); err != nil {
		return nil, err
	}
	lg.Info("configuring client listeners", "listen-client-urls", urlStrings(cfg.ListenClientURLs))
	if l.client, err = bindClients(cfg, lg); err != nil {
		l.close()
		return nil, err
	}
	if l.metrics, err = bindMetrics(cfg); err != nil {
		l.close()
		return nil, err
	}
	l.metricsU = cfg.ListenMetricsURLs
	return l, nil
}

// checkSchemes refuses https URLs without the certificate to serve them,
// with etcd's messages, and certificates that cannot be loaded, naming
// the flag.
func checkSchemes(cfg *Config) error {
	peerTLS, clientTLS := false, false
	for _, u := range cfg.ListenPeerURLs {
		if u.Scheme == "https" {
			if cfg.PeerTLS.Empty() {
				return fmt.Errorf("cannot listen on TLS for %s: KeyFile and CertFile are not presented (--peer-cert-file, --peer-key-file must be given for --listen-peer-urls %s)", u.Host, u.String())
			}
			peerTLS = true
		}
	}
	for _, u := range append(slices.Clone(cfg.ListenClientURLs), cfg.ListenClientHTTPURLs...) {
		if u.Scheme == "https" {
			if cfg.ClientTLS.Empty() {
				return fmt.Errorf("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", u.String())
			}
			clientTLS = true
		}
	}
	for _, u := range cfg.ListenMetricsURLs {
		if u.Scheme == "https" {
			if cfg.ClientTLS.Empty() {
				return fmt.Errorf("cannot listen for metrics on %s (--listen-metrics-urls): client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url", u.String())
			}
			clientTLS = true
		}
	}
	if peerTLS || !cfg.PeerTLS.Empty() { // etcd's peer round tripper loads it even for http URLs
		if err := checkTLS(&cfg.PeerTLS, peerTLSFlags); err != nil {
			return err
		}
	}
	if clientTLS { // etcd loads the client certificate only for https URLs
		if err := checkTLS(&cfg.ClientTLS, clientTLSFlags); err != nil {
			return err
		}
	}
	return nil
}

// bindPeers listens on every peer URL as etcd's configurePeerListeners.
func bindPeers(cfg *Config, lg *slog.Logger) ([]net.Listener, error) {
	var lns []net.Listener
	for _, u := range cfg.ListenPeerURLs {
		if u.Scheme == "http" {
			if !cfg.PeerTLS.Empty() {
				lg.Warn("scheme is HTTP while key and cert files are present; ignoring key and cert files", "peer-url", u.String())
			}
			if cfg.PeerTLS.ClientCertAuth {
				lg.Warn("scheme is HTTP while --peer-client-cert-auth is enabled; ignoring client cert auth for this URL", "peer-url", u.String())
			}
		}
		ln, err := transport.NewListenerWithOpts(u.Host, u.Scheme, transport.WithTLSInfo(&cfg.PeerTLS), transport.WithSocketOpts(&cfg.SocketOpts))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			lg.Error("creating peer listener failed", "error", err)
			return nil, fmt.Errorf("cannot listen for peers on %s (--listen-peer-urls): %w", u.String(), err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// bindClients binds one socket per client address, as etcd's
// configureClientListeners.
func bindClients(cfg *Config, lg *slog.Logger) ([]*clientListener, error) {
	byAddr := map[string]*clientListener{}
	var out []*clientListener
	fail := func(err error) ([]*clientListener, error) {
		for _, l := range out {
			l.Close()
		}
		return nil, err
	}
	all := append(slices.Clone(cfg.ListenClientURLs), cfg.ListenClientHTTPURLs...)
	for _, u := range all {
		if u.Scheme == "http" {
			if !cfg.ClientTLS.Empty() {
				lg.Warn("scheme is http or unix while key and cert files are present; ignoring key and cert files", "client-url", u.String())
			}
			if cfg.ClientTLS.ClientCertAuth {
				lg.Warn("scheme is http or unix while --client-cert-auth is enabled; ignoring client cert auth for this URL", "client-url", u.String())
			}
		}
	}
	split := len(cfg.ListenClientHTTPURLs) > 0
	for i, u := range all {
		httpOnly, flag := i >= len(cfg.ListenClientURLs), "--listen-client-urls"
		if httpOnly {
			flag = "--listen-client-http-urls"
		}
		cl := byAddr[u.Host]
		if cl != nil && httpOnly && !cl.httpOnly {
			return fail(fmt.Errorf("cannot bind both --listen-client-urls and --listen-client-http-urls on the same url %s", u.String()))
		}
		if cl == nil {
			// A plain socket (this package wraps the TLS side itself), with
			// the socket options as etcd's configureClientListeners.
			ln, err := transport.NewListenerWithOpts(u.Host, "http", transport.WithSocketOpts(&cfg.SocketOpts), transport.WithSkipTLSInfoCheck(true))
			if err != nil {
				return fail(fmt.Errorf("cannot listen for clients on %s (%s): %w", u.String(), flag, err))
			}
			cl = &clientListener{Listener: ln, httpOnly: httpOnly, grpcOnly: split && !httpOnly}
			byAddr[u.Host] = cl
			out = append(out, cl)
		}
		if u.Scheme == "https" {
			cl.secure = true
		} else {
			cl.insecure = true
		}
	}
	return out, nil
}

// bindMetrics binds --listen-metrics-urls as etcd's createMetricsListener:
// https with the client TLSInfo.
func bindMetrics(cfg *Config) ([]net.Listener, error) {
	var lns []net.Listener
	for _, u := range cfg.ListenMetricsURLs {
		info := &cfg.ClientTLS
		if u.Scheme == "http" {
			info = nil
		}
		ln, err := transport.NewListenerWithOpts(u.Host, u.Scheme, transport.WithTLSInfo(info), transport.WithSocketOpts(&cfg.SocketOpts))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("cannot listen for metrics on %s (--listen-metrics-urls): %w", u.String(), err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// servePeers serves h on every peer listener; fatal receives a listener's
// failure.
func (l *listeners) servePeers(h http.Handler, fatal func(error)) {
	for _, ln := range l.peer {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(l.lg.Handler(), slog.LevelDebug),
		}
		l.httpSrvs = append(l.httpSrvs, srv)
		l.lg.Info("serving peer traffic", "address", ln.Addr().String())
		go func(ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				fatal(fmt.Errorf("peer listener %s: %w", ln.Addr(), err))
			}
		}(ln)
	}
}

// serveClients serves f on every client listener: gRPC requests to its
// gRPC server, everything else to its HTTP handler; plaintext connections
// directly, TLS connections (on an address an https URL names) through
// net/http, as etcd's serveCtx.serve.
func (l *listeners) serveClients(f *front, fatal func(error)) {
	secure := false
	for _, cl := range l.client {
		secure = secure || cl.secure
	}
	if secure {
		l.lg.Info("starting with client TLS", "tls-info", fmt.Sprintf("%+v", *l.clientTLS), "cipher-suites", cipherSuiteNames(l.clientTLS))
	}
	for _, cl := range l.client {
		if cl.grpcOnly || cl.httpOnly {
			if err := l.serveSplit(cl, f, fatal); err != nil {
				fatal(fmt.Errorf("client listener %s: %w", cl.Addr(), err))
			}
			continue
		}
		m := cmux.New(cl)
		if cl.insecure {
			grpcL := m.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
			var httpL net.Listener
			if cl.secure { // plaintext HTTP only; TLS goes below
				httpL = m.Match(cmux.HTTP1Fast(), cmux.HTTP2())
			} else {
				httpL = m.Match(cmux.Any())
			}
			hsrv := &http.Server{Handler: f.http, ReadHeaderTimeout: 10 * time.Second,
				ErrorLog: slog.NewLogLogger(l.lg.Handler(), slog.LevelDebug)}
			l.httpSrvs = append(l.httpSrvs, hsrv)
			go f.grpc.Serve(grpcL)
			go hsrv.Serve(httpL)
		}
		if cl.secure {
			if err := l.serveTLS(m.Match(cmux.Any()), f); err != nil {
				fatal(fmt.Errorf("client listener %s: %w", cl.Addr(), err))
				continue
			}
		}
		go func(cl *clientListener) {
			if err := m.Serve(); err != nil && !isClosedErr(err) {
				fatal(fmt.Errorf("client listener %s: %w", cl.Addr(), err))
			}
		}(cl)
	}
}

// serveSplit serves a listener of a member with --listen-client-http-urls,
// as etcd's serveCtx.serve with onlyGRPC or onlyHTTP:
//   - gRPC alone: plaintext connections straight to the gRPC server; over
//     TLS (an https URL names the address) HTTP/2 requests through net/http
//     to the gRPC server as on a shared listener (it answers 415 to what
//     is not gRPC), and an HTTP/1 connection is closed unanswered, as
//     etcd's gRPC server, which does the handshake itself, closes it;
//   - HTTP alone: plaintext HTTP/1 to the HTTP handler (etcd matches only
//     HTTP/1 there), over TLS every request to the HTTP handler, none to
//     gRPC.
func (l *listeners) serveSplit(cl *clientListener, f *front, fatal func(error)) error {
	serve := func(what string, run func() error) {
		go func() {
			if err := run(); err != nil && !isClosedErr(err) && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				fatal(fmt.Errorf("client listener %s (%s): %w", cl.Addr(), what, err))
			}
		}()
	}
	if cl.grpcOnly {
		if !cl.secure {
			serve("grpc", func() error { return f.grpc.Serve(cl) })
			return nil
		}
		grpcOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 { // the gRPC server answers what is not gRPC (415)
				f.grpc.ServeHTTP(w, r)
				return
			}
			// HTTP/1: etcd's gRPC server drops the connection unanswered.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			http.Error(w, "gRPC only", http.StatusHTTPVersionNotSupported)
		})
		return l.serveTLSHandler(cl, grpcOnly)
	}
	m := cmux.New(cl)
	if cl.insecure {
		httpL := m.Match(cmux.HTTP1()) // a TLS handshake does not match
		hsrv := &http.Server{Handler: f.http, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(l.lg.Handler(), slog.LevelDebug)}
		l.httpSrvs = append(l.httpSrvs, hsrv)
		serve("http", func() error { return hsrv.Serve(httpL) })
	}
	if cl.secure {
		if err := l.serveTLSHandler(m.Match(cmux.Any()), f.http); err != nil {
			return err
		}
	}
	serve("cmux", m.Serve)
	return nil
}

// serveTLS serves f over TLS on ln, as etcd's serveCtx.serve does for a
// secure address: handshakes (and the CRL check) by
// transport.NewTLSListener, HTTP/2 by net/http, gRPC by the gRPC server's
// ServeHTTP.
func (l *listeners) serveTLS(ln net.Listener, f *front) error {
	return l.serveTLSHandler(ln, grpcHandlerFunc(f.grpc, f.http))
}

// serveTLSHandler serves h over TLS on ln, HTTP/2 included.
func (l *listeners) serveTLSHandler(ln net.Listener, h http.Handler) error {
	tlscfg, err := l.clientTLS.ServerConfig()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlscfg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(l.lg.Handler(), slog.LevelDebug),
	}
	if err := http2.ConfigureServer(srv, &http2.Server{MaxConcurrentStreams: l.maxStrms}); err != nil {
		return fmt.Errorf("configure https server: %w", err)
	}
	tlsl, err := transport.NewTLSListener(ln, l.clientTLS)
	if err != nil {
		return err
	}
	l.httpSrvs = append(l.httpSrvs, srv)
	go srv.Serve(tlsl)
	return nil
}

// serveMetrics serves h (/metrics and the health endpoints, as etcd's
// serveMetrics) on every --listen-metrics-urls listener.
func (l *listeners) serveMetrics(h http.Handler, fatal func(error)) {
	for i, ln := range l.metrics {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(l.lg.Handler(), slog.LevelDebug)}
		l.httpSrvs = append(l.httpSrvs, srv)
		u := l.metricsU[i]
		go func(ln net.Listener) {
			l.lg.Info("serving metrics", "address", u.Scheme+"://"+ln.Addr().String())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) && !transport.IsClosedConnError(err) {
				fatal(fmt.Errorf("metrics listener %s: %w", ln.Addr(), err))
			}
		}(ln)
	}
}

// closeHTTP closes the HTTP servers (peer streams and client HTTP) at once.
func (l *listeners) closeHTTP() {
	for _, h := range l.httpSrvs {
		h.Close()
	}
}

// close closes every bound socket.
func (l *listeners) close() {
	for _, ln := range l.client {
		ln.Close()
	}
	for _, ln := range append(l.peer, l.metrics...) {
		ln.Close()
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, cmux.ErrListenerClosed) || errors.Is(err, cmux.ErrServerClosed)
}
