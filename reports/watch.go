package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/quorum-kv/quorum/checker/watch"
	"github.com/quorum-kv/quorum/history"
)

// WatchExamples is how many anomalies WatchLines explains.
const WatchExamples = 5

// WatchLines renders checker/watch's result as plain text lines, for the
// report and `quorum check`: the verdict and figures, the anomalies
// counted by kind, each watcher that got something wrong with the
// revisions it got wrong, then the first WatchExamples anomalies with
// their explanation. nil gives nil.
func WatchLines(r *watch.Result) []string {
	if r == nil {
		return nil
	}
	out := []string{fmt.Sprintf("watch: %s, %d watchers, %d sessions, %d events received; history of %d revisions through %d; writes %d ok, %d failed, %d unknown",
		r.Verdict, len(r.Watchers), r.Sessions, r.Events, r.Revisions, r.Through, r.WritesOK, r.WritesFail, r.WritesInfo)}
	if r.Reason != "" {
		out = append(out, "reason: "+r.Reason)
	}
	if len(r.Counts) > 0 {
		kinds := make([]string, 0, len(r.Counts))
		for k := range r.Counts {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s %d", k, r.Counts[k])
		}
		out = append(out, "anomalies: "+strings.Join(parts, ", "))
	}
	for _, w := range r.Watchers {
		if w.Anomalies > 0 {
			out = append(out, fmt.Sprintf("watcher %d (%s on %s): %d anomalies at revisions %s", w.Watcher, SpecText(w.Spec), w.Node, w.Anomalies, revsText(w.WrongRevisions)))
		}
	}
	for i, a := range r.Anomalies {
		if i == WatchExamples {
			out = append(out, fmt.Sprintf("… %d more examples in results.json", len(r.Anomalies)-i))
			break
		}
		who := fmt.Sprintf("watcher %d", a.Watcher)
		if a.Watcher == watch.FinalWatcher {
			who = "history"
		}
		out = append(out, fmt.Sprintf("%s: %s (session #%d on %s), revisions %s: %s", a.Kind, who, a.Session, a.Node, revsText(a.Revisions), a.Explanation))
	}
	return out
}

// SpecText describes a watch in a few words: its kind, interval and
// options.
func SpecText(s history.WatchSpec) string {
	t := s.Kind + " " + s.Key
	if s.Kind == "range" {
		t = fmt.Sprintf("range [%s, %s)", s.Key, s.RangeEnd)
	}
	for _, o := range []struct {
		on   bool
		name string
	}{{s.PrevKV, "prev_kv"}, {s.NoPut, "no put"}, {s.NoDelete, "no delete"}, {s.ProgressNotify, "progress"}} {
		if o.on {
			t += ", " + o.name
		}
	}
	return t
}

func revsText(revs []int64) string {
	parts := make([]string, len(revs))
	for i, r := range revs {
		parts[i] = fmt.Sprint(r)
	}
	return strings.Join(parts, " ")
}
