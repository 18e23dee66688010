package checker

import (
	"testing"

	"github.com/quorum-kv/quorum/checker/logscan"
)

func TestALogFindingMakesTheRunInvalid(t *testing.T) {
	for _, tc := range []struct {
		before, scan, want Verdict
	}{
		{Valid, Invalid, Invalid},
		{Valid, Valid, Valid},
		{Valid, Unknown, Valid}, // logs that cannot be read change nothing
		{Unknown, Invalid, Invalid},
		{Invalid, Valid, Invalid},
	} {
		r := Result{Verdict: tc.before}
		r.AddLogScan(&logscan.Result{Verdict: tc.scan})
		if r.Verdict != tc.want || r.Logs == nil {
			t.Errorf("%v + log scan %v = %v, want %v", tc.before, tc.scan, r.Verdict, tc.want)
		}
	}
}
