package harness_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/fake"
	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/reports"
	"github.com/quorum-kv/quorum/workloads"
)

// fakeConfig is a short run on cluster/fake against an in-memory store: no
// processes, no network, a second of workload.
func fakeConfig(t *testing.T, store *workloads.MemStore) harness.Config {
	t.Helper()
	cfg := harness.DefaultConfig()
	cfg.Store = t.TempDir()
	cfg.Server = cluster.Server{Label: "memstore", Binary: "in-memory"}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Dial = store.Dialer()
	cfg.Seed = 11
	cfg.Workload.Concurrency = 4
	cfg.Workload.Rate = 400
	cfg.Nemeses = "kill-one,partition-halves,pause-one"
	cfg.NemesisInterval = 100 * time.Millisecond
	cfg.TimeLimit = time.Second
	cfg.RecoveryTimeout = time.Second
	cfg.CheckTimeout = 20 * time.Second
	return cfg
}

func runFake(t *testing.T, cfg harness.Config, b *fake.Backend) *harness.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := harness.Run(ctx, cfg, b)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out
}

// A run on the fake backend goes through every stage — start, faults,
// heal, final reads, check, report — and hands the backend the run's seed,
// size, directory and member settings.
func TestRunOnTheFakeBackendWritesAValidRunAndPassesTheSeedDown(t *testing.T) {
	b := &fake.Backend{}
	cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{}))
	cfg.Members = cluster.MemberSettings{ElectionTimeout: 700 * time.Millisecond, ExtraArgs: []string{"--x"}}
	out := runFake(t, cfg, b)
	res := out.Results
	if res.Check.Verdict != checker.Valid {
		t.Fatalf("verdict %v (%s), want valid; run dir %s", res.Check.Verdict, res.Check.Reason, out.Dir)
	}
	for _, f := range []string{"history.jsonl", "results.json", "report.html", "plots/throughput.png"} {
		if _, err := os.Stat(filepath.Join(out.Dir, f)); err != nil {
			t.Errorf("run dir lacks %s: %v", f, err)
		}
	}
	if filepath.Base(filepath.Dir(out.Dir)) != "memstore-register" || res.Run.Backend != "fake" || res.Run.Seed != 11 {
		t.Errorf("run %s: backend %q seed %d", out.Dir, res.Run.Backend, res.Run.Seed)
	}
	cfgs := b.Configs()
	if len(cfgs) != 1 {
		t.Fatalf("%d clusters started", len(cfgs))
	}
	sc := cfgs[0]
	if sc.Seed != 11 || sc.Size != 3 || sc.Dir != out.Dir || sc.Server != cfg.Server ||
		sc.ElectionTimeout != 700*time.Millisecond || !slices.Equal(sc.ExtraArgs, []string{"--x"}) {
		t.Errorf("backend got %+v", sc)
	}
	c := b.Clusters()[0]
	if !c.Closed() {
		t.Error("cluster not closed after the run")
	}
	calls := strings.Join(c.CallStrings(), "; ")
	for _, want := range []string{"kill n", "partition [", "pause n", "resume n", "heal"} {
		if !strings.Contains(calls, want) {
			t.Errorf("no %q among the fake's calls: %s", want, calls)
		}
	}
	for _, n := range []string{"kill-one", "partition-halves", "pause-one"} {
		if res.Check.Faults[n] == 0 {
			t.Errorf("fault %s never injected: %v", n, res.Check.Faults)
		}
	}
	saved, err := reports.LoadResults(out.Dir)
	if err != nil || saved.Check.Verdict != checker.Valid {
		t.Fatalf("results.json: %v, %v", saved.Check.Verdict, err)
	}
}

// The harness reports a server bug it is shown: a member serving reads
// from a replica three revisions behind is caught as not linearizable.
func TestRunOnTheFakeBackendCatchesStaleReads(t *testing.T) {
	cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{LaggingNode: "n2", Lag: 3}))
	cfg.Nemeses = "none"
	cfg.Workload.Keys = 2
	out := runFake(t, cfg, &fake.Backend{})
	if v := out.Results.Check.Verdict; v != checker.Invalid {
		t.Fatalf("verdict %v (%s), want invalid", v, out.Results.Check.Reason)
	}
}

