package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/soheilhy/cmux"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// maintenanceServer implements the parts of etcd's Maintenance service that
// quorumd supports: Status and Alarm listing. The rest answer Unimplemented.
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	s := m.s
	st := s.readView()
	// The database here is the keyspace a snapshot would serialize: the
	// store's size plus the snapshot's header and membership (never 0, as
	// a bolt file never is; etcdctl divides by it).
	size := st.view.Size() + st.snapshotOverhead()
	resp := &pb.StatusResponse{
		Header:           s.header(st.view.Rev()),
		Version:          ReportedServerVersion,
		DbSize:           size,
		DbSizeInUse:      size,
		Leader:           s.lead.Load(),
		RaftIndex:        s.committed.Load(),
		RaftTerm:         s.term.Load(),
		RaftAppliedIndex: st.applied,
		StorageVersion:   ReportedServerVersion,
		DbSizeQuota:      s.cfg.QuotaBackendBytes,
	}
	for _, a := range s.alarms() {
		resp.Errors = append(resp.Errors, "memberID:"+fmt.Sprint(a.MemberID)+" alarm:"+a.Alarm.String())
	}
	return resp, nil
}

func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.Action != pb.AlarmRequest_GET {
		// Alarms here are derived from the member's state (the keyspace is
		// over quota), not raised and cleared by hand.
		return nil, rpctypes.ErrGRPCNotCapable
	}
	return &pb.AlarmResponse{Header: m.s.header(m.s.readView().view.Rev()), Alarms: m.s.alarms()}, nil
}

func (s *Server) alarms() []*pb.AlarmMember {
	if s.cfg.QuotaBackendBytes > 0 && s.readView().view.Size() > s.cfg.QuotaBackendBytes {
		return []*pb.AlarmMember{{MemberID: s.id, Alarm: pb.AlarmType_NOSPACE}}
	}
	return nil
}

type clusterServer struct {
	pb.UnimplementedClusterServer
	s *Server
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if err := c.s.linearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	st := c.s.readView()
	resp := &pb.MemberListResponse{Header: c.s.header(st.view.Rev())}
	for _, m := range st.membership.Members {
		resp.Members = append(resp.Members, &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs})
	}
	return resp, nil
}

func (s *Server) servePeers() {
	for _, ln := range s.peerLns {
		srv := &http.Server{
			Handler:           s.tr.handler(),
			ReadHeaderTimeout: 5 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(s.lg.Handler(), slog.LevelDebug),
		}
		s.httpSrvs = append(s.httpSrvs, srv)
		go func(ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				s.fatal(fmt.Errorf("peer listener %s: %w", ln.Addr(), err))
			}
		}(ln)
	}
}

func (s *Server) serveClients() {
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(int(s.cfg.MaxRequestBytes)+grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: false}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
	)
	pb.RegisterKVServer(s.grpc, &kvServer{s: s})
	pb.RegisterMaintenanceServer(s.grpc, &maintenanceServer{s: s})
	pb.RegisterClusterServer(s.grpc, &clusterServer{s: s})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, hs)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.healthLoop(hs) }()

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveReadyz)
	mux.HandleFunc("/livez", s.serveLivez)
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"etcdserver":%q,"etcdcluster":%q}`, ReportedServerVersion, ReportedServerVersion)
	})
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	for _, ln := range s.clientLns {
		m := cmux.New(ln)
		grpcL := m.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
		httpL := m.Match(cmux.Any())
		hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.lg.Handler(), slog.LevelDebug)}
		s.httpSrvs = append(s.httpSrvs, hsrv)
		go s.grpc.Serve(grpcL)
		go hsrv.Serve(httpL)
		go func(ln net.Listener) {
			if err := m.Serve(); err != nil && !isClosedErr(err) {
				s.fatal(fmt.Errorf("client listener %s: %w", ln.Addr(), err))
			}
		}(ln)
	}
	s.lg.Info("serving clients", "urls", FormatURLs(s.cfg.ListenClientURLs))
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, cmux.ErrListenerClosed) || errors.Is(err, cmux.ErrServerClosed)
}

// healthLoop keeps the gRPC health service in step with whether the member
// has a leader.
func (s *Server) healthLoop(hs *health.Server) {
	set := func() {
		if s.lead.Load() != 0 {
			hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		} else {
			hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		}
	}
	set()
	for {
		select {
		case <-s.leaderChangedC():
			set()
		case <-s.stopc:
			hs.Shutdown()
			return
		}
	}
}

// serveHealth answers etcd's GET /health: unhealthy without a leader, with
// an alarm, or when a read (linearizable unless ?serializable=true) fails.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	reason := s.healthProblem(r.Context(), r.URL.Query().Get("serializable") == "true")
	w.Header().Set("Content-Type", "application/json")
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]string{"health": fmt.Sprint(reason == ""), "reason": reason})
}

func (s *Server) healthProblem(ctx context.Context, serializable bool) string {
	if as := s.alarms(); len(as) > 0 {
		return "ALARM " + as[0].Alarm.String()
	}
	if s.lead.Load() == 0 {
		return "RAFT NO LEADER"
	}
	if !serializable {
		ctx, cancel := context.WithTimeout(ctx, time.Second+2*s.cfg.ElectionTimeout)
		defer cancel()
		if err := s.linearizableReadNotify(ctx); err != nil {
			return "QGET ERROR: " + err.Error()
		}
	}
	return ""
}

func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	reason := s.healthProblem(r.Context(), true)
	if reason != "" {
		http.Error(w, "[-]"+reason+"\nreadyz check failed", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprint(w, "ok")
}

func (s *Server) serveLivez(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, "ok")
}
