package bench

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSpreadMedianOfOddAndEvenCounts(t *testing.T) {
	for _, tc := range []struct {
		xs             []float64
		med, low, high float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{0.9, 1.3, 1.1}, 1.1, 0.9, 1.3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		m, lo, hi := Spread(tc.xs)
		if m != tc.med || lo != tc.low || hi != tc.high {
			t.Errorf("Spread(%v) = %v, %v, %v; want %v, %v, %v", tc.xs, m, lo, hi, tc.med, tc.low, tc.high)
		}
	}
	if m, _, _ := Spread(nil); !math.IsNaN(m) {
		t.Errorf("Spread(nil) median = %v, want NaN", m)
	}
}

func TestPredictIsTheEtcdQuorumTable(t *testing.T) {
	// members: quorum, failures tolerated (etcd docs, "Optimal cluster size").
	want := map[int][2]int{1: {1, 0}, 2: {2, 0}, 3: {2, 1}, 4: {3, 1}, 5: {3, 2}, 6: {4, 2}, 7: {4, 3}, 8: {5, 3}, 9: {5, 4}}
	for n, qt := range want {
		p := Predict(n, 0)
		if p.Quorum != qt[0] || p.Tolerated != qt[1] {
			t.Errorf("Predict(%d) quorum %d tolerated %d, want %d %d", n, p.Quorum, p.Tolerated, qt[0], qt[1])
		}
		if !Predict(n, qt[1]).Writable || Predict(n, qt[1]+1).Writable {
			t.Errorf("size %d: writable must hold with %d lost and not with %d", n, qt[1], qt[1]+1)
		}
	}
	// An even split loses quorum on both sides.
	for _, n := range []int{2, 4, 6} {
		if Predict(n, n/2).Writable {
			t.Errorf("size %d split in halves predicted writable", n)
		}
	}
}

// Bench's fault names are nemeses (aliases where bench has a name of its
// own), and apply to the sizes the nemesis accepts; split-even only to
// even sizes.
func TestFaultNamesAreNemesesAndApplyWhereTheyCan(t *testing.T) {
	for _, tc := range []struct {
		fault, nemesis string
		sizes          []int // sizes 1..7 it applies to
	}{
		{FaultKillLeader, "kill-leader", []int{1, 2, 3, 4, 5, 6, 7}},
		{FaultIsolateLeader, "partition-leader", []int{2, 3, 4, 5, 6, 7}},
		{FaultIsolateMinority, "isolate-minority", []int{3, 4, 5, 6, 7}},
		{FaultIsolateMajority, "isolate-majority", []int{2, 3, 4, 5, 6, 7}},
		{FaultSplitEven, "partition-halves", []int{2, 4, 6}},
		{"pause-one", "pause-one", []int{1, 2, 3, 4, 5, 6, 7}},
		{"partition-bridge", "partition-bridge", []int{3, 4, 5, 6, 7}},
	} {
		if got := NemesisOf(tc.fault); got != tc.nemesis {
			t.Errorf("NemesisOf(%s) = %s, want %s", tc.fault, got, tc.nemesis)
		}
		if err := checkFault(tc.fault); err != nil {
			t.Errorf("checkFault(%s): %v", tc.fault, err)
		}
		var sizes []int
		for n := 1; n <= 7; n++ {
			if faultApplies(tc.fault, n) {
				sizes = append(sizes, n)
			}
		}
		if !slices.Equal(sizes, tc.sizes) {
			t.Errorf("%s applies to sizes %v, want %v", tc.fault, sizes, tc.sizes)
		}
	}
	for _, bad := range []string{"none", "isolate-everyone", ""} {
		if err := checkFault(bad); err == nil {
			t.Errorf("checkFault(%q) accepted it", bad)
		}
	}
}

func fs(size int, fault string, lost, writable, trials int) FaultSummary {
	return FaultSummary{Server: "s", Size: size, Fault: fault, Lost: lost, Trials: trials, WritableTrials: writable, Writable: writable == trials}
}

