package watch

import (
	"errors"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

// FromHistory reads what the workload records — puts, deletes, write
// txns, watch sessions with their responses, the final watch — and the
// result checks as the same History built by hand.
func TestFromHistoryReadsTheRecordedOperations(t *testing.T) {
	var now time.Duration
	rec := history.NewRecorder(func() time.Duration { now += time.Millisecond; return now })
	spec := history.WatchSpec{Watcher: 0, Kind: "prefix", Key: "k/", RangeEnd: "k0", StartRev: 1}
	w := rec.Invoke(10, history.Invocation{F: history.FWatch, Key: spec.Key, Value: history.WatchJSON(spec), Node: "n1"})
	h := rec.Invoke(0, history.Invocation{F: history.FWrite, Key: "k/a", Value: history.Str("1")})
	rec.Complete(h, history.OK, history.Completion{Revision: 2})
	ops := []history.WriteOp{{F: history.WatchPut, Key: "k/b", Value: "2"}, {F: history.WatchDelete, Key: "k/a"}}
	h = rec.Invoke(0, history.Invocation{F: history.FWriteTxn, Value: history.WatchJSON(ops)})
	rec.Complete(h, history.OK, history.Completion{Revision: 3})
	h = rec.Invoke(1, history.Invocation{F: history.FDelete, Key: "k/b"})
	rec.Complete(h, history.Info, history.Completion{Error: "timeout"})
	a1 := kv("k/a", "1", 2, 2, 1)
	got := []history.WatchResponse{
		{Created: true, Revision: 1},
		resp(put("k/a", "1", 2, 2, 1, nil)),
		resp(put("k/b", "2", 3, 3, 1, nil), del("k/a", 3, nil)),
	}
	rec.Complete(w, history.Fail, history.Completion{Value: history.WatchJSON(got), Error: "cut"})
	fspec := history.WatchSpec{Watcher: FinalWatcher, Kind: "prefix", Key: "k/", RangeEnd: "k0", StartRev: 1, PrevKV: true}
	f := rec.Invoke(20, history.Invocation{F: history.FFinalWatch, Key: fspec.Key, Value: history.WatchJSON(fspec), Node: "n2"})
	rec.Complete(f, history.OK, history.Completion{Revision: 3, Value: history.WatchJSON([]history.WatchResponse{
		resp(put("k/a", "1", 2, 2, 1, nil)),
		resp(put("k/b", "2", 3, 3, 1, nil), del("k/a", 3, &a1)),
	})})

	hist, err := FromHistory(rec.Events())
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Writes) != 3 || len(hist.Sessions) != 1 || hist.Final == nil || hist.Final.Target != 3 || hist.Final.Node != "n2" {
		t.Fatalf("read %+v", hist)
	}
	if s := hist.Sessions[0]; s.Type != history.Fail || s.Error != "cut" || len(s.Responses) != 3 || s.Spec != spec || s.Node != "n1" {
		t.Errorf("session %+v", s)
	}
	if w := hist.Writes[1]; w.F != history.FWriteTxn || len(w.Ops) != 2 || w.Revision != 3 {
		t.Errorf("write txn %+v", w)
	}
	if r := Check(hist); r.Verdict != verdict.Valid {
		t.Errorf("verdict %v (%s) %+v", r.Verdict, r.Reason, r.Anomalies)
	}

	bad := rec.Events()
	bad[0].Value = history.Str("{not json")
	if _, err := FromHistory(bad); err == nil {
		t.Error("a watch spec that is not JSON was read")
	}
	bad = rec.Events()[1:]
	if _, err := FromHistory(bad); !errors.Is(err, history.ErrMalformed) {
		t.Errorf("unpaired history: %v, want ErrMalformed", err)
	}
}
