package fake

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

func TestNodeOperationsFollowTheStateTableAndAreRecorded(t *testing.T) {
	ctx := context.Background()
	c := New(3)
	n1, _ := c.Node("n1")
	steps := []struct {
		do      func(context.Context) error
		want    cluster.State
		wantErr error
	}{
		{n1.Pause, cluster.Paused, nil},
		{n1.Start, cluster.Paused, cluster.ErrInvalidState},
		{n1.Resume, cluster.Running, nil},
		{n1.Wipe, cluster.Running, cluster.ErrInvalidState},
		{n1.Kill, cluster.Stopped, nil},
		{n1.Stop, cluster.Stopped, nil},
		{n1.Wipe, cluster.Stopped, nil},
		{n1.Start, cluster.Running, nil},
	}
	for i, s := range steps {
		err := s.do(ctx)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
			t.Fatalf("step %d: err %v, want %v", i, err, s.wantErr)
		}
		if got := n1.State(); got != s.want {
			t.Fatalf("step %d: state %v, want %v", i, got, s.want)
		}
	}
	want := []string{"pause n1",
		"start n1 -> start n1: start on paused node: operation not allowed in node state",
		"resume n1",
		"wipe n1 -> wipe n1: wipe on running node: operation not allowed in node state",
		"kill n1", "stop n1", "wipe n1", "start n1"}
	if got := c.CallStrings(); !slices.Equal(got, want) {
		t.Fatalf("calls:\n got %q\nwant %q", got, want)
	}
	if n1.(*Node).Wipes() != 1 {
		t.Errorf("wipes = %d, want 1", n1.(*Node).Wipes())
	}
}

func TestFailNextInjectsOneFailureWithoutEffect(t *testing.T) {
	ctx := context.Background()
	c := New(3)
	boom := errors.New("boom")
	c.FailNext(string(cluster.OpKill), "n2", boom)
	c.FailNext("partition", "", boom)
	n2, _ := c.Node("n2")
	if err := n2.Kill(ctx); !errors.Is(err, boom) || n2.State() != cluster.Running {
		t.Fatalf("first kill: %v, state %v", err, n2.State())
	}
	if err := n2.Kill(ctx); err != nil || n2.State() != cluster.Stopped {
		t.Fatalf("second kill: %v, state %v", err, n2.State())
	}
	if err := c.Partition(ctx, []cluster.Link{{A: "n1", B: "n2"}}); !errors.Is(err, boom) || len(c.Cut()) != 0 {
		t.Fatalf("failed partition: %v, cut %v", err, c.Cut())
	}
}

