package bench

import (
	"slices"
	"testing"
	"time"
)

// The ack ring returns what was put for a revision until a revision
// ackRingSize later takes its slot, and nothing for a revision never put.
func TestAckRingKeepsRecentRevisions(t *testing.T) {
	r := new(ackRing)
	if _, _, ok := r.get(7); ok {
		t.Fatal("empty ring has revision 7")
	}
	r.put(7, 600, 700)
	if sent, at, ok := r.get(7); !ok || sent != 600 || at != 700 {
		t.Fatalf("get(7) = %d, %d, %v", sent, at, ok)
	}
	r.put(7+ackRingSize, 800, 900)
	if _, _, ok := r.get(7); ok {
		t.Error("overwritten revision 7 still read")
	}
	if sent, at, ok := r.get(7 + ackRingSize); !ok || sent != 800 || at != 900 {
		t.Errorf("get(7+size) = %d, %d, %v", sent, at, ok)
	}
}

func TestWatchPutRateIsCappedByTheEventRate(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		watchers int
		want     float64
	}{{1, 100}, {100, 100}, {10000, 10}} {
		if got := c.watchPutRate(tc.watchers); got != tc.want {
			t.Errorf("watchPutRate(%d) = %v, want %v", tc.watchers, got, tc.want)
		}
	}
	c.WatchEventRate = 0
	if got := c.watchPutRate(10000); got != 100 {
		t.Errorf("uncapped watchPutRate(10000) = %v", got)
	}
	if n := c.watchConnsFor(10000); n != 10 {
		t.Errorf("watchConnsFor(10000) = %d", n)
	}
	if n := c.watchConnsFor(3); n != 3 {
		t.Errorf("watchConnsFor(3) = %d", n)
	}
}

func TestValidateNamesBadWatchFields(t *testing.T) {
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"Watchers", func(c *Config) { c.Watchers = []int{0} }},
		{"IdleWatchers", func(c *Config) { c.IdleWatchers = nil }},
		{"WatchPutRate", func(c *Config) { c.WatchPutRate = maxWatchPutRate + 1 }},
		{"MemoryLeases", func(c *Config) { c.MemoryLeases = 0 }},
	} {
		c := DefaultConfig()
		c.Servers = []Server{{Label: "q", Binary: "q"}}
		tc.mod(&c)
		if err := c.Validate(); err == nil || !contains(err.Error(), tc.field) {
			t.Errorf("%s: Validate() = %v", tc.field, err)
		}
	}
}

// Cells with idle watchers are summarized apart from the same cells
// without, and their with/without ratio is per round.
func TestSummarizeSeparatesIdleWatcherCells(t *testing.T) {
	cell := func(round, idle int, tp float64, p99 time.Duration) LoadCell {
		return LoadCell{Server: "q", Round: round, Size: 3, Workload: WorkloadPut, Clients: 1000, IdleWatchers: idle, OK: 1,
			Throughput: tp, Latency: Latency{P99: p99}, Measured: time.Second}
	}
	cells := []LoadCell{cell(1, 0, 1000, 10), cell(1, 10000, 900, 20), cell(2, 0, 2000, 10), cell(2, 10000, 1900, 10)}
	s := Summarize([]Server{{Label: "q"}}, cells, nil)
	if len(s.Load) != 2 || s.Load[0].IdleWatchers != 0 || s.Load[1].IdleWatchers != 10000 {
		t.Fatalf("summary %+v", s.Load)
	}
	if len(s.Ratios) != 2 || s.Ratios[0].Kind != "idle-watchers" || s.Ratios[0].Metric != "throughput" ||
		!slices.Equal(s.Ratios[0].PerRound, []float64{0.9, 0.95}) || s.Ratios[1].Median != 1.5 {
		t.Errorf("ratios %+v", s.Ratios)
	}
}

// The idle-watcher cells alternate their order from round to round, so a
// run with an even number of rounds charges the store's growth during a
// round to each count equally; the configured slice is left as it was.
func TestIdleOrderAlternatesByRound(t *testing.T) {
	counts := []int{0, 100, 10000}
	for round, want := range map[int][]int{1: {0, 100, 10000}, 2: {10000, 100, 0}, 3: {0, 100, 10000}, 4: {10000, 100, 0}} {
		if got := idleOrder(counts, round); !slices.Equal(got, want) {
			t.Errorf("idleOrder(%v, %d) = %v, want %v", counts, round, got, want)
		}
	}
	if !slices.Equal(counts, []int{0, 100, 10000}) {
		t.Errorf("idleOrder changed its argument: %v", counts)
	}
}
