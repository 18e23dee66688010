package reports

import (
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/checker/watch"
	"github.com/quorum-kv/quorum/history"
)

// An invalid watch result renders its figures, the anomalies by kind, the
// watcher that got revisions wrong with those revisions, and the first
// explanations.
func TestWatchLinesNameTheWatcherAndTheRevisions(t *testing.T) {
	if WatchLines(nil) != nil {
		t.Fatal("nil result rendered")
	}
	r := &watch.Result{Verdict: verdict.Invalid, Sessions: 3, Events: 10, Revisions: 5, Through: 6, WritesOK: 5,
		Counts: map[string]int{watch.KindReliable: 1, watch.KindPrevKV: 1},
		Watchers: []watch.WatcherResult{
			{Watcher: 0, Node: "n1", Spec: history.WatchSpec{Kind: "prefix", Key: "k/", PrevKV: true}},
			{Watcher: 2, Node: "n3", Spec: history.WatchSpec{Kind: "range", Key: "k/1", RangeEnd: "k/3"}, Anomalies: 2, WrongRevisions: []int64{4, 7}},
		},
		Anomalies: []watch.Anomaly{
			{Kind: watch.KindReliable, Watcher: 2, Session: 9, Node: "n3", Revisions: []int64{7}, Explanation: "1 matching events never delivered"},
			{Kind: watch.KindPrevKV, Watcher: 2, Session: 9, Node: "n3", Revisions: []int64{4}, Explanation: "wrong prev_kv"},
		}}
	got := strings.Join(WatchLines(r), "\n")
	for _, want := range []string{
		"watch: invalid, 2 watchers, 3 sessions, 10 events received; history of 5 revisions through 6",
		"anomalies: prev-kv 1, reliable 1",
		"watcher 2 (range [k/1, k/3) on n3): 2 anomalies at revisions 4 7",
		"reliable: watcher 2 (session #9 on n3), revisions 7: 1 matching events never delivered",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lines lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "watcher 0 (") {
		t.Errorf("a watcher without anomalies is listed:\n%s", got)
	}
}
