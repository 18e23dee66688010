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
