// Package checker decides whether a recorded history (package history)
// shows a bug: Check is a function from a history to a three-way Verdict,
// valid, invalid or unknown, with the evidence for each sub-check in a
// JSON-stable Result. The register workload is checked for linearizability
// with porcupine, one key at a time; the set workload for lost and
// unexpected elements; the append workload's list-append transactions for
// strict serializability with checker/elle; the watch workload's watch
// streams with checker/watch; the lock workload's holders and
// increments with checker/lock; the lease workload's leases with
// checker/lease; final reads for agreement
// between members. Unknown (timeout, nothing checked, malformed history) is
// never a pass.
package checker

import (
	"context"
	"fmt"
	"time"

	"github.com/quorum-kv/quorum/checker/elle"
	"github.com/quorum-kv/quorum/checker/lease"
	"github.com/quorum-kv/quorum/checker/lock"
	"github.com/quorum-kv/quorum/checker/logscan"
	"github.com/quorum-kv/quorum/checker/watch"
	"github.com/quorum-kv/quorum/history"
)

// Workload names for Options.Workload.
const (
	WorkloadRegister = "register"
	WorkloadSet      = "set"
	WorkloadAppend   = "append"
	WorkloadWatch    = "watch"
	WorkloadLock     = "lock"
	WorkloadLease    = "lease"
)

// Options configures Check.
type Options struct {
	// Workload is WorkloadRegister, WorkloadSet, WorkloadAppend or
	// WorkloadWatch, WorkloadLock or WorkloadLease. Empty: inferred, set if the history
	// has any add operation, append if it has any transaction
	// (history.FTxn), watch if it has any watch (history.FWatch,
	// history.FFinalWatch), lock if it has any acquire (history.FAcquire),
	// lease if it has any grant (history.FGrant), register otherwise.
	Workload string
	// Timeout bounds the linearizability search over all keys; keys not
	// decided in time are unknown. 0: no limit (the context still
	// applies).
	Timeout time.Duration
	// VisualizeDir, when not empty and the history is not linearizable, is
	// where Check writes linearizability.html: porcupine's visualization of
	// the failing keys, with the nemesis faults as annotations. The
	// directory must exist.
	VisualizeDir string
}

// VisualizationFile is the name of the visualization Check writes in
// Options.VisualizeDir.
const VisualizationFile = "linearizability.html"

// Result is the outcome of Check. Sub-check results are nil when they do not
// apply to the workload (or, for FinalReads, when the history has no final
// reads); Verdict combines the others.
type Result struct {
	// Verdict is the combined verdict: Invalid if any sub-check is
	// invalid, else Unknown if any is unknown or nothing was checked,
	// else Valid.
	Verdict Verdict `json:"verdict"`
	// Workload is the workload the history was checked as.
	Workload string `json:"workload"`
	// Reason says why Verdict is Unknown when no sub-check does: a
	// malformed history, an unknown workload, no ok operations.
	Reason string `json:"reason,omitempty"`

	Linearizability *LinearizabilityResult `json:"linearizability,omitempty"`
	Set             *SetResult             `json:"set,omitempty"`
	// Append is checker/elle's result for the append workload.
	Append *elle.Result `json:"append,omitempty"`
	// Watch is checker/watch's result for the watch workload.
	Watch *watch.Result `json:"watch,omitempty"`
	// Lock is checker/lock's result for the lock workload.
	Lock *lock.Result `json:"lock,omitempty"`
	// Lease is checker/lease's result for the lease workload.
	Lease      *lease.Result     `json:"lease,omitempty"`
	FinalReads *FinalReadsResult `json:"final_reads,omitempty"`
	// Logs is the scan of the members' logs (AddLogScan), when the run
	// had them.
	Logs *logscan.Result `json:"logs,omitempty"`

	// Counts holds, per operation name (F), how many operations ended
	// ok, fail or info (info includes those that never completed).
	Counts map[string]TypeCounts `json:"counts"`
	// Faults holds how many times each nemesis fault started.
	Faults map[string]int `json:"faults,omitempty"`
}

// TypeCounts counts operations by how they ended.
type TypeCounts struct {
	OK   int `json:"ok"`
	Fail int `json:"fail"`
	Info int `json:"info"`
}