func TestQuorumTableMeasuredFromFaults(t *testing.T) {
	rows := QuorumTable([]FaultSummary{
		fs(3, FaultKillLeader, 1, 3, 3), fs(3, FaultIsolateMajority, 2, 0, 3),
		fs(4, FaultIsolateMinority, 1, 2, 2), fs(4, FaultSplitEven, 2, 0, 2), fs(4, FaultIsolateMajority, 3, 0, 2),
		// A 5-member cluster that lost writes with 2 members gone disagrees.
		fs(5, FaultIsolateMinority, 2, 1, 3), fs(5, FaultKillLeader, 1, 3, 3), fs(5, FaultIsolateMajority, 3, 0, 3),
		// Only tolerable faults tried: a lower bound, not exact.
		fs(7, FaultKillLeader, 1, 3, 3),
	})
	want := []QuorumRow{
		{Members: 3, PredictedQuorum: 2, PredictedTolerated: 1, MeasuredQuorum: 2, MeasuredTolerated: 1, Exact: true, Agrees: true},
		{Members: 4, PredictedQuorum: 3, PredictedTolerated: 1, MeasuredQuorum: 3, MeasuredTolerated: 1, Exact: true, Agrees: true},
		{Members: 5, PredictedQuorum: 3, PredictedTolerated: 2, MeasuredQuorum: 4, MeasuredTolerated: 1, Exact: false, Agrees: false},
		{Members: 7, PredictedQuorum: 4, PredictedTolerated: 3, MeasuredQuorum: 6, MeasuredTolerated: 1, Exact: false, Agrees: false},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, w := range want {
		r := rows[i]
		r.Server, r.Evidence = "", ""
		if r != w {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
}

func cell(server string, round int, tput float64, p99 time.Duration) LoadCell {
	return LoadCell{Server: server, Round: round, Size: 3, Workload: WorkloadPut, Clients: 1, OK: 100, Measured: time.Second,
		Throughput: tput, Latency: Latency{P50: p99 / 2, P99: p99}}
}

func TestRatiosArePerRoundWithSpread(t *testing.T) {
	servers := []Server{{Label: "a", Binary: "x"}, {Label: "b", Binary: "y"}}
	cells := []LoadCell{
		cell("a", 1, 1000, 4*time.Millisecond), cell("b", 1, 800, 8*time.Millisecond),
		cell("a", 2, 500, 4*time.Millisecond), cell("b", 2, 500, 4*time.Millisecond), // a noisy round for both
		cell("a", 3, 1000, 4*time.Millisecond), cell("b", 3, 900, 6*time.Millisecond),
	}
	trials := []FaultTrial{
		{Server: "a", Round: 1, Size: 3, Fault: FaultKillLeader, Writable: true, Window: time.Second},
		{Server: "a", Round: 1, Size: 3, Fault: FaultKillLeader, Writable: true, Window: 3 * time.Second},
		{Server: "b", Round: 1, Size: 3, Fault: FaultKillLeader, Writable: true, Window: 3 * time.Second},
		{Server: "b", Round: 1, Size: 3, Fault: FaultKillLeader, Writable: false, Window: 10 * time.Second},
	}
	s := Summarize(servers, cells, trials)
	got := map[string]Ratio{}
	for _, r := range s.Ratios {
		got[r.Metric] = r
	}
	tp := got["throughput"]
	if tp.Baseline != "a" || tp.Server != "b" || !slices.Equal(tp.PerRound, []float64{0.8, 1, 0.9}) || tp.Median != 0.9 || tp.Min != 0.8 || tp.Max != 1 {
		t.Errorf("throughput ratio %+v", tp)
	}
	if p := got["p99"]; p.Median != 1.5 || p.Min != 1 || p.Max != 2 {
		t.Errorf("p99 ratio %+v", p)
	}
	// Round 1 medians: a 2s, b 3s (the not-writable trial is left out).
	if u := got["unavailability"]; len(u.PerRound) != 1 || u.Median != 1.5 {
		t.Errorf("unavailability ratio %+v", u)
	}
	if len(s.Load) != 2 || s.Load[0].Server != "a" || s.Load[0].Throughput != 1000 || s.Load[1].Throughput != 800 {
		t.Errorf("load summary %+v", s.Load)
	}
	if a := s.Availability; len(a) != 2 || a[1].Writable || a[1].WritableTrials != 1 || a[1].Median != 3*time.Second {
		t.Errorf("availability summary %+v", a)
	}
}

func TestProcParsers(t *testing.T) {
	stat := []byte("4242 (qu orum) d) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0\n")
	if d, err := parseStatCPU(stat); err != nil || d != 3250*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.25s", d, err)
	}
	status := []byte("Name:\tquorumd\nVmPeak:\t  9000 kB\nVmHWM:\t   2048 kB\nVmRSS:\t 1024 kB\n")
	if b, err := parseHWM(status); err != nil || b != 2048*1024 {
		t.Errorf("parseHWM = %v, %v", b, err)
	}
	if b, err := parseStatusKB(status, "VmRSS"); err != nil || b != 1024*1024 {
		t.Errorf("parseStatusKB VmRSS = %v, %v", b, err)
	}
	if _, err := parseHWM([]byte("Name: x\n")); err == nil {
		t.Error("parseHWM without VmHWM succeeded")
	}
	// user nice system idle iowait irq softirq steal guest guest_nice
	procStat := []byte("cpu  1000 20 300 9000 50 4 6 70 0 0\ncpu0 500 10 150 4500 25 2 3 35 0 0\n")
	if m, err := parseMachineCPU(procStat); err != nil || m.busy != 13300*time.Millisecond || m.steal != 700*time.Millisecond {
		t.Errorf("parseMachineCPU = %+v, %v; want busy 13.3s (user+nice+system+irq+softirq), steal 0.7s", m, err)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu  1 2 3\n", "cpu  1 2 3 4 5 6 x 8\n"} {
		if _, err := parseMachineCPU([]byte(bad)); err == nil {
			t.Errorf("parseMachineCPU(%q) succeeded", bad)
		}
	}
}

// The rest of the machine's share is per cell over all CPUs; cells over
// 10% are counted and warned about, with the worst named.
func TestNoiseSummarizesTheRestOfTheMachine(t *testing.T) {
	cell := func(server string, round int, other, steal time.Duration) LoadCell {
		return LoadCell{Server: server, Round: round, Workload: WorkloadPut, Measured: 10 * time.Second, OtherCPU: other, StealCPU: steal, RestMeasured: true}
	}
	res := Results{Load: []LoadCell{
		cell("etcd", 1, 0, 0),
		cell("quorumd", 1, time.Second, 0),                                 // 5% of 2 CPUs x 10 s
		cell("etcd", 2, 5*time.Second, 3*time.Second),                      // 40%
		cell("quorumd", 2, 2*time.Second, time.Second),                     // 15%
		{Server: "x", Workload: WorkloadWatchMemory},                       // not measured: left out
		{Server: "old", Workload: WorkloadPut, Measured: 10 * time.Second}, // from before the measurement: left out
	}}
	res.Run.Machine.CPUs = 2
	n := Noise(res.Load, 2)
	if n.Cells != 4 || n.Noisy != 2 || n.Worst != 0.4 || n.WorstCell.Server != "etcd" || n.WorstCell.Round != 2 || n.Median != 0.1 {
		t.Errorf("noise %+v", n)
	}
	line := NoiseLine(res)
	if !strings.Contains(line, "median 10% of the 2 CPUs per cell, at most 40% (etcd, put, round 2)") ||
		!strings.Contains(line, "warning: in 2 of 4 cells the rest of the machine took more than 10%") {
		t.Errorf("noise line %q", line)
	}
	res.Load = res.Load[:2]
	if line := NoiseLine(res); strings.Contains(line, "warning") {
		t.Errorf("quiet run warned: %q", line)
	}
	if line := NoiseLine(Results{}); line != "" {
		t.Errorf("no cells: %q", line)
	}
}

func TestKeysHaveTheConfiguredSize(t *testing.T) {
	ks := newKeyspace(8, 256, 1000, 1)
	if len(ks.key(999)) != 8 || len(ks.value) != 256 || ks.key(1) == ks.key(2) {
		t.Errorf("key %q value %d bytes", ks.key(999), len(ks.value))
	}
	if k := newKeyspace(2, 0, 300, 1).key(258); k != "\x01\x02" {
		t.Errorf("2-byte key 258 = %q", k)
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	c := DefaultConfig()
	c.Servers = []Server{{Label: "q", Binary: "/bin/true"}}
	if err := c.Validate(); err != nil {
		t.Fatalf("default config with a server: %v", err)
	}
	bad := c
	bad.Workloads = []string{"scan"}
	if err := bad.Validate(); err == nil || !contains(err.Error(), "Workloads") {
		t.Errorf("bad workload: %v", err)
	}
	bad = c
	bad.KeySize, bad.KeySpace = 1, 1000
	if err := bad.Validate(); err == nil || !contains(err.Error(), "KeySpace") {
		t.Errorf("key space too large for the key size: %v", err)
	}
	if c.connsFor(1000) != 100 || c.connsFor(1) != 1 {
		t.Errorf("conns for 1000 clients %d, for 1 client %d", c.connsFor(1000), c.connsFor(1))
	}
	if s, err := ParseServer("etcd=tools/bin/etcd"); err != nil || s.Label != "etcd" || s.Binary != "tools/bin/etcd" {
		t.Errorf("ParseServer: %+v %v", s, err)
	}
	if s, _ := ParseServer("/x/quorumd"); s.Label != "quorumd" {
		t.Errorf("ParseServer of a bare path: %+v", s)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
