package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/soheilhy/cmux"
)

// listeners are a member's bound sockets and the HTTP servers on them: the
// peer URLs serve the transport's handler, the client URLs serve the front
// (gRPC and HTTP on the same port, told apart by cmux), the metrics URLs
// serve /metrics and the health endpoints. They are bound in
// New, before anything is written to the data dir, and served in Start.
type listeners struct {
	lg       *slog.Logger
	client   []net.Listener
	peer     []net.Listener
	metrics  []net.Listener // --listen-metrics-urls
	httpSrvs []*http.Server
}

// listen binds the client and peer URLs, so that a port in use is reported
// before anything is written to the data dir. On error nothing stays bound.
func listen(cfg *Config, lg *slog.Logger) (*listeners, error) {
	l := &listeners{lg: lg}
	var err error
	lg.Info("configuring peer listeners", "listen-peer-urls", urlStrings(cfg.ListenPeerURLs))
	if l.peer, err = bind(cfg.ListenPeerURLs, "peers", "--listen-peer-urls"); err != nil {
		return nil, err
	}
	lg.Info("configuring client listeners", "listen-client-urls", urlStrings(cfg.ListenClientURLs))
	if l.client, err = bind(cfg.ListenClientURLs, "clients", "--listen-client-urls"); err != nil {
		l.close()
		return nil, err
	}
	for _, u := range cfg.ListenMetricsURLs {
		if u.Scheme != "http" {
			l.close()
			return nil, fmt.Errorf("cannot listen for metrics on %s (--listen-metrics-urls): only http is supported (quorumd has no client TLS yet)", u.String())
		}
	}
	if l.metrics, err = bind(cfg.ListenMetricsURLs, "metrics", "--listen-metrics-urls"); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// bind listens on every URL of urls, or on none: on error it closes what
// it bound. who and flag name them in the error.
func bind(urls []url.URL, who, flag string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, u := range urls {
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("cannot listen for %s on %s (%s): %w", who, u.String(), flag, err)
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
// gRPC server, everything else to its HTTP handler.
func (l *listeners) serveClients(f *front, fatal func(error)) {
	for _, ln := range l.client {
		m := cmux.New(ln)
		grpcL := m.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
		httpL := m.Match(cmux.Any())
		hsrv := &http.Server{Handler: f.http, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(l.lg.Handler(), slog.LevelDebug)}
		l.httpSrvs = append(l.httpSrvs, hsrv)
		go f.grpc.Serve(grpcL)
		go hsrv.Serve(httpL)
		go func(ln net.Listener) {
			if err := m.Serve(); err != nil && !isClosedErr(err) {
				fatal(fmt.Errorf("client listener %s: %w", ln.Addr(), err))
			}
		}(ln)
	}
}

// serveMetrics serves h (/metrics and the health endpoints, as etcd's
// serveMetrics) on every --listen-metrics-urls listener.
func (l *listeners) serveMetrics(h http.Handler, fatal func(error)) {
	for _, ln := range l.metrics {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(l.lg.Handler(), slog.LevelDebug)}
		l.httpSrvs = append(l.httpSrvs, srv)
		go func(ln net.Listener) {
			l.lg.Info("serving metrics", "address", "http://"+ln.Addr().String())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
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
	for _, ln := range append(append(l.client, l.peer...), l.metrics...) {
		ln.Close()
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, cmux.ErrListenerClosed) || errors.Is(err, cmux.ErrServerClosed)
}
