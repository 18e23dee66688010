package checker

import (
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/checker/logscan"
	"github.com/quorum-kv/quorum/history"
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

// A file-corruption fault that a member refused excuses raft's lost-log
// panic in that member's log, and nothing else.
func TestCorruptionExcusesRaftsLostLogPanicInTheDamagedMember(t *testing.T) {
	v := "targets=n2 (member/wal/1.wal truncated from 10 to 5 bytes: n2 refused to start)"
	started := "targets=n3 (member/wal/1.wal bit 1 of byte 3 of 9 flipped: n3 started on it)"
	events := []history.Event{
		{Index: 0, Type: history.Invoke, Process: history.NemesisProcess, F: "truncate-wal", Value: &v},
		{Index: 1, Type: history.Invoke, Process: history.NemesisProcess, F: "bitflip-wal", Value: &started},
	}
	lost := "panic: tocommit(13) is out of range [lastIndex(11)]. Was the raft log corrupted, truncated, or lost?"
	r := logscan.Result{Verdict: Invalid, Files: 3, Findings: []logscan.Finding{
		{File: "n2.log", Line: 4, Kind: "panic", Text: lost},
		{File: "n3.log", Line: 9, Kind: "panic", Text: lost},          // n3 started on its file: counts
		{File: "n2.log", Line: 7, Kind: "panic", Text: "panic: boom"}, // another panic: counts
	}}
	r.Excuse(CorruptionExcuse(events))
	if len(r.Excused) != 1 || r.Excused[0].File != "n2.log" || len(r.Findings) != 2 || r.Verdict != Invalid {
		t.Fatalf("excused %v, left %v, verdict %v", r.Excused, r.Findings, r.Verdict)
	}
	r.Findings = r.Findings[:0]
	r.Excuse(CorruptionExcuse(events))
	if r.Verdict != Valid {
		t.Fatalf("nothing left, verdict %v", r.Verdict)
	}
	if CorruptionExcuse(nil) != nil {
		t.Fatal("a history without corruption faults excuses something")
	}
}