// A cluster that does not start is a harness error naming where the logs
// are, not a verdict.
func TestRunFailsWhenTheBackendCannotStart(t *testing.T) {
	b := &fake.Backend{}
	b.FailNextStart(errors.New("no room"))
	_, err := harness.Run(context.Background(), fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{})), b)
	if err == nil || !strings.Contains(err.Error(), "no room") || !strings.Contains(err.Error(), "logs") {
		t.Fatalf("err = %v, want the start failure with the logs' place", err)
	}
}

// A nemesis the cluster cannot do is refused before the run starts.
func TestRunRefusesANemesisTheClusterCannotDo(t *testing.T) {
	cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{}))
	cfg.Nodes = 2
	cfg.Nemeses = "partition-bridge"
	_, err := harness.Run(context.Background(), cfg, &fake.Backend{})
	if err == nil || !strings.Contains(err.Error(), "at least 3 nodes") {
		t.Fatalf("err = %v, want partition-bridge refused on 2 nodes", err)
	}
}

// The same seed gives the same schedule: each worker invokes the same
// operations on the same keys in the same order, and the faults hit the
// same targets in the same order. Different seeds give different ones.
func TestSameSeedGivesTheSameOperationAndFaultScheduleOnTheFake(t *testing.T) {
	sched := func(seed int64) schedule {
		cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{}))
		cfg.Seed = seed
		return scheduleOf(t, runFake(t, cfg, &fake.Backend{}), cfg.Workload.Concurrency)
	}
	a, b, other := sched(5), sched(5), sched(6)
	a.mustEqual(t, b, 20, 3)
	if a.equalPrefix(other, 20) {
		t.Error("seeds 5 and 6 gave the same operation schedule")
	}
}

// schedule is what a seed determines in a run: per worker, the operation
// names and keys it invoked in order; and the faults with their targets.
type schedule struct {
	ops    [][]string
	faults []string
}

// scheduleOf reads the schedule from a run's saved history.
func scheduleOf(t *testing.T, out *harness.Outcome, workers int) schedule {
	t.Helper()
	events, err := history.Load(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	s := schedule{ops: make([][]string, workers)}
	for _, e := range events {
		switch {
		case e.Type != history.Invoke:
		case e.Process == history.NemesisProcess:
			v := ""
			if e.Value != nil {
				v = *e.Value
			}
			s.faults = append(s.faults, e.F+" "+v)
		case e.F != history.FFinalRead:
			w := e.Process % workers
			s.ops[w] = append(s.ops[w], e.F+" "+e.Key)
		}
	}
	return s
}

func (s schedule) equalPrefix(o schedule, n int) bool {
	for w := range s.ops {
		k := min(len(s.ops[w]), len(o.ops[w]), n)
		if !slices.Equal(s.ops[w][:k], o.ops[w][:k]) {
			return false
		}
	}
	return true
}

// mustEqual compares the two schedules over what both runs got to (the
// runs' lengths depend on timing): at least minOps operations of every
// worker and minFaults faults.
func (s schedule) mustEqual(t *testing.T, o schedule, minOps, minFaults int) {
	t.Helper()
	for w := range s.ops {
		k := min(len(s.ops[w]), len(o.ops[w]))
		if k < minOps {
			t.Fatalf("worker %d invoked only %d operations in one run", w, k)
		}
		if !slices.Equal(s.ops[w][:k], o.ops[w][:k]) {
			t.Errorf("worker %d: operations differ:\n%v\n%v", w, s.ops[w][:k], o.ops[w][:k])
		}
	}
	k := min(len(s.faults), len(o.faults))
	if k < minFaults {
		t.Fatalf("only %d faults in one run: %v / %v", k, s.faults, o.faults)
	}
	if !slices.Equal(s.faults[:k], o.faults[:k]) {
		t.Errorf("faults differ:\n%s\n%s", fmt.Sprint(s.faults[:k]), fmt.Sprint(o.faults[:k]))
	}
}

// The append workload runs end to end on the fake: an atomic store is
// valid by checker/elle, and results.json and the report carry elle's
// result; a member serving read-only transactions from a lagging replica
// is caught.
func TestAppendRunOnTheFakeBackendIsValidAndCatchesStaleReads(t *testing.T) {
	cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{}))
	cfg.Workload.Workload = workloads.WorkloadAppend
	cfg.Workload.Keys = 3
	out := runFake(t, cfg, &fake.Backend{})
	res := out.Results.Check
	if res.Verdict != checker.Valid || res.Append == nil || res.Append.OK == 0 {
		t.Fatalf("verdict %v (%s), append %+v: want valid with ok txns; run dir %s", res.Verdict, res.Reason, res.Append, out.Dir)
	}
	saved, err := reports.LoadResults(out.Dir)
	if err != nil || saved.Check.Append == nil || saved.Check.Append.OK != res.Append.OK {
		t.Fatalf("results.json append %+v, %v", saved.Check.Append, err)
	}
	html, err := os.ReadFile(filepath.Join(out.Dir, "report.html"))
	if err != nil || !strings.Contains(string(html), "List-append transactions (Elle): valid") {
		t.Fatalf("report.html lacks the append result (%v)", err)
	}

	cfg = fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{LaggingNode: "n2", Lag: 3}))
	cfg.Workload.Workload = workloads.WorkloadAppend
	cfg.Workload.Keys = 3
	cfg.Nemeses = "none"
	out = runFake(t, cfg, &fake.Backend{})
	res = out.Results.Check
	if res.Verdict != checker.Invalid || len(res.Append.Anomalies) == 0 {
		t.Fatalf("verdict %v (%s), append %+v: want invalid", res.Verdict, res.Reason, res.Append)
	}
	html, _ = os.ReadFile(filepath.Join(out.Dir, "report.html"))
	if !strings.Contains(string(html), "anomalies: ") {
		t.Fatalf("report.html does not count the anomalies")
	}
	t.Logf("stale reads: %v", reports.AppendLines(res.Append))
}

