package checker

import (
	"github.com/quorum-kv/quorum/history"
)

// SetResult is the outcome of the set workload's check, after Jepsen's set
// checker: every acknowledged add must be in the final reads, and nothing
// else may appear.
//
// Elements are grouped by Key: an add to one key is only looked for in the
// reads of that key. Element lists are sorted and hold the element values
// (the workload makes them unique per run).
type SetResult struct {
	// Verdict is Invalid if any of Lost, Unexpected or FailedPresent is
	// not empty; else Unknown if no add was acknowledged or a key with
	// adds has no ok final read; else Valid.
	Verdict Verdict `json:"verdict"`
	// Attempted counts add invocations.
	Attempted int `json:"attempted"`
	// Acknowledged counts adds that completed ok.
	Acknowledged int `json:"acknowledged"`
	// FinalReads counts the ok final reads compared.
	FinalReads int `json:"final_reads"`
	// Lost are acknowledged adds missing from at least one ok final read
	// of their key.
	Lost []string `json:"lost,omitempty"`
	// Unexpected are elements some ok read returned that no add ever
	// attempted.
	Unexpected []string `json:"unexpected,omitempty"`
	// Recovered are adds with an unknown outcome (info) that an ok read
	// returned: they were applied. Not an error.
	Recovered []string `json:"recovered,omitempty"`
	// FailedPresent are adds that failed (definitely not applied) yet some
	// ok read returned.
	FailedPresent []string `json:"failed_present,omitempty"`
}

// checkSet checks the adds and reads of a set workload.
func checkSet(ops []history.Op) *SetResult {
	type keySet struct {
		attempted, acked, failed, indefinite map[string]bool
		finals                               []map[string]bool
		read                                 map[string]bool // union of every ok read
	}
	sets := map[string]*keySet{}
	get := func(k string) *keySet {
		s := sets[k]
		if s == nil {
			s = &keySet{
				attempted: map[string]bool{}, acked: map[string]bool{}, failed: map[string]bool{},
				indefinite: map[string]bool{}, read: map[string]bool{},
			}
			sets[k] = s
		}
		return s
	}
	res := &SetResult{}
	for _, op := range ops {
		switch op.F() {
		case history.FAdd:
			s := get(op.Key())
			res.Attempted++
			if op.Invoke.Value == nil {
				continue
			}
			el := *op.Invoke.Value
			s.attempted[el] = true
			switch op.Type() {
			case history.OK:
				res.Acknowledged++
				s.acked[el] = true
			case history.Fail:
				s.failed[el] = true
			default:
				s.indefinite[el] = true
			}
		case history.FRead, history.FFinalRead:
			if op.Type() != history.OK {
				continue
			}
			s := get(op.Key())
			got := make(map[string]bool, len(op.Complete.Elements))
			for _, el := range op.Complete.Elements {
				got[el] = true
				s.read[el] = true
			}
			if op.F() == history.FFinalRead {
				res.FinalReads++
				s.finals = append(s.finals, got)
			}
		}
	}

	lost, unexpected, recovered, failedPresent := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	unchecked := false
	for _, s := range sets {
		if len(s.attempted) > 0 && len(s.finals) == 0 {
			unchecked = true
		}
		for el := range s.acked {
			for _, f := range s.finals {
				if !f[el] {
					lost[el] = true
				}
			}
		}
		for el := range s.read {
			switch {
			case !s.attempted[el]:
				unexpected[el] = true
			case s.failed[el] && !s.acked[el] && !s.indefinite[el]:
				failedPresent[el] = true
			}
		}
		for el := range s.indefinite {
			if !s.acked[el] && s.read[el] {
				recovered[el] = true
			}
		}
	}
	res.Lost = sortedKeys(lost)
	res.Unexpected = sortedKeys(unexpected)
	res.Recovered = sortedKeys(recovered)
	res.FailedPresent = sortedKeys(failedPresent)
	for _, l := range []*[]string{&res.Lost, &res.Unexpected, &res.Recovered, &res.FailedPresent} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	switch {
	case len(res.Lost) > 0 || len(res.Unexpected) > 0 || len(res.FailedPresent) > 0:
		res.Verdict = Invalid
	case res.Acknowledged == 0 || unchecked:
		res.Verdict = Unknown
	default:
		res.Verdict = Valid
	}
	return res
}
