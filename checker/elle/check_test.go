package elle

import (
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

// savedHistory is the form of testdata/*.json: a hand-made history with its
// expected verdict, the kinds of anomaly it shows and, for a cycle, the
// kinds of the cycle's edges (sorted).
type savedHistory struct {
	Description string          `json:"description"`
	Verdict     verdict.Verdict `json:"verdict"`
	Anomalies   []string        `json:"anomalies"`
	CycleEdges  []string        `json:"cycle_edges"`
	Txns        []Txn           `json:"txns"`
}

func TestSavedHistoriesHaveTheirExpectedVerdicts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no saved histories: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var h savedHistory
			if err := json.Unmarshal(b, &h); err != nil {
				t.Fatalf("parse %s: %v", file, err)
			}
			res := Check(h.Txns)
			out, _ := json.MarshalIndent(res, "", "  ")
			if res.Verdict != h.Verdict {
				t.Fatalf("%s\nverdict %v, want %v\n%s", h.Description, res.Verdict, h.Verdict, out)
			}
			var kinds []string
			for k := range res.Counts {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			want := slices.Clone(h.Anomalies)
			sort.Strings(want)
			if !slices.Equal(kinds, want) {
				t.Fatalf("%s\nanomalies %v, want %v\n%s", h.Description, kinds, want, out)
			}
			var edges []string
			for _, an := range res.Anomalies {
				if an.Explanation == "" {
					t.Errorf("%s anomaly without explanation", an.Kind)
				}
				if len(an.Txns) == 0 && len(an.Cycle) == 0 {
					t.Errorf("%s anomaly names no transaction", an.Kind)
				}
				for _, s := range an.Cycle {
					edges = append(edges, s.Edge)
					if s.Why == "" || len(s.Txn.Ops) == 0 {
						t.Errorf("%s step %+v without its operations or reason", an.Kind, s)
					}
				}
			}
			sort.Strings(edges)
			if len(h.CycleEdges) > 0 && !slices.Equal(edges, h.CycleEdges) {
				t.Fatalf("cycle edges %v, want %v\n%s", edges, h.CycleEdges, out)
			}
		})
	}
}

func TestMalformedInputIsUnknown(t *testing.T) {
	for _, tc := range []struct {
		name string
		txns []Txn
	}{
		{"a value appended twice to a key", []Txn{
			{Type: history.OK, Complete: 1, Ops: []MicroOp{{F: FAppend, Key: "x", Value: 1}}},
			{Type: history.OK, Complete: 1, Ops: []MicroOp{{F: FAppend, Key: "x", Value: 1}}},
		}},
		{"an outcome that is not ok, fail or info", []Txn{{Type: history.Invoke, Ops: []MicroOp{{F: FRead, Key: "x"}}}}},
		{"an unknown micro-op", []Txn{{Type: history.OK, Ops: []MicroOp{{F: "cas", Key: "x"}}}}},
		{"completion before invocation", []Txn{{Type: history.OK, Invoke: 5, Complete: 4}}},
		{"no transactions", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(tc.txns)
			if res.Verdict != verdict.Unknown || res.Reason == "" {
				t.Fatalf("got %v (%q), want unknown with a reason", res.Verdict, res.Reason)
			}
		})
	}
}

func TestMicroOpsRoundTripAsElleTriples(t *testing.T) {
	in := `[["append","x",3],["r","y",[1,2]],["r","z",null]]`
	var ops []MicroOp
	if err := json.Unmarshal([]byte(in), &ops); err != nil {
		t.Fatal(err)
	}
	want := []MicroOp{{F: FAppend, Key: "x", Value: 3}, {F: FRead, Key: "y", Read: []int{1, 2}}, {F: FRead, Key: "z"}}
	if !slices.EqualFunc(ops, want, func(a, b MicroOp) bool {
		return a.F == b.F && a.Key == b.Key && a.Value == b.Value && slices.Equal(a.Read, b.Read)
	}) {
		t.Fatalf("parsed %+v, want %+v", ops, want)
	}
	out, err := json.Marshal(ops)
	if err != nil || string(out) != in {
		t.Fatalf("marshal: %s, %v; want %s", out, err, in)
	}
	for _, bad := range []string{`["append","x"]`, `["cas","x",1]`, `{"f":"r"}`, `["r","x",3]`} {
		var op MicroOp
		if err := json.Unmarshal([]byte(bad), &op); err == nil {
			t.Errorf("%s parsed as %+v, want an error", bad, op)
		}
	}
}

