package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthLoop keeps the gRPC health service in step with whether the member
// has a leader.
func (s *Server) healthLoop(hs *health.Server) {
	set := func() {
		if s.status.leader() != 0 {
			hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		} else {
			hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		}
	}
	set()
	for {
		select {
		case <-s.status.leaderChanged():
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
	if reason == "" {
		s.metrics.healthSuccess.Inc()
	} else {
		s.metrics.healthFailures.Inc()
	}
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
	if s.status.leader() == 0 {
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
