package workloads

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/checker/elle"
	"github.com/quorum-kv/quorum/history"
)

func TestAppendGeneratorDependsOnlyOnSeedAndWorkerAndKeepsValuesUnique(t *testing.T) {
	cfg := memConfig(WorkloadAppend, 0)
	txns := func(worker int, feedback history.Type) [][]history.MicroOp {
		g := newGenerator(cfg, worker)
		var out [][]history.MicroOp
		for range 300 {
			o := g.next(worker + 7*cfg.Concurrency) // the process does not matter
			g.observe(o, feedback, nil)
			out = append(out, o.txn)
		}
		return out
	}
	a := txns(2, history.OK)
	if !reflect.DeepEqual(a, txns(2, history.Info)) {
		t.Fatal("outcomes or the process changed the transactions generated")
	}
	b := txns(3, history.OK)
	if reflect.DeepEqual(a, b) {
		t.Fatal("workers 2 and 3 generated the same transactions")
	}
	seen := map[int]bool{}
	keys := map[string]bool{}
	sizes := map[int]int{}
	reads := 0
	for _, txn := range append(a, b...) {
		sizes[len(txn)]++
		for _, m := range txn {
			keys[m.Key] = true
			switch m.F {
			case history.MicroRead:
				reads++
			case history.MicroAppend:
				if seen[m.Value] {
					t.Fatalf("value %d appended twice", m.Value)
				}
				seen[m.Value] = true
			}
		}
	}
	if len(sizes) != 4 || sizes[0] != 0 || reads == 0 || len(seen) == 0 {
		t.Fatalf("sizes %v, %d reads, %d appends: want 1 to 4 micro-ops mixing both", sizes, reads, len(seen))
	}
	// 300 ops slide the window 75 keys on.
	if n := len(keys); n < 300/AppendKeyEvery || n > 300/AppendKeyEvery+cfg.Keys {
		t.Fatalf("%d distinct keys: want the active keys to rotate", n)
	}
}

func TestAppendRunOnAnAtomicStoreIsValid(t *testing.T) {
	cfg := memConfig(WorkloadAppend, 1500)
	st, events := runMem(t, cfg, NewMemStore(MemBugs{IndefiniteEvery: 50}))
	if st.Invoked != 1500 || st.Info == 0 {
		t.Fatalf("stats = %+v, want 1500 invoked, some info", st)
	}
	res := check(t, events, checker.WorkloadAppend)
	if res.Verdict != checker.Valid || res.Append == nil {
		t.Fatalf("verdict %s, want valid: %+v", res.Verdict, res.Append)
	}
	if c := res.Counts[history.FTxn]; c.OK == 0 || c.Fail != 0 {
		t.Fatalf("txn counts %+v: want committed ones and, on an atomic store, no failed guard", c)
	}
	if res.FinalReads != nil {
		t.Fatalf("final reads %+v for append: want none", res.FinalReads)
	}
	// The inferred workload is append too.
	if res := check(t, events, ""); res.Workload != checker.WorkloadAppend || res.Verdict != checker.Valid {
		t.Fatalf("inferred workload %q verdict %s", res.Workload, res.Verdict)
	}
	// An ok completion carries the lists read; the invocation nulls.
	for _, e := range events {
		if e.F != history.FTxn || e.Type != history.OK {
			continue
		}
		var ops []history.MicroOp
		if err := json.Unmarshal([]byte(*e.Value), &ops); err != nil {
			t.Fatal(err)
		}
		for _, m := range ops {
			if m.F == history.MicroRead && len(m.Read) > 0 {
				return
			}
		}
	}
	t.Fatal("no ok transaction read a non-empty list")
}

// Reads from a replica behind are a consistent but old snapshot: elle
// must find only real-time violations (serializable, not strictly so).
func TestStaleAppendReadsFromALaggingMemberAreRealtimeAnomalies(t *testing.T) {
	_, events := runMem(t, memConfig(WorkloadAppend, 1500), NewMemStore(MemBugs{LaggingNode: "n2", Lag: 5}))
	res := check(t, events, checker.WorkloadAppend).Append
	if res == nil || res.Verdict != checker.Invalid || len(res.Counts) == 0 {
		t.Fatalf("append %+v: want invalid", res)
	}
	for kind := range res.Counts {
		if kind != elle.LostAppend && !strings.HasSuffix(kind, elle.RealtimeSuffix) {
			t.Errorf("anomaly %s (%v): a stale snapshot violates only real-time order", kind, res.Counts)
		}
	}
}
