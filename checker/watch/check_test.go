package watch

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

// kv and the event builders keep the hand-made histories short.
func kv(key, value string, mod, create, ver int64) history.KV {
	return history.KV{Key: key, Value: value, ModRev: mod, CreateRev: create, Version: ver}
}

func put(key, value string, mod, create, ver int64, prev *history.KV) history.WatchEvent {
	return history.WatchEvent{Type: history.WatchPut, Kv: kv(key, value, mod, create, ver), PrevKV: prev}
}

func del(key string, mod int64, prev *history.KV) history.WatchEvent {
	return history.WatchEvent{Type: history.WatchDelete, Kv: history.KV{Key: key, ModRev: mod}, PrevKV: prev}
}

func resp(evs ...history.WatchEvent) history.WatchResponse {
	r := history.WatchResponse{Events: evs}
	for _, e := range evs {
		r.Revision = max(r.Revision, e.Kv.ModRev)
	}
	return r
}

func progress(rev int64) history.WatchResponse {
	return history.WatchResponse{Revision: rev, Progress: true}
}

func ptr(k history.KV) *history.KV { return &k }

// validHistory is a small correct run on keys k/a and k/b:
//
//	2 put a=1   3 put b=2   4 txn: put a=3, delete b   5 delete a   6 put a=4
//
// Watcher 0 watches the prefix k/ with prev_kv, cut after revision 3 and
// resumed from 4, with a progress notification; watcher 1 the key k/a from
// revision 3; watcher 2 the range [k/b, k/c) without puts, from 1.
func validHistory() History {
	a1, b2, a3 := kv("k/a", "1", 2, 2, 1), kv("k/b", "2", 3, 3, 1), kv("k/a", "3", 4, 2, 2)
	prefix := history.WatchSpec{Watcher: 0, Kind: "prefix", Key: "k/", RangeEnd: "k0", PrevKV: true, ProgressNotify: true}
	w0a, w0b := prefix, prefix
	w0a.StartRev, w0b.StartRev = 1, 4
	final := Session{Process: 99, Index: 100, Node: "n1", Type: history.OK, Target: 6,
		Spec: history.WatchSpec{Watcher: FinalWatcher, Kind: "prefix", Key: "k/", RangeEnd: "k0", StartRev: 1, PrevKV: true},
		Responses: []history.WatchResponse{
			{Created: true, Revision: 6},
			resp(put("k/a", "1", 2, 2, 1, nil), put("k/b", "2", 3, 3, 1, nil)),
			resp(put("k/a", "3", 4, 2, 2, ptr(a1)), del("k/b", 4, ptr(b2))),
			resp(del("k/a", 5, ptr(a3)), put("k/a", "4", 6, 6, 1, nil)),
			progress(6),
		}}
	return History{
		Writes: []Write{
			{Index: 0, Process: 0, F: history.FWrite, Type: history.OK, Revision: 2, Ops: []history.WriteOp{{F: history.WatchPut, Key: "k/a", Value: "1"}}},
			{Index: 2, Process: 1, F: history.FWrite, Type: history.OK, Revision: 3, Ops: []history.WriteOp{{F: history.WatchPut, Key: "k/b", Value: "2"}}},
			{Index: 4, Process: 0, F: history.FWriteTxn, Type: history.OK, Revision: 4, Ops: []history.WriteOp{{F: history.WatchPut, Key: "k/a", Value: "3"}, {F: history.WatchDelete, Key: "k/b"}}},
			{Index: 6, Process: 1, F: history.FDelete, Type: history.OK, Revision: 5, Ops: []history.WriteOp{{F: history.WatchDelete, Key: "k/a"}}},
			{Index: 8, Process: 2, F: history.FWrite, Type: history.Info, Ops: []history.WriteOp{{F: history.WatchPut, Key: "k/a", Value: "4"}}},
			{Index: 9, Process: 1, F: history.FDelete, Type: history.OK, Revision: 6, Ops: []history.WriteOp{{F: history.WatchDelete, Key: "k/b"}}}, // b absent: no event
			{Index: 10, Process: 3, F: history.FWrite, Type: history.Fail, Ops: []history.WriteOp{{F: history.WatchPut, Key: "k/b", Value: "never"}}},
		},
		Sessions: []Session{
			{Process: 50, Index: 1, Node: "n1", Type: history.Fail, Error: "connection lost", Spec: w0a, Responses: []history.WatchResponse{
				{Created: true, Revision: 1},
				resp(put("k/a", "1", 2, 2, 1, nil)),
				resp(put("k/b", "2", 3, 3, 1, nil)),
			}},
			{Process: 51, Index: 3, Node: "n2", Type: history.OK, Spec: history.WatchSpec{Watcher: 1, Kind: "key", Key: "k/a", StartRev: 3}, Responses: []history.WatchResponse{
				{Created: true, Revision: 3},
				resp(put("k/a", "3", 4, 2, 2, nil)),
				resp(del("k/a", 5, nil)),
				resp(put("k/a", "4", 6, 6, 1, nil)),
			}},
			{Process: 52, Index: 5, Node: "n3", Type: history.OK, Spec: history.WatchSpec{Watcher: 2, Kind: "range", Key: "k/b", RangeEnd: "k/c", StartRev: 1, NoPut: true}, Responses: []history.WatchResponse{
				resp(del("k/b", 4, nil)),
			}},
			{Process: 50, Index: 7, Node: "n1", Type: history.OK, Spec: w0b, Responses: []history.WatchResponse{
				resp(put("k/a", "3", 4, 2, 2, ptr(a1)), del("k/b", 4, ptr(b2))),
				progress(4),
				resp(del("k/a", 5, ptr(a3))),
				resp(put("k/a", "4", 6, 6, 1, nil)),
			}},
		},
		Final: &final,
	}
}

