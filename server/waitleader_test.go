package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// leaderlessServer is a Server with just what waitLeader uses, leaderless
// since `since`.
func leaderlessServer(electionTimeout time.Duration, since time.Time) *Server {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &Server{
		cfg:    Config{ElectionTimeout: electionTimeout},
		lg:     lg,
		status: newRaftStatus(0, since, lg, newServerMetrics()),
		stopc:  make(chan struct{}),
	}
}

func TestWaitLeaderReturnsWhenElected(t *testing.T) {
	s := leaderlessServer(time.Hour, time.Now())
	done := make(chan error, 1)
	go func() { done <- s.waitLeader(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("returned %v before any leader", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.status.setLeader(7)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the election: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after a leader was elected")
	}
	if err := s.waitLeader(context.Background()); err != nil {
		t.Fatalf("with a leader: %v", err)
	}
}

func TestWaitLeaderGivesUpAfterGrace(t *testing.T) {
	const et = 20 * time.Millisecond
	since := time.Now()
	s := leaderlessServer(et, since)
	err := s.waitLeader(context.Background())
	if !errors.Is(err, rpctypes.ErrGRPCNoLeader) {
		t.Fatalf("err = %v, want no leader", err)
	}
	if d := time.Since(since); d < electionGrace*et {
		t.Fatalf("gave up %v after losing the leader, before the grace of %v", d, electionGrace*et)
	}
}

func TestWaitLeaderGraceRestartsWhenLeaderLost(t *testing.T) {
	// Leaderless for ten hours with a grace of three: no wait at all (a
	// wait would last hours).
	s := leaderlessServer(time.Hour, time.Now().Add(-10*time.Hour))
	start := time.Now()
	if err := s.waitLeader(context.Background()); !errors.Is(err, rpctypes.ErrGRPCNoLeader) {
		t.Fatalf("long leaderless: err = %v, want no leader", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("long leaderless: answered after %v, want at once", d)
	}
	s.status.setLeader(7)
	s.status.setLeader(0) // a fresh election starts the grace again
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.waitLeader(ctx); !errors.Is(err, rpctypes.ErrGRPCDeadlineExceeded) {
		t.Fatalf("during a fresh election with a 50ms deadline: err = %v, want deadline exceeded", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := s.waitLeader(ctx); !errors.Is(err, rpctypes.ErrGRPCCanceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
	close(s.stopc)
	if err := s.waitLeader(context.Background()); !errors.Is(err, rpctypes.ErrGRPCStopped) {
		t.Fatalf("stopped: err = %v", err)
	}
}
