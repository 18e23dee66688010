package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3compactor"
	etcdmvcc "go.etcd.io/etcd/server/v3/storage/mvcc"
)

// The settings build etcd's own compactors: none at retention 0, etcd's
// Periodic and Revision otherwise; Validate refuses an unknown mode, naming
// the flag, when auto compaction is on.
func TestAutoCompactorIsEtcds(t *testing.T) {
	s := &Server{lg: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tests := []struct {
		mode      string
		retention time.Duration
		want      string
	}{
		{"periodic", 0, "<nil>"},
		{"revision", 0, "<nil>"},
		{"periodic", time.Hour, "*v3compactor.Periodic"},
		{"revision", 10, "*v3compactor.Revision"},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		cfg.AutoCompactionMode, cfg.AutoCompactionRetention = tt.mode, tt.retention
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s %v: %v", tt.mode, tt.retention, err)
		}
		c, err := newAutoCompactor(s, &cfg)
		if got := fmt.Sprintf("%T", c); err != nil || got != tt.want {
			t.Errorf("%s %v: %s, %v; want %s", tt.mode, tt.retention, got, err, tt.want)
		}
	}
	cfg := DefaultConfig()
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = "hourly", time.Hour
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--auto-compaction-mode") {
		t.Errorf("mode hourly: %v; want an error naming --auto-compaction-mode", err)
	}
	cfg.AutoCompactionRetention = 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("mode hourly with auto compaction off: %v", err)
	}
}

// fakeCompactor records what the member asks of it.
type fakeCompactor struct {
	mu                    sync.Mutex
	running, paused, done bool
}

var _ v3compactor.Compactor = (*fakeCompactor)(nil)

func (f *fakeCompactor) Run()    { f.set(func() { f.running = true }) }
func (f *fakeCompactor) Stop()   { f.set(func() { f.done = true }) }
func (f *fakeCompactor) Pause()  { f.set(func() { f.paused = true }) }
func (f *fakeCompactor) Resume() { f.set(func() { f.paused = false }) }
func (f *fakeCompactor) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// active: running, not paused, not stopped.
func (f *fakeCompactor) active() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running && !f.paused && !f.done
}

func (f *fakeCompactor) stopped() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
	}
}

// The compactor runs on the leader only: resumed on the member that is
// elected, paused on the others, handed to the new leader when the leader
// stops, and stopped with its member.
func TestMemClusterCompactorRunsOnlyOnTheLeader(t *testing.T) {
	c := newMemCluster(t, 3)
	fakes := make([]*fakeCompactor, 3)
	for i, s := range c.members {
		fakes[i] = &fakeCompactor{}
		go s.runCompactorWhileLeader(fakes[i])
	}
	onlyLeader := func(lead int) func() bool {
		return func() bool {
			for i, f := range fakes {
				if c.members[i] != nil && f.active() != (i == lead) {
					return false
				}
			}
			return true
		}
	}
	lead, _ := c.leader()
	waitFor(t, fmt.Sprintf("only member %d's compactor active", lead), onlyLeader(lead))
	c.stop(lead)
	waitFor(t, "the stopped leader's compactor stopped", fakes[lead].stopped)
	next, _ := c.leader()
	waitFor(t, fmt.Sprintf("only the new leader %d's compactor active", next), onlyLeader(next))
}

// Compact goes through Raft as the Compact RPC does: proposed through any
// member, every member compacts at that revision; compacting there again is
// etcd's mvcc.ErrCompacted, which etcd's compactor counts as done. Rev is
// the member's applied revision.
func TestMemClusterCompactTargetCompactsEveryMember(t *testing.T) {
	c := newMemCluster(t, 3)
	_, lead := c.leader()
	for i := 0; i < 10; i++ {
		c.put(lead, fmt.Sprintf("k%d", i), "v")
	}
	c.converged()
	f := c.members[0]
	if f == lead {
		f = c.members[1]
	}
	if got, want := (compactTarget{f}).Rev(), lead.readView().view.Rev(); got != want || got != 11 {
		t.Fatalf("Rev on a follower: %d; leader's %d, want 11", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := compactTarget{f}.Compact(ctx, &pb.CompactionRequest{Revision: 6})
	if err != nil || resp.Header.Revision != 11 {
		t.Fatalf("compact at 6 through a follower: %v, %v", resp, err)
	}
	for _, s := range c.members {
		waitFor(t, fmt.Sprintf("member %x compacted at 6", s.id), func() bool { return s.readView().view.CompactRev() == 6 })
	}
	if _, err := (compactTarget{lead}).Compact(ctx, &pb.CompactionRequest{Revision: 6}); !errors.Is(err, etcdmvcc.ErrCompacted) {
		t.Errorf("compact at 6 again: %v; want etcd's mvcc.ErrCompacted", err)
	}
}

// etcd's periodic compactor over a member with a short retention (200 ms:
// it samples the revision every 20 ms): after the writes stop, the window
// slides to the last revision, and every member is compacted there.
func TestMemClusterPeriodicAutoCompaction(t *testing.T) {
	c := newMemCluster(t, 3)
	for i := range c.members {
		c.stop(i)
		c.cfgs[i].AutoCompactionRetention = 200 * time.Millisecond
		c.start(i)
	}
	_, lead := c.leader()
	for i := 0; i < 20; i++ {
		c.put(lead, fmt.Sprintf("k%d", i%5), fmt.Sprint(i))
		time.Sleep(20 * time.Millisecond)
	}
	last := lead.readView().view.Rev()
	for _, s := range c.members {
		waitFor(t, fmt.Sprintf("member %x compacted at the last revision %d", s.id, last), func() bool {
			return s.readView().view.CompactRev() == last
		})
	}
}
