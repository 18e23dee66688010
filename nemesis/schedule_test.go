package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/fake"
	"github.com/quorum-kv/quorum/history"
)

// fakeSleep returns immediately, noting each wait and what Current said
// during it; the stopAfter-th wait cancels the run's context and returns
// its error, as a timer would if the run were stopped then.
type fakeSleep struct {
	stopAfter int
	cancel    context.CancelFunc
	sched     *Schedule
	waits     []time.Duration
	current   []string
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.waits = append(f.waits, d)
	f.current = append(f.current, f.sched.Current())
	if len(f.waits) >= f.stopAfter {
		f.cancel()
	}
	return ctx.Err()
}

// runSchedule runs nemeses on c until the stopAfter-th sleep and returns
// the history, the sleeper and Run's error.
func runSchedule(t *testing.T, c cluster.Cluster, ns []Nemesis, stopAfter int, mod func(*Config)) ([]history.Event, *fakeSleep, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := &fakeSleep{stopAfter: stopAfter, cancel: cancel}
	cfg := Config{Nemeses: ns, Interval: 3 * time.Second, Sleep: fs.sleep}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSchedule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs.sched = s
	var tick atomic.Int64
	rec := history.NewRecorder(func() time.Duration { return time.Duration(tick.Add(1)) })
	// A reader polls Current concurrently, as the progress bar does (the
	// race detector checks that this is safe).
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			_ = s.Current()
			select {
			case <-done:
				return
			default:
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	err = s.Run(ctx, c, rec)
	close(done)
	<-polled
	if cur := s.Current(); cur != "" {
		t.Errorf("Current() after Run = %q", cur)
	}
	return rec.Events(), fs, err
}

// faultEvents renders nemesis events as "invoke kill-one", "ok kill-one",
// "info kill-all: <error>".
func faultEvents(t *testing.T, evs []history.Event) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		if e.Process != history.NemesisProcess {
			t.Errorf("non-nemesis event %v", e)
			continue
		}
		s := string(e.Type) + " " + e.F
		if e.Error != "" {
			s += ": " + e.Error
		}
		out = append(out, s)
	}
	return out
}

