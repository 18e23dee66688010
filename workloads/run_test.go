package workloads

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/history"
)

func TestRegisterRunOnALinearizableStoreIsValid(t *testing.T) {
	cfg := memConfig(WorkloadRegister, 1500)
	st, events := runMem(t, cfg, NewMemStore(MemBugs{}))
	if st.Invoked != 1500 || st.OK+st.Fail+st.Info != st.Invoked || st.Info != 0 {
		t.Fatalf("stats = %+v, want 1500 invoked, all completed, none info", st)
	}
	res := check(t, events, checker.WorkloadRegister)
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s, want valid: %+v", res.Verdict, res)
	}
	for _, f := range []string{history.FRead, history.FWrite, history.FCAS, history.FFinalRead} {
		if res.Counts[f].OK == 0 {
			t.Errorf("no ok %s in %+v", f, res.Counts)
		}
	}
	if res.Counts[history.FCAS].Fail == 0 {
		t.Errorf("no cas failed its compare: %+v", res.Counts)
	}
	if res.FinalReads == nil || len(res.FinalReads.Reads) != len(threeMembers)*cfg.Keys {
		t.Fatalf("final reads %+v, want %d", res.FinalReads, len(threeMembers)*cfg.Keys)
	}
}

func TestSetRunOnALinearizableStoreIsValid(t *testing.T) {
	cfg := memConfig(WorkloadSet, 1000)
	_, events := runMem(t, cfg, NewMemStore(MemBugs{}))
	res := check(t, events, checker.WorkloadSet)
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s, want valid: %+v", res.Verdict, res.Set)
	}
	if res.Set.Acknowledged < 800 || res.Set.FinalReads != len(threeMembers) || res.Counts[history.FRead].OK == 0 {
		t.Fatalf("set result %+v counts %+v: want most adds acknowledged, 3 final reads, some reads", res.Set, res.Counts)
	}
}

func TestStaleReadsFromALaggingMemberAreInvalid(t *testing.T) {
	cfg := memConfig(WorkloadRegister, 1500)
	_, events := runMem(t, cfg, NewMemStore(MemBugs{LaggingNode: "n2", Lag: 3}))
	res := check(t, events, checker.WorkloadRegister)
	if res.Verdict != checker.Invalid || len(res.Linearizability.FailingKeys) == 0 {
		t.Fatalf("verdict %s, linearizability %+v: want invalid", res.Verdict, res.Linearizability)
	}
	if res.FinalReads == nil || res.FinalReads.Verdict != checker.Invalid {
		t.Fatalf("final reads %+v: want the lagging member to disagree", res.FinalReads)
	}
}

func TestLostAddsAreInvalid(t *testing.T) {
	cfg := memConfig(WorkloadSet, 500)
	_, events := runMem(t, cfg, NewMemStore(MemBugs{DropEvery: 7}))
	res := check(t, events, checker.WorkloadSet)
	if res.Verdict != checker.Invalid || len(res.Set.Lost) == 0 {
		t.Fatalf("verdict %s, set %+v: want lost adds", res.Verdict, res.Set)
	}
}

func TestLostWritesAreInvalid(t *testing.T) {
	cfg := memConfig(WorkloadRegister, 1500)
	_, events := runMem(t, cfg, NewMemStore(MemBugs{DropEvery: 5}))
	if res := check(t, events, checker.WorkloadRegister); res.Verdict != checker.Invalid {
		t.Fatalf("verdict %s, want invalid: %+v", res.Verdict, res.Linearizability)
	}
}

func TestProcessContinuesUnderAFreshIDAndConnectionAfterInfo(t *testing.T) {
	cfg := memConfig(WorkloadRegister, 600)
	store := NewMemStore(MemBugs{IndefiniteEvery: 5})
	st, events := runMem(t, cfg, store)
	if st.Info == 0 {
		t.Fatalf("stats %+v: want info outcomes", st)
	}
	infoAt := map[int]int64{}   // process -> index of its info completion
	firstInv := map[int]int64{} // process -> index of its first invoke
	for _, e := range events {
		switch {
		case e.F == history.FFinalRead:
		case e.Type == history.Invoke:
			if idx, gone := infoAt[e.Process]; gone {
				t.Fatalf("process %d invoked at #%d after its info at #%d", e.Process, e.Index, idx)
			}
			if _, ok := firstInv[e.Process]; !ok {
				firstInv[e.Process] = e.Index
			}
		case e.Type == history.Info:
			infoAt[e.Process] = e.Index
		}
	}
	successors := 0
	for p, idx := range infoAt {
		next, ok := firstInv[p+cfg.Concurrency]
		if !ok {
			continue // the run ended first
		}
		successors++
		if next < idx {
			t.Fatalf("process %d started at #%d, before its predecessor %d's info at #%d", p+cfg.Concurrency, next, p, idx)
		}
	}
	if successors == 0 {
		t.Fatal("no process continued after an info")
	}
	dials := 0
	for _, n := range store.Dials() {
		dials += n
	}
	// One dial per process, plus one per member for the final reads.
	if want := len(firstInv) + len(threeMembers); dials != want {
		t.Fatalf("%d dials, want %d: one fresh client per process", dials, want)
	}
	if res := check(t, events, checker.WorkloadRegister); res.Verdict != checker.Valid {
		t.Fatalf("verdict %s, want valid: %+v", res.Verdict, res.Linearizability)
	}
}