// Check decides whether events, a complete history of one run, shows a bug.
// It does not modify events. Its only side effect is the visualization
// file written when Options.VisualizeDir is set; it returns when the check
// is done, the Timeout expires, or ctx is done (then undecided keys are
// Unknown).
func Check(ctx context.Context, events []history.Event, opts Options) Result {
	res := Result{Workload: opts.Workload, Counts: map[string]TypeCounts{}}
	ops, faults, err := history.Operations(events)
	if err != nil {
		res.Reason = fmt.Sprintf("cannot check: %v", err)
		return res
	}
	okOps := 0
	for _, op := range ops {
		c := res.Counts[op.F()]
		switch op.Type() {
		case history.OK:
			c.OK++
			okOps++
		case history.Fail:
			c.Fail++
		default:
			c.Info++
		}
		res.Counts[op.F()] = c
	}
	for _, f := range faults {
		if res.Faults == nil {
			res.Faults = map[string]int{}
		}
		res.Faults[f.Start.F]++
	}
	if res.Workload == "" {
		res.Workload = WorkloadRegister
		if _, ok := res.Counts[history.FAdd]; ok {
			res.Workload = WorkloadSet
		}
		if _, ok := res.Counts[history.FTxn]; ok {
			res.Workload = WorkloadAppend
		}
		for _, f := range []string{history.FWatch, history.FFinalWatch} {
			if _, ok := res.Counts[f]; ok {
				res.Workload = WorkloadWatch
			}
		}
		if _, ok := res.Counts[history.FAcquire]; ok {
			res.Workload = WorkloadLock
		}
		if _, ok := res.Counts[history.FGrant]; ok {
			res.Workload = WorkloadLease
		}
	}

	var verdicts []Verdict
	switch res.Workload {
	case WorkloadRegister:
		res.Linearizability = checkLinearizability(ctx, ops, faults, opts)
		verdicts = append(verdicts, res.Linearizability.Verdict)
	case WorkloadSet:
		res.Set = checkSet(ops)
		verdicts = append(verdicts, res.Set.Verdict)
	case WorkloadAppend:
		res.Append = checkAppend(events)
		verdicts = append(verdicts, res.Append.Verdict)
	case WorkloadWatch:
		res.Watch = checkWatch(events)
		verdicts = append(verdicts, res.Watch.Verdict)
	case WorkloadLock:
		r := lock.Check(events)
		res.Lock = &r
		verdicts = append(verdicts, r.Verdict)
	case WorkloadLease:
		r := lease.Check(events)
		res.Lease = &r
		verdicts = append(verdicts, r.Verdict)
	default:
		res.Reason = fmt.Sprintf("unknown workload %q: want %q, %q, %q, %q, %q or %q", res.Workload, WorkloadRegister, WorkloadSet, WorkloadAppend, WorkloadWatch, WorkloadLock, WorkloadLease)
		return res
	}
	if fr := checkFinalReads(ops, res.Workload == WorkloadSet); fr != nil {
		res.FinalReads = fr
		verdicts = append(verdicts, fr.Verdict)
	}
	res.Verdict = Combine(verdicts...)
	if okOps == 0 && res.Verdict != Invalid {
		res.Verdict = Unknown
		res.Reason = "no operation completed ok: nothing was checked"
	}
	return res
}

// checkAppend runs checker/elle on the history's transactions. A history
// elle cannot read is Unknown, with the reason.
func checkAppend(events []history.Event) *elle.Result {
	txns, err := elle.FromHistory(events)
	if err != nil {
		return &elle.Result{Verdict: Unknown, Reason: fmt.Sprintf("cannot check: %v", err)}
	}
	r := elle.Check(txns)
	return &r
}

// checkWatch runs checker/watch on the history's writes and watches. A
// history it cannot read is Unknown, with the reason.
func checkWatch(events []history.Event) *watch.Result {
	h, err := watch.FromHistory(events)
	if err != nil {
		return &watch.Result{Verdict: Unknown, Reason: fmt.Sprintf("cannot check: %v", err)}
	}
	r := watch.Check(h)
	return &r
}

// AddRecovery records whether the cluster recovered after the faults were
// healed: failure is "" when it did, else what the wait for a healthy
// cluster saw. A run whose cluster never came back proves nothing about
// the history after it (every operation then fails, and failed operations
// are consistent with anything), so an otherwise valid run becomes
// Unknown with the failure as its reason; an invalid one stays invalid.
func (r *Result) AddRecovery(failure string) {
	if failure == "" || r.Verdict != Valid {
		return
	}
	r.Verdict = Unknown
	why := "the cluster did not recover after the faults were healed: " + failure
	if r.Reason != "" {
		why = r.Reason + "; " + why
	}
	r.Reason = why
}

// AddLogScan records the scan of the run's member logs: a panic, fatal
// error or data race in them makes the run invalid whatever the history
// shows; logs that could not be read change nothing.
func (r *Result) AddLogScan(ls *logscan.Result) {
	r.Logs = ls
	if ls != nil && ls.Verdict == Invalid {
		r.Verdict = Invalid
	}
}