// The watch workload runs end to end on the fake: a correct store whose
// watches are cut now and then is valid, and results.json and the report
// carry the watch result; a store whose watches skip events is caught,
// and the report names the watchers and the revisions they missed.
func TestWatchRunOnTheFakeBackendIsValidAndCatchesSkippedEvents(t *testing.T) {
	cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{WatchCutEvery: 9}))
	cfg.Workload.Workload = workloads.WorkloadWatch
	cfg.Workload.Keys = 4
	out := runFake(t, cfg, &fake.Backend{})
	res := out.Results.Check
	if res.Verdict != checker.Valid || res.Watch == nil || res.Watch.Events == 0 || len(res.Watch.Watchers) != 6 {
		t.Fatalf("verdict %v (%s), watch %v: want valid with events from 6 watchers; run dir %s", res.Verdict, res.Reason, reports.WatchLines(res.Watch), out.Dir)
	}
	saved, err := reports.LoadResults(out.Dir)
	if err != nil || saved.Check.Watch == nil || saved.Check.Watch.Events != res.Watch.Events {
		t.Fatalf("results.json watch %+v, %v", saved.Check.Watch, err)
	}
	html, err := os.ReadFile(filepath.Join(out.Dir, "report.html"))
	if err != nil || !strings.Contains(string(html), "Watches: valid") {
		t.Fatalf("report.html lacks the watch result (%v)", err)
	}

	cfg = fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{WatchSkipEvery: 40}))
	cfg.Workload.Workload = workloads.WorkloadWatch
	cfg.Workload.Keys = 4
	cfg.Nemeses = "none"
	out = runFake(t, cfg, &fake.Backend{})
	res = out.Results.Check
	if res.Verdict != checker.Invalid || res.Watch.Counts["reliable"] == 0 {
		t.Fatalf("verdict %v (%s), watch %v: want invalid, unreliable", res.Verdict, res.Reason, reports.WatchLines(res.Watch))
	}
	html, _ = os.ReadFile(filepath.Join(out.Dir, "report.html"))
	for _, want := range []string{"Watches: invalid", "anomalies: ", "reliable", "at revisions "} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	t.Logf("skipped events: %v", reports.WatchLines(res.Watch))
}

