package reports

import (
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/checker"
)

func TestHashKVOutcomeLineAndVerdict(t *testing.T) {
	m := func(name string, hash uint32, compact int64) HashKVMember {
		return HashKVMember{Name: name, Hash: hash, CompactRevision: compact, HashRevision: 90}
	}
	for _, tc := range []struct {
		name    string
		h       *HashKV
		outcome string
		line    string
		verdict checker.Verdict
	}{
		{"nil", nil, HashKVNotChecked, "HashKV: not checked", checker.Valid},
		{"no revision", &HashKV{Error: "no leader"}, HashKVNotChecked, "HashKV: not checked (no leader)", checker.Valid},
		{"equal", &HashKV{Revision: 80, Members: []HashKVMember{m("n1", 7, 3), m("n2", 7, 3), m("n3", 7, 3)}},
			HashKVEqual, "HashKV at revision 80: equal on 3 members (hash 7)", checker.Valid},
		{"differ", &HashKV{Revision: 80, Members: []HashKVMember{m("n1", 7, 3), m("n2", 8, 3), m("n3", 7, 3)}},
			HashKVDiffer, "HashKV at revision 80: members differ: n1=7, n2=8", checker.Invalid},
		{"unsupported", &HashKV{Revision: 80, Members: []HashKVMember{{Name: "n1", Unimplemented: true}, {Name: "n2", Unimplemented: true}}},
			HashKVSkipped, "HashKV at revision 80: skipped (unsupported: n1, n2 answered Unimplemented)", checker.Valid},
		{"one missing", &HashKV{Revision: 80, Members: []HashKVMember{m("n1", 7, 3), {Name: "n2", Error: "member stopped"}}},
			HashKVIncomplete, "HashKV at revision 80: equal on 1 of 2 members (hash 7); no hash from n2: member stopped", checker.Valid},
		{"none answered", &HashKV{Revision: 80, Members: []HashKVMember{{Name: "n1", Error: "member stopped"}, {Name: "n2", Error: "has not reached revision 80"}}},
			HashKVIncomplete, "HashKV at revision 80: no hash from any member (n1: member stopped; n2: has not reached revision 80)", checker.Valid},
		{"compactions differ", &HashKV{Revision: 80, Members: []HashKVMember{m("n1", 7, 3), m("n2", 9, 5)}},
			HashKVIncomplete, "HashKV at revision 80: not comparable, the members' compact revisions differ (n1=3, n2=5)", checker.Valid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.Outcome(); got != tc.outcome {
				t.Errorf("outcome %q, want %q", got, tc.outcome)
			}
			if got := tc.h.Line(); got != tc.line {
				t.Errorf("line %q\n want %q", got, tc.line)
			}
			v, why := tc.h.Verdict()
			if v != tc.verdict || (v == checker.Invalid) != (why != "") {
				t.Errorf("verdict %v %q, want %v", v, why, tc.verdict)
			}
		})
	}
}

func TestApplyHashKVMakesAMismatchInvalidAndKeepsTheRest(t *testing.T) {
	valid := checker.Result{Verdict: checker.Valid}
	differ := &HashKV{Revision: 5, Members: []HashKVMember{{Name: "n1", Hash: 1}, {Name: "n2", Hash: 2}}}
	got := ApplyHashKV(valid, differ)
	if got.Verdict != checker.Invalid || !strings.Contains(got.Reason, "members differ: n1=1, n2=2") {
		t.Errorf("mismatch: %v %q", got.Verdict, got.Reason)
	}
	unknown := checker.Result{Verdict: checker.Unknown, Reason: "check timed out"}
	if got := ApplyHashKV(unknown, differ); got.Verdict != checker.Invalid || !strings.HasPrefix(got.Reason, "check timed out; HashKV") {
		t.Errorf("mismatch on an unknown run: %v %q", got.Verdict, got.Reason)
	}
	skipped := &HashKV{Revision: 5, Members: []HashKVMember{{Name: "n1", Unimplemented: true}}}
	if got := ApplyHashKV(unknown, skipped); got.Verdict != checker.Unknown || got.Reason != unknown.Reason {
		t.Errorf("skipped check changed the result: %v %q", got.Verdict, got.Reason)
	}
}

// A saved results.json keeps the answers, so the verdict is re-derived
// offline.
func TestHashKVRoundTripsThroughResultsJSON(t *testing.T) {
	dir := t.TempDir()
	h := &HashKV{Revision: 12, Members: []HashKVMember{{Name: "n1", MemberID: 0xa, Hash: 3, CompactRevision: 2, HashRevision: 14}, {Name: "n2", Hash: 4, CompactRevision: 2}}}
	if err := WriteResults(dir, Results{HashKV: h}); err != nil {
		t.Fatal(err)
	}
	res, err := LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.HashKV.Line() != h.Line() || res.HashKV.Members[0].MemberID != 0xa {
		t.Errorf("loaded %+v, saved %+v", res.HashKV, h)
	}
	if v, _ := res.HashKV.Verdict(); v != checker.Invalid {
		t.Errorf("loaded mismatch's verdict %v", v)
	}
}
