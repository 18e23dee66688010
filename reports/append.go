package reports

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/quorum-kv/quorum/checker/elle"
)

// AppendExamples is how many anomalies AppendLines explains.
const AppendExamples = 3

// AppendLines renders checker/elle's result as plain text lines, for the
// report and `quorum check`: the verdict and transaction counts, the
// anomalies counted by kind, then the first AppendExamples anomalies with
// their explanation, transactions and cycle steps. nil gives nil.
func AppendLines(r *elle.Result) []string {
	if r == nil {
		return nil
	}
	out := []string{fmt.Sprintf("append (elle): %s, %d transactions ok, %d failed, %d unknown", r.Verdict, r.OK, r.Fail, r.Info)}
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
	for i, a := range r.Anomalies {
		if i == AppendExamples {
			out = append(out, fmt.Sprintf("… %d more examples in results.json", len(r.Anomalies)-i))
			break
		}
		head := a.Kind
		if a.Key != "" {
			head += " on " + a.Key
		}
		out = append(out, fmt.Sprintf("%s: %s", head, a.Explanation))
		for _, t := range a.Txns {
			out = append(out, "  "+txnText(t))
		}
		for _, s := range a.Cycle {
			out = append(out, fmt.Sprintf("  %s; %s edge: %s", txnText(s.Txn), s.Edge, s.Why))
		}
	}
	return out
}

// txnText names a transaction with its micro-ops.
func txnText(t elle.TxnRef) string {
	ops, err := json.Marshal(t.Ops)
	if err != nil {
		ops = []byte("?")
	}
	return fmt.Sprintf("T%d (process %d, %s) %s", t.Index, t.Process, t.Type, ops)
}
