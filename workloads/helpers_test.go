package workloads

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/history"
)

// threeMembers are the targets of the in-memory tests.
var threeMembers = []Target{{Name: "n1", Endpoint: "mem://1"}, {Name: "n2", Endpoint: "mem://2"}, {Name: "n3", Endpoint: "mem://3"}}

func newRecorder() *history.Recorder {
	start := time.Now()
	return history.NewRecorder(func() time.Duration { return time.Since(start) })
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// memConfig is a small, bounded configuration for in-memory runs.
func memConfig(workload string, maxOps int) Config {
	c := DefaultConfig()
	c.Workload = workload
	c.Concurrency = 6
	c.Keys = 3
	c.MaxOps = maxOps
	c.Timeout = time.Second
	c.Seed = 42
	return c
}

// runMem runs cfg against store, then the final reads, and returns the
// history. The run is bounded by cfg.MaxOps and by a 10 s context.
func runMem(t *testing.T, cfg Config, store *MemStore) (Stats, []history.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := newRecorder()
	st, err := Run(ctx, cfg, threeMembers, store.Dialer(), rec, testLogger(t))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := FinalReads(ctx, cfg, threeMembers, store.Dialer(), rec); err != nil {
		t.Fatalf("FinalReads: %v", err)
	}
	return st, rec.Events()
}

func check(t *testing.T, events []history.Event, workload string) checker.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return checker.Check(ctx, events, checker.Options{Workload: workload, Timeout: 20 * time.Second})
}
