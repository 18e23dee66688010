package harness_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/local"
	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/internal/testbin"
	"github.com/quorum-kv/quorum/reports"
	"github.com/quorum-kv/quorum/workloads"
)

var quorumd string

func TestMain(m *testing.M) { testbin.Main(m, &quorumd) }

func shortConfig(t *testing.T) harness.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end run with real processes (skipped with -short)")
	}
	cfg := harness.DefaultConfig()
	cfg.Store = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Progress = testWriter{t}
	cfg.Seed = 7
	cfg.Server = cluster.Server{Label: "quorumd", Binary: quorumd}
	cfg.Workload.Concurrency = 6
	// A bounded rate: enough operations to see every fault's effect, and
	// machine left over for the packages that test in parallel (an
	// unbounded run keeps both cores busy, and checking and reporting
	// its history takes longer than the run).
	cfg.Workload.Rate = 200
	cfg.CheckTimeout = 30 * time.Second
	cfg.RecoveryTimeout = 20 * time.Second
	return cfg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func run(t *testing.T, cfg harness.Config) *harness.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := harness.Run(ctx, cfg, &local.Backend{})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out
}

// A short run with a leader kill and a leader partition is valid, and its
// saved run directory re-checks offline to the same verdict.
func TestShortRunWithFaultsIsValidAndRechecksOffline(t *testing.T) {
	cfg := shortConfig(t)
	cfg.Nemeses = "kill-leader,partition-leader"
	cfg.NemesisInterval = 2 * time.Second
	cfg.TimeLimit = 9 * time.Second
	out := run(t, cfg)
	res := out.Results
	if res.Check.Verdict != checker.Valid {
		t.Fatalf("verdict %v (%s), want valid; run dir %s", res.Check.Verdict, res.Check.Reason, out.Dir)
	}
	if res.Check.Faults["kill-leader"] != 1 || res.Check.Faults["partition-leader"] != 1 {
		t.Errorf("faults injected: %v", res.Check.Faults)
	}
	for _, f := range []string{"history.jsonl", "results.json", "report.html", "plots/latency-raw.png", "logs/n1.log"} {
		if _, err := os.Stat(filepath.Join(out.Dir, f)); err != nil {
			t.Errorf("run dir lacks %s: %v", f, err)
		}
	}
	latest, err := filepath.EvalSymlinks(filepath.Join(cfg.Store, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.EvalSymlinks(out.Dir); latest != want {
		t.Errorf("store/latest -> %s, want %s", latest, want)
	}
	events, err := history.Load(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	again := checker.Check(context.Background(), events, checker.Options{Timeout: 30 * time.Second})
	if again.Verdict != res.Check.Verdict || again.Linearizability.Operations != res.Check.Linearizability.Operations {
		t.Errorf("offline re-check: %v over %d ops, run said %v over %d", again.Verdict, again.Linearizability.Operations,
			res.Check.Verdict, res.Check.Linearizability.Operations)
	}
	saved, err := reports.LoadResults(out.Dir)
	if err != nil || saved.Run.Seed != 7 {
		t.Fatalf("results.json: seed %d, %v", saved.Run.Seed, err)
	}
}

// The harness must catch a real anomaly: a member cut off from the
// majority keeps serving serializable reads from its stale copy while the
// majority goes on writing. The same run with linearizable reads is valid,
// because the isolated member cannot confirm a read index and refuses.
func TestSerializableReadsOnPartitionedMemberAreCaughtAsStale(t *testing.T) {
	for _, tc := range []struct {
		consistency string
		want        checker.Verdict
	}{
		{workloads.Serializable, checker.Invalid},
		{workloads.Linearizable, checker.Valid},
	} {
		t.Run(tc.consistency, func(t *testing.T) {
			cfg := shortConfig(t)
			cfg.Workload.ReadConsistency = tc.consistency
			cfg.Workload.Keys = 2
			cfg.Workload.Mix = workloads.Mix{Read: 0.6, Write: 0.4}
			cfg.Nemeses = "partition-one"
			cfg.NemesisInterval = 3 * time.Second
			cfg.TimeLimit = 7 * time.Second
			out := run(t, cfg)
			got := out.Results.Check
			if got.Verdict != tc.want {
				t.Fatalf("%s reads under partition-one: verdict %v (%s), want %v; run dir %s",
					tc.consistency, got.Verdict, got.Reason, tc.want, out.Dir)
			}
			if tc.want == checker.Invalid {
				if len(got.Linearizability.FailingKeys) == 0 {
					t.Error("invalid without failing keys")
				}
				if _, err := os.Stat(filepath.Join(out.Dir, checker.VisualizationFile)); err != nil {
					t.Errorf("no porcupine visualization beside the report: %v", err)
				}
			}
		})
	}
}

// The harness tests any server taking etcd's flags: real etcd v3.6 (built
// by tools/build.sh) passes the same short faulted run.
func TestShortRunAgainstRealEtcd(t *testing.T) {
	etcd, err := filepath.Abs("../tools/bin/etcd")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(etcd); err != nil {
		t.Skipf("no real etcd at %s (run: bash tools/build.sh)", etcd)
	}
	cfg := shortConfig(t)
	cfg.Nemeses = "kill-leader,partition-halves"
	cfg.NemesisInterval = 2 * time.Second
	cfg.TimeLimit = 9 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg.Server = cluster.Server{Label: "etcd", Binary: etcd}
	out, err := harness.Run(ctx, cfg, &local.Backend{})
	if err != nil {
		t.Fatalf("run against etcd: %v", err)
	}
	if v := out.Results.Check.Verdict; v != checker.Valid {
		t.Fatalf("etcd: verdict %v (%s); run dir %s", v, out.Results.Check.Reason, out.Dir)
	}
	if filepath.Base(filepath.Dir(out.Dir)) != "etcd-register" {
		t.Errorf("run stored under %s, want etcd-register", out.Dir)
	}
}

// The same seed gives the same operation and fault schedule on real
// processes too (the nemeses here choose their targets at random, so the
// seed alone decides them).
func TestSameSeedGivesTheSameScheduleOnTheLocalBackend(t *testing.T) {
	sched := func() schedule {
		cfg := shortConfig(t)
		cfg.Seed = 21
		cfg.Nemeses = "kill-one,partition-halves"
		cfg.NemesisInterval = time.Second
		cfg.TimeLimit = 5500 * time.Millisecond
		cfg.Workload.Rate = 200
		return scheduleOf(t, run(t, cfg), cfg.Workload.Concurrency)
	}
	a, b := sched(), sched()
	// A restart after kill-one can take seconds on a loaded machine: the
	// second fault may not fit in one of the runs, so one is the floor.
	a.mustEqual(t, b, 20, 1)
}

// A short append run against real quorumd processes with a leader kill is
// valid by checker/elle, with committed and failed-guard transactions, and
// re-checks offline to the same verdict and counts.
func TestShortAppendRunWithALeaderKillIsValidAndRechecksOffline(t *testing.T) {
	cfg := shortConfig(t)
	cfg.Workload.Workload = workloads.WorkloadAppend
	cfg.Workload.Keys = 4
	cfg.Nemeses = "kill-leader"
	cfg.NemesisInterval = 2 * time.Second
	cfg.TimeLimit = 6 * time.Second
	out := run(t, cfg)
	res := out.Results.Check
	if res.Verdict != checker.Valid || res.Append == nil {
		t.Fatalf("verdict %v (%s), append %v; run dir %s", res.Verdict, res.Reason, reports.AppendLines(res.Append), out.Dir)
	}
	if res.Faults["kill-leader"] != 1 || res.Append.OK == 0 || res.Append.Fail == 0 {
		t.Errorf("faults %v, append %v: want one leader kill, committed and failed txns", res.Faults, reports.AppendLines(res.Append))
	}
	events, err := history.Load(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	again := checker.Check(context.Background(), events, checker.Options{Timeout: 30 * time.Second})
	if again.Verdict != res.Verdict || again.Workload != checker.WorkloadAppend || again.Append.OK != res.Append.OK {
		t.Errorf("offline re-check: %v %s %v, run said %v %v", again.Verdict, again.Workload, reports.AppendLines(again.Append),
			res.Verdict, reports.AppendLines(res.Append))
	}
	t.Logf("%v", reports.AppendLines(res.Append))
}

// A short watch run (3 members) with a leader kill and a partition is
// valid by checker/watch — watchers cut by the faults resume — and
// re-checks offline to the same verdict and figures: on quorumd, and on
// real etcd v3.6.
func TestShortWatchRunIsValidAndRechecksOffline(t *testing.T) {
	shortWatchRun(t, shortConfig(t))
}

func TestShortWatchRunAgainstRealEtcdIsValidAndRechecksOffline(t *testing.T) {
	etcd, err := filepath.Abs("../tools/bin/etcd")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(etcd); err != nil {
		t.Skipf("no real etcd at %s (run: bash tools/build.sh)", etcd)
	}
	cfg := shortConfig(t)
	cfg.Server = cluster.Server{Label: "etcd", Binary: etcd}
	shortWatchRun(t, cfg)
}

func shortWatchRun(t *testing.T, cfg harness.Config) {
	t.Helper()
	cfg.Workload.Workload = workloads.WorkloadWatch
	cfg.Workload.Rate = 300
	cfg.Nemeses = "kill-leader,partition-halves"
	cfg.NemesisInterval = 1500 * time.Millisecond
	cfg.TimeLimit = 7 * time.Second
	start := time.Now()
	out := run(t, cfg)
	res := out.Results.Check
	w := res.Watch
	if res.Verdict != checker.Valid || w == nil {
		t.Fatalf("verdict %v (%s), watch %v; run dir %s", res.Verdict, res.Reason, reports.WatchLines(w), out.Dir)
	}
	if w.Events == 0 || w.Revisions == 0 || len(w.Watchers) != 6 || res.Faults["kill-leader"] != 1 {
		t.Errorf("watch %v, faults %v: want events from 6 watchers and one leader kill", reports.WatchLines(w), res.Faults)
	}
	events, err := history.Load(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	again := checker.Check(context.Background(), events, checker.Options{Timeout: 30 * time.Second})
	if again.Verdict != res.Verdict || again.Workload != checker.WorkloadWatch || again.Watch.Events != w.Events || again.Watch.Revisions != w.Revisions {
		t.Errorf("offline re-check: %v %s %v, run said %v %v", again.Verdict, again.Workload, reports.WatchLines(again.Watch), res.Verdict, reports.WatchLines(w))
	}
	ops := 0
	for _, c := range res.Counts {
		ops += c.OK + c.Fail + c.Info
	}
	t.Logf("%d operations, %v in %v: %v", ops, res.Verdict, time.Since(start).Round(time.Millisecond), reports.WatchLines(w))
}

// realEtcd returns tools/bin/etcd's path, or skips.
func realEtcd(t *testing.T) string {
	t.Helper()
	etcd, err := filepath.Abs("../tools/bin/etcd")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(etcd); err != nil {
		t.Skipf("no real etcd at %s (run: bash tools/build.sh)", etcd)
	}
	return etcd
}

// lockConfig is a lock run: 3 members with a 500 ms election timeout (so
// a 1 s session TTL is allowed: etcd's minimum is 1.5 election
// timeouts), 4 locks and 12 clients, each holding its lock 200 ms
// before it increments, and an operation timeout (10 s) longer than any
// pause, so a paused member's clients wait for it instead of giving up.
func lockConfig(t *testing.T, server cluster.Server, fenced bool) harness.Config {
	cfg := shortConfig(t)
	cfg.Server = server
	cfg.Members = cluster.MemberSettings{HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond}
	cfg.Workload.Workload = workloads.WorkloadLock
	cfg.Workload.Keys = 4
	cfg.Workload.Concurrency = 12
	cfg.Workload.LockTTL = 1
	cfg.Workload.LockHoldTime = 200 * time.Millisecond
	cfg.Workload.Timeout = 10 * time.Second
	cfg.Workload.Fenced = fenced
	// Paced by its hold times, not by a rate: the unfenced runs below
	// depend on when each client's next acquire comes.
	cfg.Workload.Rate = 0
	cfg.Nemeses = "none"
	cfg.TimeLimit = 5 * time.Second
	return cfg
}

// lockRun runs cfg and checks its verdict, and that the saved history
// re-checks offline to the same result.
func lockRun(t *testing.T, cfg harness.Config, want checker.Verdict) checker.Result {
	t.Helper()
	start := time.Now()
	out := run(t, cfg)
	res := out.Results.Check
	l := res.Lock
	if res.Verdict != want || l == nil || l.Incrs[0] == 0 {
		t.Fatalf("verdict %v (%s), lock %v: want %v with increments; run dir %s", res.Verdict, res.Reason, reports.LockLines(l), want, out.Dir)
	}
	events, err := history.Load(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	again := checker.Check(context.Background(), events, checker.Options{})
	if again.Verdict != res.Verdict || again.Workload != checker.WorkloadLock || again.Lock.OverlapCount != l.OverlapCount || again.Lock.Holds != l.Holds {
		t.Errorf("offline re-check: %v %s %v, run said %v %v", again.Verdict, again.Workload, reports.LockLines(again.Lock), res.Verdict, reports.LockLines(l))
	}
	ops := 0
	for _, c := range res.Counts {
		ops += c.OK + c.Fail + c.Info
	}
	t.Logf("%d operations, %v in %v:\n%s", ops, res.Verdict, time.Since(start).Round(time.Millisecond), strings.Join(reports.LockLines(l), "\n"))
	return res
}

// Without faults etcd's lock keeps one holder at a time, and every
// increment made under it is in the register, fenced or not: on quorumd
// and on real etcd.
func TestShortLockRunsAreValid(t *testing.T) {
	for _, fenced := range []bool{false, true} {
		t.Run(fmt.Sprintf("fenced=%v", fenced), func(t *testing.T) {
			lockRun(t, lockConfig(t, cluster.Server{Label: "quorumd", Binary: quorumd}, fenced), checker.Valid)
		})
	}
}

func TestShortLockRunsAgainstRealEtcdAreValid(t *testing.T) {
	etcd := realEtcd(t)
	for _, fenced := range []bool{false, true} {
		t.Run(fmt.Sprintf("fenced=%v", fenced), func(t *testing.T) {
			lockRun(t, lockConfig(t, cluster.Server{Label: "etcd", Binary: etcd}, fenced), checker.Valid)
		})
	}
}

// Jepsen's finding: a member paused for longer than the session TTL lets
// its holders' leases expire while they still believe they hold the
// lock; another client is granted it, and an unfenced lock has two
// holders at once. The report names both holders, the first's lease and
// the pause. On quorumd and on real etcd.
func TestUnfencedLockUnderPausesLongerThanTheTTLIsInvalid(t *testing.T) {
	pausedLockRun(t, cluster.Server{Label: "quorumd", Binary: quorumd})
}

func TestUnfencedLockUnderPausesLongerThanTheTTLIsInvalidOnRealEtcd(t *testing.T) {
	pausedLockRun(t, cluster.Server{Label: "etcd", Binary: realEtcd(t)})
}

func pausedLockRun(t *testing.T, server cluster.Server) {
	cfg := lockConfig(t, server, false)
	cfg.Nemeses = "pause-one"
	cfg.NemesisInterval = 3 * time.Second
	cfg.TimeLimit = 17 * time.Second
	res := lockRun(t, cfg, checker.Invalid)
	l := res.Lock
	if l.OverlapCount == 0 {
		t.Fatalf("invalid without two holders at once: %v", reports.LockLines(l))
	}
	o := l.Overlaps[0]
	if len(o.Faults) == 0 || o.Faults[0].F != "pause-one" || o.First.Lease == "" || !strings.Contains(o.Explanation, "longer than the 1 s TTL") {
		t.Errorf("first overlap not explained by the pause: %+v", o)
	}
}

// A short lease run with a leader kill is valid: kept-alive leases keep
// their keys, abandoned ones lose them within TTL + bound, revoked ones
// at the revoke's revision on every member; on quorumd and real etcd.
func TestShortLeaseRunWithALeaderKillIsValid(t *testing.T) {
	leaseRun(t, cluster.Server{Label: "quorumd", Binary: quorumd})
}

func TestShortLeaseRunWithALeaderKillIsValidOnRealEtcd(t *testing.T) {
	leaseRun(t, cluster.Server{Label: "etcd", Binary: realEtcd(t)})
}

func leaseRun(t *testing.T, server cluster.Server) {
	cfg := shortConfig(t)
	cfg.Server = server
	cfg.Workload.Workload = workloads.WorkloadLease
	cfg.Workload.LockTTL = 2
	cfg.Workload.Concurrency = 9
	cfg.Nemeses = "kill-leader"
	cfg.NemesisInterval = 3 * time.Second
	cfg.TimeLimit = 12 * time.Second
	start := time.Now()
	out := run(t, cfg)
	res := out.Results.Check
	l := res.Lease
	if res.Verdict != checker.Valid || l == nil || l.Checked == 0 || res.Faults["kill-leader"] == 0 {
		t.Fatalf("verdict %v (%s), lease %v, faults %v; run dir %s", res.Verdict, res.Reason, reports.LeaseLines(l), res.Faults, out.Dir)
	}
	events, err := history.Load(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	again := checker.Check(context.Background(), events, checker.Options{})
	if again.Verdict != res.Verdict || again.Workload != checker.WorkloadLease || again.Lease.Checked != l.Checked {
		t.Errorf("offline re-check: %v %s %v, run said %v %v", again.Verdict, again.Workload, reports.LeaseLines(again.Lease), res.Verdict, reports.LeaseLines(l))
	}
	ops := 0
	for _, c := range res.Counts {
		ops += c.OK + c.Fail + c.Info
	}
	t.Logf("%d operations %v, %v in %v: %v", ops, res.Counts, res.Verdict, time.Since(start).Round(time.Millisecond), reports.LeaseLines(l))
}
