package docker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/quorum-kv/quorum/cluster"
)

// failingStarts is the engine's client with the first `fail` container
// starts answered by an error, as an engine whose runc task died answers.
type failingStarts struct {
	client.APIClient
	fail   int32
	starts atomic.Int32
}

func (c *failingStarts) ContainerStart(ctx context.Context, id string, o client.ContainerStartOptions) (client.ContainerStartResult, error) {
	if c.starts.Add(1) <= c.fail {
		return client.ContainerStartResult{}, errors.New("test: the engine failed this start")
	}
	return c.APIClient.ContainerStart(ctx, id, o)
}

// A container start the engine fails is the engine's trouble, not the
// member's: the backend removes that attempt and creates the cluster once
// more, afresh; a second failure is the error, and both attempts leave
// nothing behind.
func TestEngineStartFailureIsRetriedOnceAfresh(t *testing.T) {
	if engineErr != nil {
		t.Skipf("no Docker engine: %v", engineErr)
	}
	for _, tt := range []struct {
		name   string
		fail   int32
		wantOK bool
	}{
		{"one failed start", 1, true},
		{"a failed start in each attempt", 4, false}, // the first attempt's three starts and the second's first
	} {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := NewEngine(context.Background(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			wrapped := &failingStarts{APIClient: plain.Client(), fail: tt.fail}
			eng, err := NewEngine(context.Background(), testLogger(t), wrapped)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			b := &Backend{Engine: eng, StartTimeout: 90 * time.Second}
			ctx := ctxFor(t, 3*time.Minute)
			c, err := b.Start(ctx, cluster.StartConfig{
				Server: cluster.Server{Label: "quorumd", Image: image}, Size: 3, Dir: t.TempDir(), Seed: 1,
				Logger: testLogger(t), MemberSettings: cluster.MemberSettings{StopGrace: 5 * time.Second},
			})
			if tt.wantOK {
				if err != nil {
					t.Fatalf("start after one failed container start: %v", err)
				}
				if err := cluster.WaitHealthy(ctx, c); err != nil {
					t.Fatal(err)
				}
				if err := c.Close(ctx); err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !errors.Is(err, errEngineStart) || !strings.Contains(err.Error(), "test: the engine failed this start") {
				if c != nil {
					c.Close(ctx)
				}
				t.Fatalf("err = %v, want the engine's start failure", err)
			}
			runs := b.RunIDs()
			if len(runs) != 2 {
				t.Errorf("runs %v, want the failed attempt and one more", runs)
			}
			for _, run := range runs {
				assertNothingLeft(t, eng, run)
			}
		})
	}
}

// lateCreates is the engine's client with one container create that the
// engine carries out a second after the caller gave up on it: the call
// cancels the caller's context (the test's cancel), returns as soon as the
// context it was given is done, and makes the container anyway.
type lateCreates struct {
	client.APIClient
	at     int32 // which create is late (1-based)
	cancel context.CancelFunc
	calls  atomic.Int32
	landed chan struct{} // closed once the late create is done
}

func (c *lateCreates) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	if c.calls.Add(1) != c.at {
		return c.APIClient.ContainerCreate(ctx, o)
	}
	c.cancel()
	type result struct {
		r   client.ContainerCreateResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer close(c.landed)
		time.Sleep(time.Second)
		r, err := c.APIClient.ContainerCreate(context.WithoutCancel(ctx), o)
		done <- result{r, err}
	}()
	select {
	case <-ctx.Done():
		return client.ContainerCreateResult{}, ctx.Err()
	case res := <-done:
		return res.r, res.err
	}
}

// A cancel while the engine is making a container must not leave that
// container behind once the engine finishes: the backend waits out the
// engine's answer, then cleans up, and New reports the cancel.
func TestCancelDuringContainerCreateLeavesNothing(t *testing.T) {
	if engineErr != nil {
		t.Skipf("no Docker engine: %v", engineErr)
	}
	plain, err := NewEngine(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wrapped := &lateCreates{APIClient: plain.Client(), at: 2, cancel: cancel, landed: make(chan struct{})}
	eng, err := NewEngine(context.Background(), testLogger(t), wrapped)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cfg := testConfig(t, eng)
	t.Cleanup(func() { plain.RemoveRun(context.Background(), cfg.RunID) })
	c, err := New(ctx, cfg)
	if err == nil {
		c.Close(context.Background())
		t.Fatal("New succeeded after a cancel during the second member's create")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the cancel", err)
	}
	select {
	case <-wrapped.landed:
	case <-time.After(time.Minute):
		t.Fatal("the late create never finished")
	}
	assertNothingLeft(t, eng, cfg.RunID)
}
