package checker

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/history"
)

// memStore is a linearizable in-memory register store: one mutex, one
// revision counter. With stale set, reads are served from the state as it
// was before any write (a replica that never catches up).
type memStore struct {
	mu    sync.Mutex
	rev   int64
	vals  map[string]string
	revs  map[string]int64
	stale bool
}

func (m *memStore) write(k, v string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	m.vals[k], m.revs[k] = v, m.rev
	return m.rev
}

func (m *memStore) cas(k, from, to string) (bool, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.vals[k]; !ok || cur != from {
		return false, 0
	}
	m.rev++
	m.vals[k], m.revs[k] = to, m.rev
	return true, m.rev
}

func (m *memStore) read(k string) (*string, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[k]
	if !ok || m.stale {
		return nil, 0
	}
	return &v, m.revs[k]
}

// simulate records a run against store: first one write to each of 3 keys,
// then (store.stale set as given) clients concurrent clients each doing ops
// random operations on those keys; a write "times out" with probability
// 1/10 (applied or not, at random), after which the client continues under
// a new process id.
func simulate(t *testing.T, store *memStore, stale bool, clients, ops int, seed int64) []history.Event {
	t.Helper()
	start := time.Now()
	rec := history.NewRecorder(func() time.Duration { return time.Since(start) })
	for i := range 3 {
		key, val := fmt.Sprintf("k%d", i), "seed"
		h := rec.Invoke(clients+i, history.Invocation{F: history.FWrite, Key: key, Value: &val})
		rec.Complete(h, history.OK, history.Completion{Revision: store.write(key, val)})
	}
	store.mu.Lock()
	store.stale = stale
	store.mu.Unlock()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed + int64(c)))
			proc := c
			for i := range ops {
				key := fmt.Sprintf("k%d", rng.Intn(3))
				val := fmt.Sprintf("%d-%d", c, i) // unique per run
				switch rng.Intn(3) {
				case 0:
					h := rec.Invoke(proc, history.Invocation{F: history.FWrite, Key: key, Value: &val})
					if rng.Intn(10) == 0 {
						if rng.Intn(2) == 0 {
							store.write(key, val)
						}
						rec.Complete(h, history.Info, history.Completion{Error: "timeout"})
						proc += clients + 3 // a fresh id, never used by another client
						continue
					}
					rec.Complete(h, history.OK, history.Completion{Revision: store.write(key, val)})
				case 1:
					h := rec.Invoke(proc, history.Invocation{F: history.FRead, Key: key})
					v, rev := store.read(key)
					rec.Complete(h, history.OK, history.Completion{Value: v, Revision: rev})
				default:
					h := rec.Invoke(proc, history.Invocation{F: history.FRead, Key: key})
					v, _ := store.read(key)
					rec.Complete(h, history.OK, history.Completion{Value: v})
					if v == nil {
						continue
					}
					h = rec.Invoke(proc, history.Invocation{F: history.FCAS, Key: key, Expected: v, Value: &val})
					if ok, rev := store.cas(key, *v, val); ok {
						rec.Complete(h, history.OK, history.Completion{Revision: rev})
					} else {
						rec.Complete(h, history.Fail, history.Completion{Error: history.ErrCompareFailed})
					}
				}
			}
		}()
	}
	wg.Wait()
	return rec.Events()
}

func TestRecordedRunsOfAStoreAreJudgedByItsCorrectness(t *testing.T) {
	tests := []struct {
		name  string
		stale bool
		want  Verdict
	}{
		{"a linearizable store is valid", false, Valid},
		{"a store serving stale reads is invalid", true, Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{vals: map[string]string{}, revs: map[string]int64{}}
			events := simulate(t, store, tt.stale, 4, 60, 42)
			res := Check(context.Background(), events, Options{Workload: WorkloadRegister, Timeout: time.Minute})
			if res.Verdict != tt.want {
				t.Fatalf("verdict %v, want %v: %+v", res.Verdict, tt.want, res.Linearizability)
			}
		})
	}
}