// opSequences returns, per worker, the (F, Key, Value) of its invocations
// in order, final reads excluded.
func opSequences(events []history.Event, concurrency int) map[int][]string {
	seqs := map[int][]string{}
	for _, e := range events {
		if e.Type != history.Invoke || e.F == history.FFinalRead {
			continue
		}
		v := ""
		if e.Value != nil {
			v = *e.Value
		}
		w := e.Process % concurrency
		seqs[w] = append(seqs[w], e.F+" "+e.Key+" "+v)
	}
	return seqs
}

func TestSameSeedGivesEachWorkerTheSameOperations(t *testing.T) {
	for _, workload := range []string{WorkloadRegister, WorkloadSet} {
		t.Run(workload, func(t *testing.T) {
			cfg := memConfig(workload, 600)
			run := func(cfg Config) []history.Event {
				// Slow operations down, so that every worker gets a share of
				// the MaxOps budget.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				rec := newRecorder()
				if _, err := Run(ctx, cfg, threeMembers, slowDialer(NewMemStore(MemBugs{}).Dialer(), 200*time.Microsecond), rec, nil); err != nil {
					t.Fatal(err)
				}
				return rec.Events()
			}
			a, b := run(cfg), run(cfg)
			cfg.Seed++
			c := run(cfg)
			sa, sb, sc := opSequences(a, cfg.Concurrency), opSequences(b, cfg.Concurrency), opSequences(c, cfg.Concurrency)
			differs, compared := false, 0
			for w := range cfg.Concurrency {
				// The workers share the MaxOps budget, so a worker may do
				// more operations in one run than in another.
				n := min(len(sa[w]), len(sb[w]), len(sc[w]))
				compared += n
				if !slices.Equal(sa[w][:n], sb[w][:n]) {
					t.Fatalf("worker %d, same seed, different operations:\n%v\n%v", w, sa[w][:n], sb[w][:n])
				}
				if !slices.Equal(sa[w][:n], sc[w][:n]) {
					differs = true
				}
			}
			if compared < 100 {
				t.Fatalf("only %d operations compared", compared)
			}
			if !differs {
				t.Fatal("another seed gave the same operations")
			}
		})
	}
}

func TestRunStopsWhenTheContextIsDoneWithinTheDerivedBound(t *testing.T) {
	cfg := memConfig(WorkloadRegister, 0)
	cfg.Rate = 200
	prog := &Progress{}
	cfg.Progress = prog
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rec := newRecorder()
	polled := make(chan struct{})
	go func() { // a progress bar, polling while Run goes (for -race)
		defer close(polled)
		for ctx.Err() == nil {
			if s := prog.Snapshot(); s.OK+s.Fail+s.Info > s.Invoked {
				t.Errorf("snapshot %+v: more completed than invoked", s)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	st, err := Run(ctx, cfg, threeMembers, NewMemStore(MemBugs{}).Dialer(), rec, nil)
	<-polled
	if err != nil {
		t.Fatal(err)
	}
	bound := int64(200*0.3) + int64(cfg.Concurrency)
	if st.Invoked == 0 || st.Invoked > bound {
		t.Fatalf("invoked %d, want between 1 and %d", st.Invoked, bound)
	}
	if got := prog.Snapshot(); got != st {
		t.Fatalf("progress %+v, run stats %+v", got, st)
	}
	if n := int64(len(rec.Events())); n != 2*st.Invoked {
		t.Fatalf("%d events for %d operations: every operation must be completed", n, st.Invoked)
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	dial := NewMemStore(MemBugs{}).Dialer()
	bad := DefaultConfig()
	bad.Keys = 0
	tests := []struct {
		name    string
		cfg     Config
		targets []Target
		dial    Dialer
		rec     *history.Recorder
		want    string
	}{
		{"bad config", bad, threeMembers, dial, newRecorder(), "Keys"},
		{"no targets", DefaultConfig(), nil, dial, newRecorder(), "no targets"},
		{"no dialer", DefaultConfig(), threeMembers, nil, newRecorder(), "nil dialer"},
		{"no recorder", DefaultConfig(), threeMembers, dial, nil, "nil recorder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg, tt.targets, tt.dial, tt.rec, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run error %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestRunReportsDialFailuresWhenNothingRan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	boom := errors.New("connection refused")
	dial := func(Target) (Client, error) { return nil, boom }
	_, err := Run(ctx, memConfig(WorkloadRegister, 10), threeMembers, dial, newRecorder(), nil)
	if !errors.Is(err, boom) {
		t.Fatalf("Run error %v, want the dial error", err)
	}
}

// slowDialer wraps dial's Clients so that every operation first sleeps d.
func slowDialer(dial Dialer, d time.Duration) Dialer {
	return func(t Target) (Client, error) {
		c, err := dial(t)
		return slowClient{c, d}, err
	}
}

type slowClient struct {
	Client
	d time.Duration
}

func (c slowClient) Read(ctx context.Context, key string, ser bool) (*string, int64, error) {
	time.Sleep(c.d)
	return c.Client.Read(ctx, key, ser)
}

func (c slowClient) Write(ctx context.Context, key, value string) (int64, error) {
	time.Sleep(c.d)
	return c.Client.Write(ctx, key, value)
}

func (c slowClient) CAS(ctx context.Context, key string, exp *string, value string) (bool, int64, error) {
	time.Sleep(c.d)
	return c.Client.CAS(ctx, key, exp, value)
}

func (c slowClient) Add(ctx context.Context, set, el string) error {
	time.Sleep(c.d)
	return c.Client.Add(ctx, set, el)
}

func (c slowClient) ReadSet(ctx context.Context, set string, ser bool) ([]string, error) {
	time.Sleep(c.d)
	return c.Client.ReadSet(ctx, set, ser)
}