// The lock workload runs end to end on the fake: a store whose lock
// grants one holder at a time is valid, with every increment accounted
// for, fenced and unfenced; a lock that sometimes grants a second holder
// is caught, and the report names both holders.
func TestLockRunOnTheFakeBackendIsValidAndCatchesTwoHolders(t *testing.T) {
	for _, fenced := range []bool{false, true} {
		cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{}))
		cfg.Workload.Workload = workloads.WorkloadLock
		cfg.Workload.Keys = 2
		cfg.Workload.Fenced = fenced
		cfg.Workload.LockHoldTime = 2 * time.Millisecond
		out := runFake(t, cfg, &fake.Backend{})
		res := out.Results.Check
		if res.Verdict != checker.Valid || res.Lock == nil || res.Lock.Incrs[0] == 0 || res.Lock.Fenced != fenced {
			t.Fatalf("fenced %v: verdict %v (%s), lock %v: want valid with increments; run dir %s", fenced, res.Verdict, res.Reason, reports.LockLines(res.Lock), out.Dir)
		}
		html, err := os.ReadFile(filepath.Join(out.Dir, "report.html"))
		if err != nil || !strings.Contains(string(html), "Lock: valid") {
			t.Fatalf("report.html lacks the lock result (%v)", err)
		}
		t.Logf("fenced %v: %v", fenced, reports.LockLines(res.Lock))
	}

	cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{LockDoubleGrantEvery: 5}))
	cfg.Workload.Workload = workloads.WorkloadLock
	cfg.Workload.Keys = 1
	cfg.Nemeses = "none"
	out := runFake(t, cfg, &fake.Backend{})
	res := out.Results.Check
	if res.Verdict != checker.Invalid || res.Lock.OverlapCount == 0 {
		t.Fatalf("verdict %v (%s), lock %v: want invalid, two holders", res.Verdict, res.Reason, reports.LockLines(res.Lock))
	}
	html, _ := os.ReadFile(filepath.Join(out.Dir, "report.html"))
	for _, want := range []string{"Lock: invalid", "two holders of", "process "} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	saved, err := reports.LoadResults(out.Dir)
	if err != nil || saved.Check.Lock == nil || saved.Check.Lock.OverlapCount != res.Lock.OverlapCount {
		t.Fatalf("results.json lock %+v, %v", saved.Check.Lock, err)
	}
	t.Logf("two holders: %v", reports.LockLines(res.Lock))
}

// The lease workload runs end to end on the fake: a store whose leases
// expire on time is valid; one whose leases never expire is caught, and
// the report names the lease and the keys that outlived their bound.
func TestLeaseRunOnTheFakeBackendIsValidAndCatchesLeasesThatNeverExpire(t *testing.T) {
	for _, bug := range []bool{false, true} {
		cfg := fakeConfig(t, workloads.NewMemStore(workloads.MemBugs{LeaseNeverExpires: bug}))
		cfg.Workload.Workload = workloads.WorkloadLease
		cfg.Workload.LockTTL = 1
		cfg.Workload.LeaseBound = 200 * time.Millisecond
		cfg.Workload.Concurrency = 6
		cfg.TimeLimit = 3 * time.Second
		out := runFake(t, cfg, &fake.Backend{})
		res := out.Results.Check
		want := checker.Valid
		if bug {
			want = checker.Invalid
		}
		if res.Verdict != want || res.Lease == nil || res.Lease.Checked == 0 || bug != (res.Lease.Counts["outlived-bound"] > 0) {
			t.Fatalf("never-expire %v: verdict %v (%s), lease %v: want %v; run dir %s", bug, res.Verdict, res.Reason, reports.LeaseLines(res.Lease), want, out.Dir)
		}
		html, err := os.ReadFile(filepath.Join(out.Dir, "report.html"))
		if err != nil || !strings.Contains(string(html), "Leases: "+want.String()) {
			t.Fatalf("report.html lacks the lease result (%v)", err)
		}
		t.Logf("never-expire %v: %v", bug, reports.LeaseLines(res.Lease))
	}
}
