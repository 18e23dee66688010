package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/quorum-kv/quorum/checker"
)

// HashKV is the end-of-run consistency check as data: every member's
// answer to Maintenance.HashKV at one common revision, taken after the
// workload and the healing. results.json keeps it, and its verdict is a
// pure function of it (Verdict), so `quorum check DIR` re-derives the
// same verdict offline.
type HashKV struct {
	// Revision is the revision every member was asked to hash (the
	// leader's current revision when the check began); 0 when the check
	// could not choose one (Error says why).
	Revision int64 `json:"revision"`
	// Members are the answers, in node order.
	Members []HashKVMember `json:"members,omitempty"`
	// Error says why the check could not be done at all.
	Error string `json:"error,omitempty"`
}

// HashKVMember is one member's last answer.
type HashKVMember struct {
	Name     string `json:"name"`
	MemberID uint64 `json:"member_id,omitempty"`
	// Hash is the hash of the member's keyspace from CompactRevision to
	// the check's Revision; HashRevision is the member's revision when it
	// answered.
	Hash            uint32 `json:"hash"`
	CompactRevision int64  `json:"compact_revision"`
	HashRevision    int64  `json:"hash_revision"`
	// Unimplemented: the server answered HashKV with gRPC Unimplemented.
	Unimplemented bool `json:"unimplemented,omitempty"`
	// Error is why the member gave no hash (not running, never reached
	// Revision in time); empty when Hash is its answer.
	Error string `json:"error,omitempty"`
}

// answered reports whether m gave a hash.
func (m HashKVMember) answered() bool { return m.Error == "" && !m.Unimplemented }

// Outcome of the HashKV check.
const (
	HashKVEqual      = "equal"       // every member answered the same hash
	HashKVDiffer     = "differ"      // two members with the same compact revision answered different hashes
	HashKVSkipped    = "skipped"     // the server does not implement HashKV
	HashKVIncomplete = "incomplete"  // some members gave no hash; those that did agree
	HashKVNotChecked = "not-checked" // no revision could be chosen, or nothing to compare
)

// Outcome classifies h; a nil h (a run from before the check existed, or
// on a backend without members) is HashKVNotChecked.
func (h *HashKV) Outcome() string {
	if h == nil || h.Error != "" || len(h.Members) == 0 {
		return HashKVNotChecked
	}
	if slices.ContainsFunc(h.Members, func(m HashKVMember) bool { return m.Unimplemented }) {
		return HashKVSkipped
	}
	if len(h.differing()) > 0 {
		return HashKVDiffer
	}
	for _, m := range h.Members {
		if !m.answered() {
			return HashKVIncomplete
		}
	}
	if len(h.compactRevisions()) > 1 {
		return HashKVIncomplete
	}
	return HashKVEqual
}

// compactRevisions returns "name=rev" per answering member when they do
// not all have the same compact revision, else nil.
func (h *HashKV) compactRevisions() []string {
	var out []string
	revs := map[int64]bool{}
	for _, m := range h.Members {
		if m.answered() {
			revs[m.CompactRevision] = true
			out = append(out, fmt.Sprintf("%s=%d", m.Name, m.CompactRevision))
		}
	}
	if len(revs) > 1 {
		return out
	}
	return nil
}

// differing returns the answering members whose hash differs from that of
// the first answering member with the same compact revision (hashes are
// only comparable over the same range of revisions, as in etcd's own
// corruption check), as "name=hash" strings.
func (h *HashKV) differing() []string {
	first := map[int64]HashKVMember{}
	var out []string
	for _, m := range h.Members {
		if !m.answered() {
			continue
		}
		f, ok := first[m.CompactRevision]
		if !ok {
			first[m.CompactRevision] = m
			continue
		}
		if f.Hash != m.Hash {
			if len(out) == 0 {
				out = append(out, fmt.Sprintf("%s=%d", f.Name, f.Hash))
			}
			out = append(out, fmt.Sprintf("%s=%d", m.Name, m.Hash))
		}
	}
	return out
}

// Verdict is the check's contribution to the run's verdict: Invalid with
// the reason when members' hashes differ, else Valid (the check found
// nothing wrong, or could not look: Line says which).
func (h *HashKV) Verdict() (checker.Verdict, string) {
	if h.Outcome() == HashKVDiffer {
		return checker.Invalid, h.Line()
	}
	return checker.Valid, ""
}

// Line is the report's sentence, e.g. "HashKV at revision 812: equal on 3
// members (hash 4016389121)".
func (h *HashKV) Line() string {
	switch out := h.Outcome(); out {
	case HashKVNotChecked:
		if h == nil {
			return "HashKV: not checked"
		}
		if h.Error != "" {
			return "HashKV: not checked (" + h.Error + ")"
		}
		return "HashKV: not checked (no member)"
	case HashKVSkipped:
		return fmt.Sprintf("HashKV at revision %d: skipped (unsupported: %s answered Unimplemented)", h.Revision, strings.Join(h.names(func(m HashKVMember) bool { return m.Unimplemented }), ", "))
	case HashKVDiffer:
		return fmt.Sprintf("HashKV at revision %d: members differ: %s", h.Revision, strings.Join(h.differing(), ", "))
	case HashKVEqual:
		return fmt.Sprintf("HashKV at revision %d: equal on %d members (hash %d)", h.Revision, len(h.Members), h.Members[0].Hash)
	default:
		ok := h.names(HashKVMember.answered)
		var missing []string
		for _, m := range h.Members {
			if !m.answered() {
				missing = append(missing, m.Name+": "+m.Error)
			}
		}
		if len(ok) == 0 {
			return fmt.Sprintf("HashKV at revision %d: no hash from any member (%s)", h.Revision, strings.Join(missing, "; "))
		}
		hash := ""
		if len(ok) > 0 {
			hash = fmt.Sprintf(" (hash %d)", h.Members[slices.IndexFunc(h.Members, HashKVMember.answered)].Hash)
		}
		if cr := h.compactRevisions(); cr != nil {
			return fmt.Sprintf("HashKV at revision %d: not comparable, the members' compact revisions differ (%s)", h.Revision, strings.Join(cr, ", "))
		}
		return fmt.Sprintf("HashKV at revision %d: equal on %d of %d members%s; no hash from %s", h.Revision, len(ok), len(h.Members), hash, strings.Join(missing, "; "))
	}
}

func (h *HashKV) names(f func(HashKVMember) bool) []string {
	var out []string
	for _, m := range h.Members {
		if f(m) {
			out = append(out, m.Name)
		}
	}
	return out
}

// ApplyHashKV folds h's verdict into the checker's result: a mismatch
// makes it Invalid, with the HashKV line added to its Reason. Anything
// else leaves res as it is.
func ApplyHashKV(res checker.Result, h *HashKV) checker.Result {
	v, why := h.Verdict()
	if v != checker.Invalid {
		return res
	}
	res.Verdict = checker.Invalid
	if res.Reason != "" {
		why = res.Reason + "; " + why
	}
	res.Reason = why
	return res
}
