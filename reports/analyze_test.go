package reports

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/history"
)

const (
	usec = time.Microsecond
	msec = time.Millisecond
	sec  = time.Second
)

// sequential returns ops on process 0..n-1 with the given latencies, each
// invoked 1s after the previous one.
func sequential(f string, typ history.Type, lats []time.Duration) []opSpec {
	var ops []opSpec
	for i, l := range lats {
		inv := time.Duration(i) * sec
		ops = append(ops, opSpec{i, f, inv, inv + l, typ})
	}
	return ops
}

// near reports whether got is within the histogram's precision (0.1%) of
// want.
func near(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= 0.001*float64(want)
}

func findOps(t *testing.T, sum Summary, f string, out history.Type) OpStats {
	t.Helper()
	for _, o := range sum.Ops {
		if o.F == f && o.Outcome == out {
			return o
		}
	}
	t.Fatalf("no %s %s in %+v", f, out, sum.Ops)
	return OpStats{}
}

func TestAnalyzeLatencyQuantilesAreExactBelowTwoMilliseconds(t *testing.T) {
	var lats []time.Duration
	for i := 1000; i >= 1; i-- { // order must not matter
		lats = append(lats, time.Duration(i)*usec)
	}
	sum := Analyze(build(sequential(history.FRead, history.OK, lats), nil), Options{Bucket: sec})
	got := findOps(t, sum, history.FRead, history.OK)
	want := Quantiles{P50: 500 * usec, P90: 900 * usec, P99: 990 * usec, P999: 999 * usec, Max: 1000 * usec}
	if got.Count != 1000 || got.Latency == nil || *got.Latency != want {
		t.Fatalf("read ok = %+v %+v, want count 1000 and %+v", got, got.Latency, want)
	}
}

func TestAnalyzeLatencyQuantilesWithinHistogramPrecision(t *testing.T) {
	var lats []time.Duration
	for i := 1; i <= 100; i++ {
		lats = append(lats, time.Duration(i)*msec)
	}
	sum := Analyze(build(sequential(history.FWrite, history.OK, lats), nil), Options{Bucket: sec})
	q := findOps(t, sum, history.FWrite, history.OK).Latency
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{{"p50", q.P50, 50 * msec}, {"p90", q.P90, 90 * msec}, {"p99", q.P99, 99 * msec}, {"p99.9", q.P999, 100 * msec}} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v within 0.1%%", c.name, c.got, c.want)
		}
	}
	if q.Max != 100*msec {
		t.Errorf("max = %v, want exactly 100ms", q.Max)
	}
}

func TestAnalyzeExcludesInfoOpsFromLatencyButCountsThem(t *testing.T) {
	ops := []opSpec{
		{0, history.FWrite, 0, 10 * msec, history.OK},
		{1, history.FWrite, 0, 20 * msec, history.OK},
		{2, history.FWrite, 0, 5 * sec, history.Info}, // timed out
		{3, history.FWrite, 0, -1, history.Info},      // never completed
		{4, history.FWrite, 0, 30 * msec, history.Fail},
	}
	sum := Analyze(build(ops, nil), Options{Bucket: sec})
	if q := findOps(t, sum, history.FWrite, history.OK).Latency; q == nil || q.Max != 20*msec || !near(q.P50, 10*msec) {
		t.Fatalf("ok latency %+v, want p50 10ms, max 20ms", q)
	}
	info := findOps(t, sum, history.FWrite, history.Info)
	if info.Count != 2 || info.Latency != nil {
		t.Fatalf("info = %+v, want count 2 and no latency", info)
	}
	if q := findOps(t, sum, history.FWrite, history.Fail).Latency; q == nil || q.Max != 30*msec {
		t.Fatalf("fail latency %+v, want max 30ms", q)
	}
	if sum.Total != 5 || sum.OK != 2 || sum.Fail != 1 || sum.Info != 2 {
		t.Fatalf("counts total=%d ok=%d fail=%d info=%d, want 5/2/1/2", sum.Total, sum.OK, sum.Fail, sum.Info)
	}
	// The timeline counts the timed-out op at its completion, and leaves
	// out the one that never completed.
	var infoInTimeline int
	for _, b := range sum.Timeline {
		infoInTimeline += b.Info
	}
	if infoInTimeline != 1 {
		t.Fatalf("timeline info ops = %d, want 1", infoInTimeline)
	}
}