func parse(t *testing.T, names string, seed uint64) []Nemesis {
	t.Helper()
	ns, err := Parse(names, opts(seed))
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestScheduleAlternatesQuietAndFaultsRecordingEachAsAnInterval(t *testing.T) {
	fc := fake.New(5)
	fc.SetLeader("n3")
	evs, fs, err := runSchedule(t, fc, parse(t, "kill-one,partition-halves,pause-leader", 1), 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"invoke kill-one", "ok kill-one",
		"invoke partition-halves", "ok partition-halves",
		"invoke pause-leader", "ok pause-leader",
	}
	if got := faultEvents(t, evs); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	for i := 0; i < len(evs); i += 2 {
		if evs[i].Value == nil || evs[i+1].Value == nil || *evs[i].Value != *evs[i+1].Value || !strings.Contains(*evs[i].Value, "targets=") && !strings.Contains(*evs[i].Value, "cut=") {
			t.Errorf("fault %s: start value %v, end value %v; want the same target description", evs[i].F, evs[i].Value, evs[i+1].Value)
		}
	}
	if got := *evs[4].Value; got != "targets=n3" {
		t.Errorf("pause-leader value %q, want targets=n3", got)
	}
	// Quiet, hold, quiet, hold, quiet, hold, quiet (stopped): every wait is
	// the Interval, and Current names the fault exactly while it is held.
	if len(fs.waits) != 7 {
		t.Fatalf("%d waits, want 7", len(fs.waits))
	}
	for i, d := range fs.waits {
		if d != 3*time.Second {
			t.Errorf("wait %d: %v", i, d)
		}
		held := i%2 == 1
		if cur := fs.current[i]; held != (cur != "") {
			t.Errorf("wait %d: Current() = %q", i, cur)
		}
	}
	for i, name := range []string{"kill-one", "partition-halves", "pause-leader"} {
		if cur := fs.current[2*i+1]; cur != name+" "+*evs[2*i].Value {
			t.Errorf("during %s Current() = %q", name, cur)
		}
	}
	calls := fc.CallStrings()
	if len(calls) != 6 || !strings.HasPrefix(calls[0], "kill ") || !strings.HasPrefix(calls[1], "start ") ||
		!strings.HasPrefix(calls[2], "partition ") || calls[3] != "heal" || calls[4] != "pause n3" || calls[5] != "resume n3" {
		t.Errorf("calls %v", calls)
	}
}

func TestScheduleHealsTheActiveFaultWhenStopped(t *testing.T) {
	fc := fake.New(3)
	// Stopped during the first hold: the heal runs although ctx is done
	// (the fake refuses calls on a done context).
	evs, fs, err := runSchedule(t, fc, parse(t, "kill-all", 1), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := faultEvents(t, evs); !slices.Equal(got, []string{"invoke kill-all", "ok kill-all"}) {
		t.Errorf("history %v", got)
	}
	if got := states(fc); got != "n1=running n2=running n3=running" {
		t.Errorf("after Run: %s", got)
	}
	if got, want := fc.CallStrings(), []string{"kill n1", "kill n2", "kill n3", "start n1", "start n2", "start n3"}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if len(fs.waits) != 2 {
		t.Errorf("%d waits, want 2", len(fs.waits))
	}
}

func TestScheduleRecordsAFailedInjectionAndGoesOn(t *testing.T) {
	fc := fake.New(3)
	fc.FailNext(string(cluster.OpKill), "n2", errors.New("boom"))
	evs, fs, err := runSchedule(t, fc, parse(t, "kill-all,partition-one", 1), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := faultEvents(t, evs)
	want := []string{"invoke kill-all", "info kill-all: inject kill-all: kill n2: boom", "invoke partition-one", "ok partition-one"}
	if !slices.Equal(got, want) {
		t.Errorf("history %v, want %v", got, want)
	}
	// No hold after the failed injection: quiet, quiet, hold, quiet.
	if len(fs.waits) != 4 || fs.current[1] != "" || fs.current[2] == "" {
		t.Errorf("waits %v, current %q", fs.waits, fs.current)
	}
	if got := states(fc); got != "n1=running n2=running n3=running" {
		t.Errorf("the partial kill was not healed: %s", got)
	}
}

func TestScheduleReturnsAHealFailureAtShutdown(t *testing.T) {
	fc := fake.New(3)
	for _, n := range nodesN(3) {
		fc.FailNext(string(cluster.OpResume), n, errors.New("stuck"))
	}
	evs, _, err := runSchedule(t, fc, parse(t, "pause-all", 1), 2, nil)
	if err == nil || !strings.Contains(err.Error(), "heal pause-all") || !strings.Contains(err.Error(), "resume n3: stuck") {
		t.Errorf("Run = %v, want the heal error", err)
	}
	if got := faultEvents(t, evs); len(got) != 2 || !strings.HasPrefix(got[1], "info pause-all: heal pause-all") {
		t.Errorf("history %v", got)
	}
}

// stubNemesis is a Nemesis that is not a Planner.
type stubNemesis struct {
	injectErr error
	healed    int
}

func (s *stubNemesis) Name() string                { return "stub" }
func (s *stubNemesis) Check(cluster.Cluster) error { return nil }
func (s *stubNemesis) Inject(context.Context, cluster.Cluster) (Fault, error) {
	return Fault{Nemesis: "stub", Targets: []string{"n1"}}, s.injectErr
}
func (s *stubNemesis) Heal(context.Context, cluster.Cluster, Fault) error { s.healed++; return nil }

func TestScheduleRunsNemesesThatAreNotPlanners(t *testing.T) {
	st := &stubNemesis{injectErr: errors.New("nope")}
	evs, _, err := runSchedule(t, fake.New(1), []Nemesis{st}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := faultEvents(t, evs); !slices.Equal(got, []string{"invoke stub", "info stub: inject stub: nope", "invoke stub", "info stub: inject stub: nope"}) {
		t.Errorf("history %v", got)
	}
	if st.healed != 2 {
		t.Errorf("healed %d times, want 2", st.healed)
	}
}

func TestScheduleRefusesUpFrontWhatTheClusterCannotDo(t *testing.T) {
	evs, fs, err := runSchedule(t, withoutNetwork(fake.New(5)), parse(t, "kill-one,partition-halves,latency", 1), 100, nil)
	if err == nil || !strings.Contains(err.Error(), "partition-halves") || !strings.Contains(err.Error(), "latency") {
		t.Errorf("Run = %v, want both network nemeses refused", err)
	}
	if len(evs) != 0 || len(fs.waits) != 0 {
		t.Errorf("ran anyway: %d events, %d waits", len(evs), len(fs.waits))
	}
}

func TestScheduleWithoutNemesesOnlyWaits(t *testing.T) {
	evs, fs, err := runSchedule(t, fake.New(3), nil, 3, nil)
	if err != nil || len(evs) != 0 || len(fs.waits) != 3 {
		t.Errorf("Run = %v, %d events, %d waits", err, len(evs), len(fs.waits))
	}
}

func TestScheduleRandomOrderIsReproducibleFromTheSeed(t *testing.T) {
	order := func(seed uint64) []string {
		c := fake.New(5)
		evs, _, err := runSchedule(t, c, parse(t, "kill-one,pause-one,partition-one,latency", 9), 41, func(cfg *Config) {
			cfg.Order = Random
			cfg.Rand = seeded(seed)
		})
		if err != nil {
			t.Fatal(err)
		}
		var fs []string
		for _, e := range evs {
			if e.Type == history.Invoke {
				fs = append(fs, e.F)
			}
		}
		return fs
	}
	a, b := order(5), order(5)
	if len(a) != 20 || !slices.Equal(a, b) {
		t.Errorf("seed 5 gave %v then %v", a, b)
	}
	if slices.Equal(a, order(6)) {
		t.Errorf("seeds 5 and 6 gave the same order %v", a)
	}
	if got := fmt.Sprint(a[:4]); got == "[kill-one pause-one partition-one latency]" && slices.Equal(a[4:8], a[:4]) {
		t.Errorf("random order looks round-robin: %v", a)
	}
}

func TestConfigValidateNamesTheBadField(t *testing.T) {
	for _, tc := range []struct {
		mod func(*Config)
		err string
	}{
		{func(c *Config) { c.Interval = -time.Second }, "Interval"},
		{func(c *Config) { c.HealTimeout = -1 }, "HealTimeout"},
		{func(c *Config) { c.Order = Random }, "Rand"},
		{func(c *Config) { c.Order = 7 }, "Order"},
		{func(c *Config) { c.Nemeses = []Nemesis{nil} }, "Nemeses[0]"},
	} {
		cfg := Config{}
		tc.mod(&cfg)
		if _, err := NewSchedule(cfg); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("NewSchedule = %v, want an error naming %s", err, tc.err)
		}
	}
	s, err := NewSchedule(Config{})
	if err != nil || s.cfg.Interval != 5*time.Second || s.cfg.HealTimeout != 30*time.Second {
		t.Errorf("defaults: %v %+v", err, s.cfg)
	}
}

func TestHealAllResumesStartsAndHealsTheNetwork(t *testing.T) {
	ctx := context.Background()
	c := fake.New(4)
	n1, _ := c.Node("n1")
	n2, _ := c.Node("n2")
	_ = n1.Kill(ctx)
	_ = n2.Pause(ctx)
	_ = c.Partition(ctx, links("n3-n4"))
	_ = c.SetLatency(ctx, links("n1-n2 n2-n3"), time.Second, 0)
	setup := len(c.Calls())
	if err := HealAll(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := states(c); got != "n1=running n2=running n3=running n4=running" {
		t.Errorf("states %s", got)
	}
	if len(c.Cut()) != 0 || len(c.Latency()) != 0 {
		t.Errorf("cut %v, shaped links %v", c.Cut(), c.Latency())
	}
	want := []string{"heal", "latency [n1-n2 n1-n3 n1-n4 n2-n3 n2-n4 n3-n4] 0s±0s", "start n1", "resume n2"}
	if got := c.CallStrings()[setup:]; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}

	// A cluster without network capabilities: only the nodes; errors are
	// joined and name the node.
	plain := fake.New(3)
	for _, name := range []string{"n1", "n3"} {
		n, _ := plain.Node(name)
		_ = n.Kill(ctx)
	}
	plain.FailNext(string(cluster.OpStart), "n1", errors.New("no binary"))
	err := HealAll(ctx, withoutNetwork(plain))
	if err == nil || !strings.Contains(err.Error(), "start n1: no binary") {
		t.Errorf("HealAll = %v", err)
	}
	if got := states(plain); got != "n1=stopped n2=running n3=running" {
		t.Errorf("states %s", got)
	}
	if got, want := plain.CallStrings()[2:], []string{"start n1 -> no binary", "start n3"}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// slowPlanner is a Planner whose Apply takes (fake) time, like a container
// kill that lands tens of milliseconds after it is asked for.
type slowPlanner struct {
	clock   *atomic.Int64
	applied int64 // the clock when Apply returned
}

func (s *slowPlanner) Name() string                { return "slow" }
func (s *slowPlanner) Check(cluster.Cluster) error { return nil }
func (s *slowPlanner) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f, _ := s.Plan(ctx, c)
	return f, s.Apply(ctx, c, f)
}
func (s *slowPlanner) Plan(context.Context, cluster.Cluster) (Fault, error) {
	return Fault{Nemesis: "slow", Targets: []string{"n1"}}, nil
}
func (s *slowPlanner) Apply(context.Context, cluster.Cluster, Fault) error {
	s.applied = s.clock.Add(int64(80 * time.Millisecond))
	return nil
}
func (s *slowPlanner) Heal(context.Context, cluster.Cluster, Fault) error { return nil }

// The fault's interval starts once the fault is in force, so that the
// unavailability measured from it is the fault's, not the injection's.
func TestScheduleStartsTheFaultIntervalOnceTheFaultIsInForce(t *testing.T) {
	var clock atomic.Int64
	sp := &slowPlanner{clock: &clock}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := &fakeSleep{stopAfter: 3, cancel: cancel}
	s, err := NewSchedule(Config{Nemeses: []Nemesis{sp}, Interval: time.Second, Sleep: fs.sleep})
	if err != nil {
		t.Fatal(err)
	}
	fs.sched = s
	rec := history.NewRecorder(func() time.Duration { return time.Duration(clock.Load()) })
	if err := s.Run(ctx, fake.New(3), rec); err != nil {
		t.Fatal(err)
	}
	for _, e := range rec.Events() {
		if e.Type == history.Invoke && e.F == "slow" {
			if e.Time < sp.applied {
				t.Fatalf("fault recorded at %v, before its injection finished at %v", time.Duration(e.Time), time.Duration(sp.applied))
			}
			return
		}
	}
	t.Fatal("no fault recorded")
}
