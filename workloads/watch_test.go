package workloads

import (
	"reflect"
	"testing"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/checker/watch"
	"github.com/quorum-kv/quorum/history"
)

func TestWatchGeneratorWritesPutsDeletesAndTxnsOnTheKeySpace(t *testing.T) {
	cfg := memConfig(WorkloadWatch, 0)
	kinds := map[opKind]int{}
	ops := func(worker int) []op {
		g := newGenerator(cfg, worker)
		var out []op
		for range 200 {
			o := g.next(worker)
			out = append(out, o)
			kinds[o.kind]++
			if o.kind == opWriteTxn && (len(o.writes) != 2 || o.writes[0].Key == o.writes[1].Key || o.writes[0].F != history.WatchPut) {
				t.Fatalf("txn %+v: want a put and a second write on another key", o.writes)
			}
		}
		return out
	}
	a := ops(1)
	if !reflect.DeepEqual(a, ops(1)) || reflect.DeepEqual(a, ops(2)) {
		t.Fatal("the writes depend on something else than the seed and the worker")
	}
	if kinds[opWrite] == 0 || kinds[opDelete] == 0 || kinds[opWriteTxn] == 0 || len(kinds) != 3 {
		t.Fatalf("kinds %v: want puts, deletes and txns only", kinds)
	}
}

// Every watcher's spec is one of the three kinds, and across watchers the
// options vary.
func TestWatchSpecsCoverKindsAndOptions(t *testing.T) {
	cfg := memConfig(WorkloadWatch, 0)
	seen := map[string]bool{}
	for w := range 12 {
		s := watchSpec(cfg, w, newWatcherRand(cfg, w))
		seen[s.Kind] = true
		for flag, on := range map[string]bool{"prev_kv": s.PrevKV, "no_put": s.NoPut, "no_delete": s.NoDelete, "progress": s.ProgressNotify} {
			if on {
				seen[flag] = true
			}
		}
		if !s.Contains(s.Key) && !s.NoPut {
			t.Errorf("watcher %d: %+v does not contain its own key", w, s)
		}
	}
	for _, want := range []string{"key", "prefix", "range", "prev_kv", "no_put", "no_delete", "progress"} {
		if !seen[want] {
			t.Errorf("no watcher with %s among 12", want)
		}
	}
}

// The watch workload on a correct store (with watches cut now and then,
// and unknown-outcome writes) checks valid, with events received, cuts
// resumed and a final watch; a store whose watches skip events is caught
// as unreliable.
func TestWatchRunOnTheMemStoreIsValidAndCatchesSkippedEvents(t *testing.T) {
	cfg := memConfig(WorkloadWatch, 1000)
	cfg.Rate = 1000
	_, events := runMem(t, cfg, NewMemStore(MemBugs{WatchCutEvery: 7, IndefiniteEvery: 13}))
	res := check(t, events, checker.WorkloadWatch)
	w := res.Watch
	if res.Verdict != checker.Valid || w == nil {
		t.Fatalf("verdict %v (%s) %+v", res.Verdict, res.Reason, w)
	}
	cuts := 0
	for _, wr := range w.Watchers {
		cuts += wr.Cuts
	}
	if w.Events == 0 || w.Revisions == 0 || len(w.Watchers) != 6 || cuts == 0 || w.WritesInfo == 0 {
		t.Fatalf("watch result %+v: want events, revisions, 6 watchers, cuts and unknown writes", w)
	}

	_, events = runMem(t, cfg, NewMemStore(MemBugs{WatchSkipEvery: 50}))
	res = check(t, events, "")
	if res.Verdict != checker.Invalid || res.Workload != checker.WorkloadWatch || res.Watch.Counts[watch.KindReliable] == 0 {
		t.Fatalf("skipping store: verdict %v, workload %s, counts %v", res.Verdict, res.Workload, res.Watch.Counts)
	}
}
