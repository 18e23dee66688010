package bench

import (
	"strings"
	"testing"
	"time"
)

func results(server string, tput float64, p99, window time.Duration, writable bool) Results {
	r := Results{Schema: Schema, Run: RunInfo{Servers: []Server{{Label: server, Binary: "/x/" + server}}}}
	r.Summary.Load = []LoadSummary{{Server: server, Workload: WorkloadPut, Size: 3, Clients: 1000, Throughput: tput, P50: p99 / 4, P99: p99}}
	fsum := FaultSummary{Server: server, Size: 3, Fault: FaultKillLeader, Lost: 1, Trials: 5, Writable: writable, PredictedWritable: true}
	if writable {
		fsum.WritableTrials, fsum.Median, fsum.Max = 5, window, window
	}
	r.Summary.Availability = []FaultSummary{fsum}
	return r
}

func worse(c Comparison) []string {
	var out []string
	for _, ch := range c.Changes {
		if ch.Worse {
			out = append(out, ch.Metric)
		}
	}
	return out
}

func TestCompareFlagsASyntheticRegression(t *testing.T) {
	base := results("quorumd", 9000, 100*time.Millisecond, 1400*time.Millisecond, true)
	next := results("quorumd", 7000, 130*time.Millisecond, 2*time.Second, true) // -22%, +30%, +43%
	c := Compare(base, next, 0.10)
	if c.Regressions != 4 || strings.Join(worse(c), ",") != "throughput,p50,p99,unavailability" {
		t.Errorf("regressions %d %v, want throughput, p50, p99, unavailability:\n%s", c.Regressions, worse(c), c.Format())
	}
	if !strings.Contains(c.Format(), "WORSE") {
		t.Errorf("table does not mark the regression:\n%s", c.Format())
	}
}

func TestCompareDoesNotFlagAnImprovementOrNoise(t *testing.T) {
	base := results("quorumd", 9000, 100*time.Millisecond, 1400*time.Millisecond, true)
	better := results("quorumd", 12000, 50*time.Millisecond, time.Second, true)
	if c := Compare(base, better, 0.10); c.Regressions != 0 {
		t.Errorf("improvement flagged: %v\n%s", worse(c), c.Format())
	}
	noise := results("quorumd", 8500, 105*time.Millisecond, 1500*time.Millisecond, true) // within 10%
	if c := Compare(base, noise, 0.10); c.Regressions != 0 {
		t.Errorf("change within the threshold flagged: %v", worse(c))
	}
}

func TestCompareFlagsLostWritability(t *testing.T) {
	base := results("quorumd", 9000, 100*time.Millisecond, 1400*time.Millisecond, true)
	next := results("quorumd", 9000, 100*time.Millisecond, 0, false)
	if c := Compare(base, next, 0.10); c.Regressions != 1 || worse(c)[0] != "writable" {
		t.Errorf("lost writability: %v", worse(c))
	}
	if c := Compare(next, base, 0.10); c.Regressions != 0 {
		t.Errorf("regained writability flagged: %v", worse(c))
	}
}

func TestCompareMatchesSingleServersWhateverTheirLabel(t *testing.T) {
	base := results("quorumd-main", 9000, 100*time.Millisecond, time.Second, true)
	next := results("quorumd-pr", 5000, 100*time.Millisecond, time.Second, true)
	c := Compare(base, next, 0.10)
	if len(c.Unmatched) != 0 || c.Regressions != 1 {
		t.Errorf("unmatched %v, regressions %d", c.Unmatched, c.Regressions)
	}
}

func TestParseThreshold(t *testing.T) {
	for in, want := range map[string]float64{"10%": 0.1, "0.1": 0.1, "2.5%": 0.025, "0": 0} {
		if got, err := ParseThreshold(in); err != nil || got != want {
			t.Errorf("ParseThreshold(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ten", "-5%"} {
		if _, err := ParseThreshold(in); err == nil {
			t.Errorf("ParseThreshold(%q) succeeded", in)
		}
	}
}

// A saved A/B run (etcd vs quorumd, 3 members, 3 rounds) loads, its saved
// summary is what Summarize derives from its raw cells, and a regression
// planted in a copy is the only figure flagged.
func TestCompareOnASavedRun(t *testing.T) {
	base, err := LoadResults("testdata/ab-etcd-quorumd-size3.json")
	if err != nil {
		t.Fatal(err)
	}
	again := Summarize(base.Run.Servers, base.Load, base.Availability)
	if len(again.Load) != len(base.Summary.Load) || len(again.Ratios) != len(base.Summary.Ratios) || again.Load[0].Throughput != base.Summary.Load[0].Throughput {
		t.Errorf("Summarize of the saved cells differs from the saved summary")
	}
	if c := Compare(base, base, 0.10); c.Regressions != 0 || len(c.Unmatched) != 0 {
		t.Errorf("a run against itself: %s", c.Format())
	}
	next := base
	next.Summary.Load = append([]LoadSummary(nil), base.Summary.Load...)
	for i, l := range next.Summary.Load {
		if l.Server == "quorumd" && l.Workload == WorkloadPut && l.Clients == 1000 {
			next.Summary.Load[i].Throughput *= 0.8
		}
	}
	c := Compare(base, next, 0.10)
	if w := worse(c); c.Regressions != 1 || w[0] != "throughput" || !strings.Contains(c.Format(), "WORSE") {
		t.Errorf("planted regression: %d flagged\n%s", c.Regressions, c.Format())
	}
}

// A regression in a cell where either run lost more than 10% of the
// machine to its neighbours is still counted, but marked noisy, and the
// verdict says so; the runs' noise lines are printed.
func TestCompareMarksRegressionsInNoisyCells(t *testing.T) {
	base := results("quorumd", 9000, 100*time.Millisecond, 1400*time.Millisecond, true)
	next := results("quorumd", 7000, 130*time.Millisecond, 1400*time.Millisecond, true)
	for _, r := range []*Results{&base, &next} {
		r.Run.Machine.CPUs = 2
	}
	next.Summary.Load[0].NoiseCPU = 0.5 // 25% of 2 CPUs
	next.Load = []LoadCell{{Server: "quorumd", Workload: WorkloadPut, Round: 1, Measured: 10 * time.Second, StealCPU: 5 * time.Second, RestMeasured: true}}
	c := Compare(base, next, 0.10)
	if c.Regressions != 3 || c.NoisyRegressions != 3 {
		t.Errorf("regressions %d, noisy %d; want 3 and 3:\n%s", c.Regressions, c.NoisyRegressions, c.Format())
	}
	out := c.Format()
	for _, want := range []string{"WORSE (noisy)", "new: rest of the machine", "new: warning: in 1 of 1 cells",
		"3 figure(s) worse by more than 10%; 3 of them in cells where the rest of the machine took more than 10% of it (noisy)"} {
		if !strings.Contains(out, want) {
			t.Errorf("comparison lacks %q:\n%s", want, out)
		}
	}
	next.Summary.Load[0].NoiseCPU = 0.1 // 5%: quiet
	if c := Compare(base, next, 0.10); c.NoisyRegressions != 0 || strings.Contains(c.Format(), "(noisy)") {
		t.Errorf("a quiet cell marked noisy:\n%s", c.Format())
	}
}