// session returns the i-th session of h (0: watcher 0's first, 1: watcher
// 1, 2: watcher 2, 3: watcher 0's second), for the cases to change.
func session(h *History, i int) *Session { return &h.Sessions[i] }

func kinds(r Result) []string {
	var ks []string
	for k := range r.Counts {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestValidHistoryPasses(t *testing.T) {
	r := Check(validHistory())
	if r.Verdict != verdict.Valid || len(r.Anomalies) != 0 {
		t.Fatalf("verdict %v (%s), anomalies %+v", r.Verdict, r.Reason, r.Anomalies)
	}
	if r.Revisions != 5 || r.Through != 6 || r.Sessions != 4 || r.Events != 10 || len(r.Watchers) != 3 ||
		r.WritesOK != 5 || r.WritesInfo != 1 || r.WritesFail != 1 {
		t.Errorf("figures %+v", r)
	}
	if w := r.Watchers[0]; w.Sessions != 2 || w.Cuts != 1 || w.Progress != 1 || w.Events != 6 {
		t.Errorf("watcher 0: %+v", w)
	}
}

// Each anomaly, put into the valid history, is found and named; the kinds
// found are exactly want, and the first anomaly of want[0] names the
// watcher and the revisions.
func TestEachAnomalyIsNamed(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(h *History)
		want    []string // kinds found, want[0] the one the case is about
		watcher int
		revs    []int64
	}{
		{"reordered", func(h *History) {
			rs := session(h, 1).Responses
			rs[2], rs[3] = rs[3], rs[2]
		}, []string{KindOrdered}, 1, []int64{6, 5}},
		{"duplicate", func(h *History) {
			s := session(h, 1)
			s.Responses = append(s.Responses, s.Responses[3])
		}, []string{KindUnique}, 1, []int64{6}},
		{"duplicate across a resume", func(h *History) {
			s := session(h, 3)
			s.Responses = append([]history.WatchResponse{session(h, 0).Responses[2]}, s.Responses...)
		}, []string{KindUnique}, 0, []int64{3}},
		{"split revision", func(h *History) {
			s := session(h, 3)
			r := s.Responses[0]
			s.Responses = append([]history.WatchResponse{resp(r.Events[0]), resp(r.Events[1])}, s.Responses[1:]...)
		}, []string{KindAtomic}, 0, []int64{4}},
		{"event at or below a progress notification", func(h *History) {
			s := session(h, 3)
			s.Responses[1] = progress(5)
		}, []string{KindBookmarkable}, 0, []int64{5, 5}},
		{"gap", func(h *History) {
			s := session(h, 1)
			s.Responses = slices.Delete(s.Responses, 2, 3)
		}, []string{KindReliable}, 1, []int64{5}},
		{"gap before a progress notification", func(h *History) {
			s := session(h, 3)
			s.Responses = slices.Delete(s.Responses, 2, 4)
			s.Responses = append(s.Responses, progress(6))
		}, []string{KindReliable}, 0, []int64{5, 6}},
		{"wrong resume start", func(h *History) {
			s := session(h, 1)
			s.Responses = slices.Delete(s.Responses, 1, 2)
		}, []string{KindResumable}, 1, []int64{4}},
		{"event before the start revision", func(h *History) {
			s := session(h, 1)
			s.Responses = slices.Insert(s.Responses, 1, resp(put("k/a", "1", 2, 2, 1, nil)))
		}, []string{KindResumable}, 1, []int64{3, 2}},
		{"wrong prev_kv", func(h *History) {
			s := session(h, 3)
			s.Responses[0].Events[0].PrevKV = ptr(kv("k/a", "9", 2, 2, 1))
		}, []string{KindPrevKV}, 0, []int64{4}},
		{"prev_kv not asked for", func(h *History) {
			session(h, 1).Responses[2].Events[0].PrevKV = ptr(kv("k/a", "3", 4, 2, 2))
		}, []string{KindPrevKV}, 1, []int64{5}},
		{"wrong is_create", func(h *History) {
			e := &session(h, 1).Responses[3].Events[0]
			e.Kv.CreateRev, e.Kv.Version = 2, 3
		}, []string{KindIsCreate, KindAgreement}, 1, []int64{6}},
		{"filter violated", func(h *History) {
			s := session(h, 2)
			s.Responses = slices.Insert(s.Responses, 0, resp(put("k/b", "2", 3, 3, 1, nil)))
		}, []string{KindFilter}, 2, []int64{3}},
		{"key outside the range", func(h *History) {
			r := &session(h, 1).Responses[1]
			r.Events = append(r.Events, del("k/b", 4, nil))
		}, []string{KindRange}, 1, []int64{4}},
		{"wrong value", func(h *History) {
			session(h, 1).Responses[1].Events[0].Kv.Value = "x"
		}, []string{KindEventMismatch, KindAgreement}, 1, []int64{4}},
		{"two watchers disagree on a revision (no final watch)", func(h *History) {
			h.Final = nil
			session(h, 3).Responses[3].Events[0].Kv.Value = "X"
		}, []string{KindAgreement}, 0, []int64{6}},
		{"a watcher saw a revision without one of its events (no final watch)", func(h *History) {
			h.Final = nil
			s := session(h, 3)
			s.Responses[0].Events = s.Responses[0].Events[:1]
		}, []string{KindAgreement}, 0, []int64{4}},
		{"acknowledged write missing from the history", func(h *History) {
			h.Writes = append(h.Writes, Write{Index: 11, Process: 4, F: history.FWrite, Type: history.OK, Revision: 7,
				Ops: []history.WriteOp{{F: history.WatchPut, Key: "k/b", Value: "7"}}})
			h.Final.Responses = append(h.Final.Responses, progress(7))
		}, []string{KindLostWrite}, FinalWatcher, []int64{7}},
		{"acknowledged delete of a key that stays", func(h *History) {
			h.Writes[5].Revision = 3 // b was put at 3 and stays until 4
		}, []string{KindLostWrite}, FinalWatcher, []int64{3}},
		{"event no write explains", func(h *History) {
			h.Final.Responses = append(h.Final.Responses, resp(put("k/b", "zz", 7, 7, 1, nil)))
		}, []string{KindUnexpectedEvent}, FinalWatcher, []int64{7}},
		{"event of a failed write", func(h *History) {
			h.Final.Responses = append(h.Final.Responses, resp(put("k/b", "never", 7, 7, 1, nil)))
		}, []string{KindUnexpectedEvent}, FinalWatcher, []int64{7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := validHistory()
			tc.mutate(&h)
			r := Check(h)
			if r.Verdict != verdict.Invalid {
				t.Fatalf("verdict %v (%s), want invalid", r.Verdict, r.Reason)
			}
			want := slices.Clone(tc.want)
			sort.Strings(want)
			if got := kinds(r); !slices.Equal(got, want) {
				t.Fatalf("kinds %v, want %v; anomalies %+v", got, want, r.Anomalies)
			}
			for _, a := range r.Anomalies {
				if a.Kind != tc.want[0] {
					continue
				}
				if a.Watcher != tc.watcher || !slices.Equal(a.Revisions, tc.revs) || a.Explanation == "" {
					t.Errorf("%s: watcher %d revisions %v (%s), want watcher %d revisions %v", a.Kind, a.Watcher, a.Revisions, a.Explanation, tc.watcher, tc.revs)
				}
				for _, w := range r.Watchers {
					if w.Watcher == a.Watcher && (w.Anomalies == 0 || !slices.Contains(w.WrongRevisions, a.Revisions[0])) {
						t.Errorf("watcher %d's summary %+v lacks revision %d", w.Watcher, w, a.Revisions[0])
					}
				}
				return
			}
			t.Fatalf("no %s anomaly in %+v", tc.want[0], r.Anomalies)
		})
	}
}

// Without a final watch the structural checks still run, but a history
// they find nothing wrong with is unknown, not valid; so is one whose
// final watch fell short of its target.
func TestWithoutTheWholeHistoryTheVerdictIsUnknown(t *testing.T) {
	h := validHistory()
	h.Final = nil
	if r := Check(h); r.Verdict != verdict.Unknown || r.Reason == "" {
		t.Errorf("no final watch: %v (%s)", r.Verdict, r.Reason)
	}
	h = validHistory()
	h.Final.Target, h.Final.Error = 9, "cut: Unimplemented"
	if r := Check(h); r.Verdict != verdict.Unknown || !strings.Contains(r.Reason, "short of 9") || !strings.Contains(r.Reason, "Unimplemented") {
		t.Errorf("short final watch: %v (%s)", r.Verdict, r.Reason)
	}
}
