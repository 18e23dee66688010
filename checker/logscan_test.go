package checker

import (
	"strings"
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

// A cluster that did not recover turns a valid run unknown, with the
// failure in the reason; it changes nothing else.
func TestAnUnrecoveredClusterMakesAValidRunUnknown(t *testing.T) {
	for _, tc := range []struct {
		before  Verdict
		failure string
		want    Verdict
	}{
		{Valid, "", Valid},
		{Valid, "not healthy within 20s: n1 knows no leader", Unknown},
		{Invalid, "not healthy within 20s", Invalid},
		{Unknown, "not healthy within 20s", Unknown},
	} {
		r := Result{Verdict: tc.before}
		r.AddRecovery(tc.failure)
		if r.Verdict != tc.want {
			t.Errorf("%v + recovery %q = %v, want %v", tc.before, tc.failure, r.Verdict, tc.want)
		}
		if tc.before == Valid && tc.failure != "" && !strings.Contains(r.Reason, tc.failure) {
			t.Errorf("reason %q lacks the failure", r.Reason)
		}
	}
}
