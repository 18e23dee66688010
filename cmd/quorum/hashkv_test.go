package main

import (
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/reports"
)

// `quorum check RUN_DIR` re-applies the HashKV answers saved in
// results.json: members whose hashes differ make a valid history's run
// invalid; equal hashes and an unsupported server leave it valid.
func TestCheckAppliesTheSavedHashKVAnswers(t *testing.T) {
	m := func(name string, hash uint32) reports.HashKVMember {
		return reports.HashKVMember{Name: name, Hash: hash, CompactRevision: 1, HashRevision: 4}
	}
	for _, tc := range []struct {
		name string
		h    *reports.HashKV
		code int
		line string
	}{
		{"equal", &reports.HashKV{Revision: 4, Members: []reports.HashKVMember{m("n1", 9), m("n2", 9)}}, 0,
			"HashKV at revision 4: equal on 2 members (hash 9)"},
		{"differ", &reports.HashKV{Revision: 4, Members: []reports.HashKVMember{m("n1", 9), m("n2", 8)}}, 1,
			"HashKV at revision 4: members differ: n1=9, n2=8"},
		{"unsupported", &reports.HashKV{Revision: 4, Members: []reports.HashKVMember{{Name: "n1", Unimplemented: true}}}, 0,
			"HashKV at revision 4: skipped (unsupported: n1 answered Unimplemented)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := savedRun(t, "register-valid")
			if err := reports.WriteResults(dir, reports.Results{HashKV: tc.h}); err != nil {
				t.Fatal(err)
			}
			o := quorum(t, "check", dir)
			if o.code != tc.code || !strings.Contains(o.stdout, "\n"+tc.line+"\n") {
				t.Errorf("exit %d, stdout:\n%s\nwant exit %d and the line %q", o.code, o.stdout, tc.code, tc.line)
			}
			if tc.code == 1 && !strings.Contains(o.stdout, "reason: "+tc.line) {
				t.Errorf("stdout:\n%s\nwant the mismatch as the reason", o.stdout)
			}
		})
	}
}
