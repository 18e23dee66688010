package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/quorum-kv/quorum/checker/lease"
)

// LeaseExamples is how many anomalies LeaseLines explains.
const LeaseExamples = 5

// LeaseLines renders checker/lease's result as plain text lines, for the
// report and `quorum check`: the verdict, leases by plan and reads, the
// anomalies counted by kind, then the first LeaseExamples with the lease,
// its keys and the read that shows them. nil gives nil.
func LeaseLines(r *lease.Result) []string {
	if r == nil {
		return nil
	}
	out := []string{fmt.Sprintf("lease: %s, %d kept alive, %d abandoned, %d revoked; %d reads, %d (read, lease) pairs checked",
		r.Verdict, r.Leases["keep"], r.Leases["abandon"], r.Leases["revoke"], r.Reads, r.Checked)}
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
		if i == LeaseExamples {
			out = append(out, fmt.Sprintf("… %d more examples in results.json", len(r.Anomalies)-i))
			break
		}
		out = append(out, fmt.Sprintf("%s: lease %s (%s), keys %s, read #%d on %s at revision %d: %s", a.Kind, a.Lease, a.Plan, strings.Join(a.Keys, " "), a.ReadIndex, a.Node, a.Revision, a.Explanation))
	}
	return out
}