func TestAnalyzeThroughputAndAvailabilityPerBucket(t *testing.T) {
	ops := []opSpec{
		{0, history.FWrite, 100 * msec, 500 * msec, history.OK},
		{1, history.FRead, 100 * msec, 500 * msec, history.OK},
		{2, history.FRead, 200 * msec, 600 * msec, history.OK},
		{3, history.FCAS, 300 * msec, 900 * msec, history.OK},
		{0, history.FWrite, 1100 * msec, 1200 * msec, history.OK},
		{1, history.FWrite, 1100 * msec, 1400 * msec, history.Fail},
		{2, history.FRead, 1100 * msec, 1600 * msec, history.Fail},
		{3, history.FWrite, 1100 * msec, 1800 * msec, history.Info},
		{9, history.FFinalRead, 50 * sec, 51 * sec, history.OK}, // after the workload: not in the timeline
	}
	sum := Analyze(build(ops, []faultSpec{{"pause", 2 * sec, 3 * sec}}), Options{Bucket: sec})
	if sum.Duration != 3*sec {
		t.Fatalf("duration %v, want 3s (final reads excluded)", sum.Duration)
	}
	if want := 5.0 / 3; math.Abs(sum.Throughput-want) > 1e-9 {
		t.Fatalf("throughput %v, want %v", sum.Throughput, want)
	}
	avail := func(a float64) *float64 { return &a }
	want := []Bucket{
		{Start: 0, OK: 4, OKPerSecond: 4, Availability: avail(1)},
		{Start: sec, OK: 1, Fail: 2, Info: 1, OKPerSecond: 1, Availability: avail(0.25)},
		{Start: 2 * sec},
	}
	if len(sum.Timeline) != len(want) {
		t.Fatalf("timeline has %d buckets, want %d: %+v", len(sum.Timeline), len(want), sum.Timeline)
	}
	for i, w := range want {
		got := sum.Timeline[i]
		got.Latency = nil
		if !reflect.DeepEqual(got, w) {
			t.Errorf("bucket %d = %+v, want %+v", i, got, w)
		}
	}
	if l := sum.Timeline[0].Latency; l == nil || !near(l.P50, 400*msec) || l.P99 != 600*msec {
		t.Errorf("bucket 0 latency %+v, want p50 400ms, p99 600ms", l)
	}
	if l := sum.Timeline[1].Latency; l == nil || l.P50 != 100*msec {
		t.Errorf("bucket 1 latency %+v, want p50 100ms (ok ops only)", l)
	}
}

func TestAnalyzeUnavailabilityPerFault(t *testing.T) {
	ops := []opSpec{
		{0, history.FWrite, 900 * msec, 1500 * msec, history.OK},    // invoked before the fault: not a recovery
		{1, history.FRead, 1200 * msec, 1250 * msec, history.OK},    // a read: not a write
		{2, history.FWrite, 1050 * msec, 1300 * msec, history.Fail}, // failed
		{3, history.FWrite, 1100 * msec, 2300 * msec, history.OK},   // first recovery: 1.3s
		{4, history.FCAS, 2500 * msec, 2600 * msec, history.OK},
		{5, history.FRead, 5 * sec, 6 * sec, history.OK}, // nothing writes after the second fault
	}
	faults := []faultSpec{{"kill-leader", 1 * sec, 4 * sec}, {"partition", 5 * sec, -1}}
	sum := Analyze(build(ops, faults), Options{Bucket: sec})
	want := []FaultWindow{
		{Fault: "kill-leader", Targets: "n1", Start: 1 * sec, End: 4 * sec, Recovered: true, Unavailable: 1300 * msec, LongestGap: 1400 * msec},
		{Fault: "partition", Targets: "n1", Start: 5 * sec, End: 6 * sec, Open: true, Unavailable: 1 * sec, LongestGap: 1 * sec},
	}
	if !reflect.DeepEqual(sum.Faults, want) {
		t.Fatalf("faults\n got %+v\nwant %+v", sum.Faults, want)
	}
	wantStats := []FaultStats{
		{Fault: "kill-leader", Count: 1, MaxUnavailable: 1300 * msec, MaxGap: 1400 * msec},
		{Fault: "partition", Count: 1, MaxUnavailable: 1 * sec, MaxGap: 1 * sec, Unrecovered: 1},
	}
	if !reflect.DeepEqual(sum.FaultStats, wantStats) {
		t.Fatalf("fault stats\n got %+v\nwant %+v", sum.FaultStats, wantStats)
	}
	if w, ok := sum.Worst(); !ok || w.Fault != "kill-leader" {
		t.Fatalf("worst = %+v %v, want the kill-leader window", w, ok)
	}
}

