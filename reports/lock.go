package reports

import (
	"fmt"

	"github.com/quorum-kv/quorum/checker/lock"
)

// LockExamples is how many overlaps LockLines explains.
const LockExamples = 3

// LockLines renders checker/lock's result as plain text lines, for the
// report and `quorum check`: the verdict and counts, each register's
// account (final value against acknowledged increments, lost updates and
// two increments that wrote the same value), then the first LockExamples
// overlapping holders with their intervals, leases and the faults that
// explain them. nil gives nil.
func LockLines(r *lock.Result) []string {
	if r == nil {
		return nil
	}
	mode := "unfenced"
	if r.Fenced {
		mode = "fenced"
	}
	out := []string{fmt.Sprintf("lock (%s): %s, %d holds, %d holders at once, %d lost updates; acquires %d ok/%d fail/%d info, increments %d ok/%d fail/%d info, releases %d ok/%d fail/%d info",
		mode, r.Verdict, r.Holds, r.OverlapCount, r.LostUpdates, r.Acquires[0], r.Acquires[1], r.Acquires[2],
		r.Incrs[0], r.Incrs[1], r.Incrs[2], r.Releases[0], r.Releases[1], r.Releases[2])}
	if r.Reason != "" {
		out = append(out, "reason: "+r.Reason)
	}
	for _, g := range r.Registers {
		final := "?"
		if g.Final != nil {
			final = fmt.Sprint(*g.Final)
		}
		line := fmt.Sprintf("register %s: final %s, %d increments acknowledged, %d unknown", g.Key, final, g.OK, g.Info)
		if g.Lost > 0 {
			line += fmt.Sprintf(", %d LOST", g.Lost)
		}
		if g.Extra > 0 {
			line += fmt.Sprintf(", %d more than were made", g.Extra)
		}
		if g.Reason != "" {
			line += " (" + g.Reason + ")"
		}
		out = append(out, line)
		for _, p := range g.SameWrite {
			out = append(out, fmt.Sprintf("  both wrote %d: %s; %s", p[0].Wrote, incrText(p[0]), incrText(p[1])))
		}
	}
	for i, o := range r.Overlaps {
		if i == LockExamples {
			out = append(out, fmt.Sprintf("… %d more holders at once in results.json", r.OverlapCount-i))
			break
		}
		tag := "two holders"
		if o.Fenced {
			tag = "two holders (fenced)"
		}
		out = append(out, fmt.Sprintf("%s of %s from %s to %s: %s", tag, o.Lock, secs(o.From), secs(o.To), o.Explanation))
	}
	return out
}

func incrText(i lock.Incr) string {
	return fmt.Sprintf("#%d process %d on %s (lease %s) read %d at %s–%s", i.Index, i.Process, i.Node, i.Lease, i.Read, secs(i.From), secs(i.To))
}

func secs(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }
