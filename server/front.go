package server

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// front is the client API of a member: the gRPC server with every etcd
// service quorumd implements, and the HTTP endpoints served beside it on the
// client URLs. Every service is registered here, in newFront; the services
// themselves live in front_*.go (front_kv.go, front_maintenance.go,
// front_cluster.go, front_health.go, front_lease.go, front_watch.go,
// front_auth.go; Lock and Election in front_self.go) and
// reach the member only through the Server's methods (propose,
// linearizableReadNotify, readView, header) and its watchable store.
// Which sockets the front is served on is listeners.go's business.
type front struct {
	grpc   *grpc.Server
	http   http.Handler
	health *health.Server
	// metricsHTTP serves the --listen-metrics-urls listeners: /metrics and
	// the health endpoints, as etcd's serveMetrics (embed/etcd.go).
	metricsHTTP http.Handler
	// leaderStreams are the open streams that require a leader
	// (front_leader.go); Server.monitorLeader cancels them.
	leaderStreams *leaderStreams
	// self is the member's client of itself (front_self.go), nil if it
	// could not be made (the member is then stopping).
	self *selfConn
	// closing is closed when the front starts to stop, so that streams
	// that would never end on their own (Watch) end and let the graceful
	// stop finish at once.
	closing chan struct{}
}

func newFront(s *Server) *front {
	gm := s.metrics.grpcServerMetrics(s.cfg.Metrics == "extensive")
	ls := &leaderStreams{streams: map[*streamWithCtx]struct{}{}}
	var traced []grpc.ServerOption
	if s.tracing != nil { // as etcd's v3rpc.Server
		traced = append(traced, grpc.StatsHandler(otelgrpc.NewServerHandler(s.tracing.opts...)))
	}
	g := grpc.NewServer(append(traced,
		grpc.ForceServerCodecV2(newCountingCodec(s.metrics)),
		grpc.ChainUnaryInterceptor(s.logRequestStats, gm.UnaryServerInterceptor(), s.unaryLearner, s.unaryRequireLeader),
		grpc.ChainStreamInterceptor(gm.StreamServerInterceptor(), s.streamLearner, s.streamRequireLeader(ls)),
		grpc.MaxRecvMsgSize(int(s.cfg.MaxRequestBytes)+grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(s.cfg.maxConcurrentStreams()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: s.cfg.GRPCKeepAliveMinTime, PermitWithoutStream: false}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: s.cfg.GRPCKeepAliveInterval, Timeout: s.cfg.GRPCKeepAliveTimeout}),
	)...)
	pb.RegisterKVServer(g, &kvServer{s: s})
	pb.RegisterMaintenanceServer(g, &maintenanceServer{s: s})
	pb.RegisterClusterServer(g, &clusterServer{s: s})
	pb.RegisterLeaseServer(g, &leaseServer{s: s})
	closing := make(chan struct{})
	pb.RegisterWatchServer(g, newWatchServer(s, closing))
	pb.RegisterAuthServer(g, &authServer{s: s})
	self, err := newSelfConn(s.lg)
	if err != nil {
		s.fatal(fmt.Errorf("client API: %w", err)) // not seen: an in-memory dial with fixed options
	} else {
		self.register(g)
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	// Every method's grpc_server_* series from the start, as etcd.
	gm.InitializeMetrics(g)

	metricsMux := http.NewServeMux()
	mux := http.NewServeMux()
	for _, m := range []*http.ServeMux{mux, metricsMux} {
		m.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
		m.HandleFunc("/health", s.serveHealth)
		m.HandleFunc("/readyz", s.serveReadyz)
		m.HandleFunc("/livez", s.serveLivez)
	}
	mux.HandleFunc("/version", serveVersion)
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if s.cfg.EnableGRPCGateway && self != nil {
		gw, err := self.gateway()
		if err != nil {
			s.fatal(fmt.Errorf("client API: %w", err))
		} else {
			mux.Handle("/v3/", gw)
		}
	}
	return &front{grpc: g, http: newAccessController(&s.cfg, s.lg, s.auth.IsAuthEnabled, mux), health: hs, metricsHTTP: metricsMux, leaderStreams: ls, closing: closing, self: self}
}