// generate simulates procs clients running n list-append transactions
// against an in-memory store that executes each atomically at a commit
// point between its invocation and completion: a strictly serializable
// history. About 5% of transactions fail (not executed) and 5% are info
// (executed or not, reads unknown). Keys rotate so lists stay short.
func generate(rng *rand.Rand, n, procs int) []Txn {
	const window = 8
	txns := make([]Txn, n)
	commit := make([]int64, n)
	clock := make([]int64, procs)
	next := map[string]int{}
	for i := range txns {
		p := i % procs
		inv := clock[p] + rng.Int63n(50)
		commit[i] = inv + 1 + rng.Int63n(100)
		done := commit[i] + 1 + rng.Int63n(100)
		clock[p] = done
		var ops []MicroOp
		for range 1 + rng.Intn(4) {
			key := "k" + strconv.Itoa(i/40+rng.Intn(window))
			if rng.Intn(2) == 0 {
				next[key]++
				ops = append(ops, MicroOp{F: FAppend, Key: key, Value: next[key]})
			} else {
				ops = append(ops, MicroOp{F: FRead, Key: key})
			}
		}
		typ := history.OK
		switch r := rng.Intn(20); {
		case r == 0:
			typ = history.Fail
		case r == 1:
			typ = history.Info
		}
		txns[i] = Txn{Process: p, Invoke: inv, Complete: done, Type: typ, Ops: ops}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return commit[order[a]] < commit[order[b]] })
	store := map[string][]int{}
	for _, i := range order {
		t := &txns[i]
		if t.Type == history.Fail || (t.Type == history.Info && rng.Intn(2) == 0) {
			continue
		}
		for j := range t.Ops {
			op := &t.Ops[j]
			if op.F == FAppend {
				store[op.Key] = append(store[op.Key], op.Value)
			} else if t.Type == history.OK {
				op.Read = slices.Clone(store[op.Key])
			}
		}
	}
	return txns
}

// plantStaleRead makes one read miss the last element it saw, appended by a
// transaction that completed before the reader was invoked. It reports
// whether it found such a read.
func plantStaleRead(txns []Txn) bool {
	appender := map[string]map[int]int{}
	for i, t := range txns {
		for _, op := range t.Ops {
			if op.F == FAppend {
				if appender[op.Key] == nil {
					appender[op.Key] = map[int]int{}
				}
				appender[op.Key][op.Value] = i
			}
		}
	}
	for i := range txns {
		t := &txns[i]
		if t.Type != history.OK {
			continue
		}
		for j := range t.Ops {
			op := &t.Ops[j]
			if op.F != FRead || len(op.Read) == 0 || slices.ContainsFunc(t.Ops[:j], func(o MicroOp) bool { return o.Key == op.Key }) {
				continue
			}
			w := appender[op.Key][op.Read[len(op.Read)-1]]
			if w != i && txns[w].Type == history.OK && txns[w].Complete < t.Invoke {
				op.Read = op.Read[:len(op.Read)-1]
				return true
			}
		}
	}
	return false
}

func TestRandomStrictlySerializableHistoriesAreValid(t *testing.T) {
	for _, procs := range []int{1, 3, 10, 30} {
		for seed := int64(1); seed <= 5; seed++ {
			txns := generate(rand.New(rand.NewSource(seed)), 2000, procs)
			if res := Check(txns); res.Verdict != verdict.Valid {
				out, _ := json.MarshalIndent(res, "", "  ")
				t.Fatalf("seed %d, %d processes: %v, want valid\n%s", seed, procs, res.Verdict, out)
			}
		}
	}
}

func TestAPlantedStaleReadIsInvalid(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		txns := generate(rand.New(rand.NewSource(seed)), 2000, 10)
		if !plantStaleRead(txns) {
			t.Fatalf("seed %d: no read to make stale", seed)
		}
		res := Check(txns)
		if res.Verdict != verdict.Invalid {
			t.Fatalf("seed %d: %v, want invalid", seed, res.Verdict)
		}
		t.Logf("seed %d: %v", seed, res.Counts)
	}
}

func TestCheck100kTransactionsInTime(t *testing.T) {
	if testing.Short() {
		t.Skip("checks 100,000 transactions")
	}
	txns := generate(rand.New(rand.NewSource(1)), 100_000, 20)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	res := Check(txns)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	t.Logf("100,000 transactions checked in %v, %d MB allocated (race detector: %v)",
		took.Round(time.Millisecond), (after.TotalAlloc-before.TotalAlloc)>>20, raceEnabled)
	if res.Verdict != verdict.Valid {
		t.Fatalf("verdict %v, want valid: %v", res.Verdict, res.Counts)
	}
	if !raceEnabled && took > 30*time.Second {
		t.Fatalf("took %v, want under 30s", took)
	}
}

func BenchmarkCheck100k(b *testing.B) {
	txns := generate(rand.New(rand.NewSource(1)), 100_000, 20)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if res := Check(txns); res.Verdict != verdict.Valid {
			b.Fatalf("verdict %v", res.Verdict)
		}
	}
}

func TestBriefElidesTheMiddleOfLongLists(t *testing.T) {
	for _, tc := range []struct {
		list []int
		want string
	}{
		{nil, "[]"},
		{[]int{1, 2, 3, 4, 5, 6, 7}, "[1 2 3 4 5 6 7]"},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8}, "[1 2 3] ... (2 more) ... [6 7 8]"},
	} {
		if got := brief(tc.list); got != tc.want {
			t.Errorf("brief(%v) = %q, want %q", tc.list, got, tc.want)
		}
	}
}