func TestPartitionReplacesCutSetAndValidatesNames(t *testing.T) {
	ctx := context.Background()
	c := New(3)
	if err := c.Partition(ctx, []cluster.Link{{A: "n2", B: "n1"}, {A: "n1", B: "n2"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.Cut(); !slices.Equal(got, []cluster.Link{{A: "n1", B: "n2"}}) {
		t.Fatalf("cut = %v", got)
	}
	if err := c.Partition(ctx, []cluster.Link{{A: "n3", B: "n1"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.Cut(); !slices.Equal(got, []cluster.Link{{A: "n1", B: "n3"}}) {
		t.Fatalf("cut after replace = %v", got)
	}
	if err := c.Partition(ctx, []cluster.Link{{A: "n1", B: "n9"}}); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}
	if err := c.Heal(ctx); err != nil || len(c.Cut()) != 0 {
		t.Fatalf("heal: %v, cut %v", err, c.Cut())
	}
	if err := c.SetLatency(ctx, []cluster.Link{{A: "n1", B: "n2"}}, time.Second, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := c.Latency()[cluster.Link{A: "n1", B: "n2"}]; got != (Shaping{time.Second, time.Millisecond}) {
		t.Fatalf("latency = %v", got)
	}
	c.SetLatency(ctx, []cluster.Link{{A: "n2", B: "n1"}}, 0, 0)
	if len(c.Latency()) != 0 {
		t.Fatalf("latency not removed: %v", c.Latency())
	}
}

func TestLeaderFollowsTheConnectedMajority(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		setup   func(c *Cluster)
		want    string
		healthy bool
	}{
		{"initial leader", func(c *Cluster) {}, "n1", true},
		{"isolated leader is replaced", func(c *Cluster) {
			c.Partition(ctx, cluster.Isolate(c, "n1"))
		}, "n2", false},
		{"killed leader is replaced", func(c *Cluster) {
			n, _ := c.Node("n1")
			n.Kill(ctx)
		}, "n2", true},
		{"paused leader is replaced", func(c *Cluster) {
			n, _ := c.Node("n1")
			n.Pause(ctx)
		}, "n2", true},
		{"sticky leader survives a cut between followers", func(c *Cluster) {
			c.SetLeader("n3")
			c.Partition(ctx, []cluster.Link{{A: "n1", B: "n2"}})
		}, "n3", true},
		{"leader cut from one follower stays, unhealthy", func(c *Cluster) {
			c.Partition(ctx, []cluster.Link{{A: "n1", B: "n2"}})
		}, "n1", false},
		{"no majority, no leader", func(c *Cluster) {
			for _, n := range []string{"n1", "n2"} {
				node, _ := c.Node(n)
				node.Kill(ctx)
			}
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(3)
			tt.setup(c)
			l, err := cluster.Leader(ctx, c)
			switch {
			case tt.want == "" && !errors.Is(err, cluster.ErrNoLeader):
				t.Fatalf("Leader = %v, %v; want ErrNoLeader", l, err)
			case tt.want != "" && (err != nil || l.Name() != tt.want):
				t.Fatalf("Leader = %v, %v; want %s", l, err, tt.want)
			}
			if err := cluster.WaitHealthy(ctx, c); (err == nil) != tt.healthy {
				t.Fatalf("WaitHealthy = %v, want healthy=%v", err, tt.healthy)
			}
		})
	}
}

func TestCloseStopsEverythingOnce(t *testing.T) {
	ctx := context.Background()
	c := New(3)
	n2, _ := c.Node("n2")
	n2.Pause(ctx)
	c.Partition(ctx, []cluster.Link{{A: "n1", B: "n2"}})
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for name, s := range c.States() {
		if s != cluster.Stopped {
			t.Errorf("%s %v after Close", name, s)
		}
	}
	if !c.Closed() || len(c.Cut()) != 0 {
		t.Errorf("closed=%v cut=%v", c.Closed(), c.Cut())
	}
	closes := 0
	for _, call := range c.Calls() {
		if call.Op == "close" {
			closes++
		}
	}
	if closes != 1 {
		t.Errorf("%d close calls recorded, want 1", closes)
	}
}

func TestCallsOnADoneContextFailWithoutEffectButCloseStillCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := New(3)
	n1, _ := c.Node("n1")
	for i, call := range []func() error{
		func() error { return n1.Kill(ctx) },
		func() error { return c.Partition(ctx, []cluster.Link{{A: "n1", B: "n2"}}) },
		func() error { return c.Heal(ctx) },
		func() error { return c.SetLatency(ctx, []cluster.Link{{A: "n1", B: "n2"}}, time.Second, 0) },
		func() error { _, err := c.Leader(ctx); return err },
		func() error { return c.WaitHealthy(ctx) },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("call %d on a done context: %v, want context.Canceled", i, err)
		}
	}
	if n1.State() != cluster.Running || len(c.Cut()) != 0 || len(c.Latency()) != 0 {
		t.Fatalf("a refused call had effect: n1 %v, cut %v, latency %v", n1.State(), c.Cut(), c.Latency())
	}
	want := []string{"kill n1 -> context canceled", "partition [n1-n2] -> context canceled",
		"heal -> context canceled", "latency [n1-n2] 1s±0s -> context canceled"}
	if got := c.CallStrings(); !slices.Equal(got, want) {
		t.Fatalf("calls:\n got %q\nwant %q", got, want)
	}
	if err := c.Close(ctx); err != nil || n1.State() != cluster.Stopped {
		t.Fatalf("Close on a done context: %v, n1 %v", err, n1.State())
	}
}

func TestBlockNextHangsOneCallUntilItsContextIsDone(t *testing.T) {
	c := New(3)
	c.BlockNext(string(cluster.OpPause), "n2")
	n2, _ := c.Node("n2")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n2.Pause(ctx) }()
	// Other calls proceed while the pause hangs, and are recorded first.
	n1, _ := c.Node("n1")
	if err := n1.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("blocked pause returned %v before its context was done", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || n2.State() != cluster.Running {
		t.Fatalf("blocked pause: %v, n2 %v; want context.Canceled and no effect", err, n2.State())
	}
	if err := n2.Pause(context.Background()); err != nil || n2.State() != cluster.Paused {
		t.Fatalf("second pause: %v, n2 %v", err, n2.State())
	}
	want := []string{"kill n1", "pause n2 -> context canceled", "pause n2"}
	if got := c.CallStrings(); !slices.Equal(got, want) {
		t.Fatalf("calls:\n got %q\nwant %q", got, want)
	}

	c = New(3)
	c.BlockNext("leader", "")
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer lcancel()
	if l, err := c.Leader(lctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked Leader = %v, %v; want DeadlineExceeded", l, err)
	}
	if l, err := c.Leader(context.Background()); err != nil || l.Name() != "n1" {
		t.Fatalf("Leader after the block = %v, %v; want n1", l, err)
	}
}

func TestFailNextMakesLeaderFailOnce(t *testing.T) {
	ctx := context.Background()
	c := New(3)
	c.FailNext("leader", "", cluster.ErrNoLeader)
	if l, err := c.Leader(ctx); !errors.Is(err, cluster.ErrNoLeader) {
		t.Fatalf("Leader = %v, %v; want the injected ErrNoLeader", l, err)
	}
	if l, err := c.Leader(ctx); err != nil || l.Name() != "n1" {
		t.Fatalf("second Leader = %v, %v; want n1", l, err)
	}
	if len(c.Calls()) != 0 {
		t.Errorf("Leader recorded calls %v", c.CallStrings())
	}
}
