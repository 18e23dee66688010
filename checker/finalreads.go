package checker

import (
	"slices"

	"github.com/quorum-kv/quorum/history"
)

// FinalReadsResult compares the final reads (history.FFinalRead), issued
// after the workload stopped and every fault healed, one per member: once
// quiet, all members must return the same value (register) or the same
// elements (set) for a key.
type FinalReadsResult struct {
	// Verdict is Invalid if members disagree on any key, else Unknown if
	// no final read completed ok, else Valid.
	Verdict Verdict `json:"verdict"`
	// Reads are the ok final reads, in history order.
	Reads []MemberRead `json:"reads"`
	// Disagreements are the keys whose final reads differ, sorted.
	Disagreements []string `json:"disagreements,omitempty"`
	// NotOK counts final reads that failed or whose outcome is unknown.
	NotOK int `json:"not_ok,omitempty"`
}

// MemberRead is one member's ok final read of one key.
type MemberRead struct {
	Key  string `json:"key"`
	Node string `json:"node"`
	// Value is the register value read (nil: absent, or a set read).
	Value *string `json:"value"`
	// Revision is the register's mod revision, 0 when unknown.
	Revision int64 `json:"rev,omitempty"`
	// Elements is the number of elements of a set read (nil: a register
	// read).
	Elements *int `json:"elements,omitempty"`
	// Missing are elements another member's final read of this key
	// returned but this one did not, sorted.
	Missing []string `json:"missing,omitempty"`
}

// checkFinalReads compares the ok final reads of each key: their Elements
// when setReads (the set workload), else their Value and Revision. It
// returns nil when the history has no final reads at all.
func checkFinalReads(ops []history.Op, setReads bool) *FinalReadsResult {
	var res *FinalReadsResult
	var sets [][]string // sorted elements of each read in res.Reads; nil for registers
	for _, op := range ops {
		if op.F() != history.FFinalRead {
			continue
		}
		if res == nil {
			res = &FinalReadsResult{}
		}
		if op.Type() != history.OK {
			res.NotOK++
			continue
		}
		c := op.Complete
		r := MemberRead{Key: op.Key(), Node: c.Node, Value: c.Value, Revision: c.Revision}
		var els []string
		if setReads {
			els = slices.Clone(c.Elements)
			slices.Sort(els)
			els = slices.Compact(els)
			n := len(c.Elements)
			r.Elements = &n
			r.Value = nil
		}
		res.Reads = append(res.Reads, r)
		sets = append(sets, els)
	}
	if res == nil {
		return nil
	}
	disagree := map[string]bool{}
	for i := range res.Reads {
		a := &res.Reads[i]
		for j := range res.Reads {
			b := res.Reads[j]
			if i == j || a.Key != b.Key {
				continue
			}
			switch {
			case setReads:
				for _, el := range sets[j] {
					if _, found := slices.BinarySearch(sets[i], el); !found {
						a.Missing = append(a.Missing, el)
						disagree[a.Key] = true
					}
				}
			default:
				if !sameValue(a.Value, b.Value) || a.Revision != 0 && b.Revision != 0 && a.Revision != b.Revision {
					disagree[a.Key] = true
				}
			}
		}
		slices.Sort(a.Missing)
		a.Missing = slices.Compact(a.Missing)
	}
	if len(disagree) > 0 {
		res.Disagreements = sortedKeys(disagree)
	}
	switch {
	case len(res.Disagreements) > 0:
		res.Verdict = Invalid
	case len(res.Reads) == 0:
		res.Verdict = Unknown
	default:
		res.Verdict = Valid
	}
	return res
}

func sameValue(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