// accessController is etcd's (embed/serve.go) in front of the client
// URLs' HTTP handlers:
//   - /v3beta/ paths are served as /v3/ (etcd's backward compatibility);
//   - plaintext requests whose host (the Host header without its port) is
//     not in a --host-whitelist that lists neither "*" nor it get 421 and
//     etcd's explanation (DNS rebinding, CVE-2018-5702);
//   - with --client-cert-auth, the gateway and auth enabled, a TLS request
//     to /v3/ whose client certificate has a common name gets 400 (the
//     gateway would act as the member, not as that user);
//   - every answer carries the CORS headers for --cors (default "*"), and
//     OPTIONS (a browser's preflight) is answered 200 with them alone.
type accessController struct {
	lg          *slog.Logger
	hosts       map[string]bool // nil: every host
	cors        map[string]bool // nil: every origin
	certAuth    bool            // --client-cert-auth with the gateway on
	authEnabled func() bool
	mux         http.Handler
}

func newAccessController(cfg *Config, lg *slog.Logger, authEnabled func() bool, mux http.Handler) *accessController {
	ac := &accessController{lg: lg, certAuth: cfg.ClientTLS.ClientCertAuth && cfg.EnableGRPCGateway, authEnabled: authEnabled, mux: mux}
	set := func(vs []string) map[string]bool {
		m := map[string]bool{}
		for _, v := range vs {
			m[v] = true
		}
		if len(m) == 0 || m["*"] {
			return nil
		}
		return m
	}
	ac.hosts, ac.cors = set(cfg.HostWhitelist), set(cfg.CORS)
	return ac
}

func (ac *accessController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v3beta/") {
		r.URL.Path = strings.Replace(r.URL.Path, "/v3beta/", "/v3/", 1)
	}
	if r.TLS == nil {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if ac.hosts != nil && !ac.hosts[host] {
			ac.lg.Warn("rejecting HTTP request to prevent DNS rebinding attacks", "host", host)
			http.Error(w, errCVE20185702(host), http.StatusMisdirectedRequest)
			return
		}
	} else if ac.certAuth && strings.HasPrefix(r.URL.Path, "/v3/") && ac.authEnabled() {
		for _, chain := range r.TLS.VerifiedChains {
			if len(chain) > 0 && chain[0].Subject.CommonName != "" {
				http.Error(w, "CommonName of client sending a request against gateway will be ignored and not used as expected", http.StatusBadRequest)
				return
			}
		}
	}
	if ac.cors == nil {
		addCORSHeader(w, "*")
	} else if origin := r.Header.Get("Origin"); ac.cors[origin] {
		addCORSHeader(w, origin)
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return
	}
	ac.mux.ServeHTTP(w, r)
}

// addCORSHeader adds etcd's CORS headers for origin.
func addCORSHeader(w http.ResponseWriter, origin string) {
	w.Header().Add("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
	w.Header().Add("Access-Control-Allow-Origin", origin)
	w.Header().Add("Access-Control-Allow-Headers", "accept, content-type, authorization")
}

// errCVE20185702 is etcd's answer to a request whose host is not
// whitelisted, word for word.
func errCVE20185702(host string) string {
	return fmt.Sprintf(`
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist %q

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`, host)
}

// stop lets the RPCs in flight finish, for at most two seconds.
func (f *front) stop() {
	close(f.closing)
	if f.self != nil {
		// First, so that Lock and Campaign calls waiting on the self
		// client end and the graceful stop does not wait them out.
		f.self.close()
	}
	done := make(chan struct{})
	go func() { f.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		f.grpc.Stop()
	}
}

// serveVersion answers etcd's GET /version (etcdhttp's serveVersion), on
// the client and the peer URLs; another method gets 405 with Allow: GET.
func serveVersion(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"etcdserver":%q,"etcdcluster":%q,"storage":%q}`, ReportedServerVersion, ReportedClusterVersion, ReportedStorageVersion)
}