func TestAnalyzeWriteInvokedAtTheFaultStartCountsAsRecovery(t *testing.T) {
	ops := []opSpec{{0, history.FAdd, 1 * sec, 1200 * msec, history.OK}}
	sum := Analyze(build(ops, []faultSpec{{"kill", 1 * sec, 2 * sec}}), Options{})
	if w := sum.Faults[0]; !w.Recovered || w.Unavailable != 200*msec || w.LongestGap != 800*msec {
		t.Fatalf("window %+v, want recovered after 200ms, longest gap 800ms", w)
	}
}

// The lease and lock workloads' state changes count as writes for
// unavailability (the first ok one invoked after the fault ends it); their
// reads and keep-alives do not.
func TestAnalyzeLeaseAndLockWritesEndUnavailability(t *testing.T) {
	for _, tt := range []struct {
		read, write string
	}{
		{history.FLeaseRead, history.FLeasePut}, {history.FKeepAlive, history.FGrant}, {history.FKeepAlive, history.FRevoke},
		{history.FLeaseRead, history.FAcquire}, {history.FLeaseRead, history.FRelease}, {history.FLeaseRead, history.FIncr},
	} {
		ops := []opSpec{
			{0, tt.read, 1100 * msec, 1200 * msec, history.OK},
			{1, tt.write, 1500 * msec, 1700 * msec, history.OK},
		}
		sum := Analyze(build(ops, []faultSpec{{"kill-leader", 1 * sec, 2 * sec}}), Options{})
		if w := sum.Faults[0]; !w.Recovered || w.Unavailable != 700*msec {
			t.Errorf("%s after the fault (%s before it): window %+v, want recovered after 700ms", tt.write, tt.read, w)
		}
	}
}

func TestAnalyzeEmptyHistory(t *testing.T) {
	sum := Analyze(nil, Options{})
	if sum.Error != "" || sum.Total != 0 || sum.Throughput != 0 || len(sum.Ops) != 0 || len(sum.Timeline) != 0 || len(sum.Faults) != 0 {
		t.Fatalf("summary of nothing = %+v", sum)
	}
	if sum.Bucket != sec {
		t.Fatalf("bucket %v, want 1s", sum.Bucket)
	}
	if _, ok := sum.Worst(); ok {
		t.Fatal("Worst of no faults reported one")
	}
}

func TestAnalyzeMalformedHistorySaysWhy(t *testing.T) {
	events := []history.Event{{Index: 0, Time: 1, Type: history.OK, Process: 0, F: history.FRead, Key: "k"}}
	sum := Analyze(events, Options{})
	if !strings.Contains(sum.Error, "nothing in flight") || sum.Bucket == 0 {
		t.Fatalf("summary %+v, want an error naming the problem", sum)
	}
}

func TestBucketSizeAdaptsToRunLength(t *testing.T) {
	tests := []struct {
		d, want time.Duration
	}{
		{0, sec},
		{50 * msec, 10 * msec},
		{5 * sec, 500 * msec},
		{9 * sec, 500 * msec},
		{10 * sec, sec},
		{10 * time.Minute, sec},
		{11 * time.Minute, 2 * sec},
		{time.Hour, 10 * sec},
		{100 * time.Hour, 10 * time.Minute},
		{1000 * time.Hour, 100 * time.Minute},
	}
	for _, tt := range tests {
		if got := BucketSize(tt.d); got != tt.want {
			t.Errorf("BucketSize(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
