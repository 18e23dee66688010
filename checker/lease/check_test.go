package lease_test

import (
	"testing"

	"github.com/quorum-kv/quorum/checker/lease"
	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

type script struct{ events []history.Event }

func (s *script) add(t int64, typ history.Type, f, key string, v *string, rev int64) {
	s.events = append(s.events, history.Event{Index: int64(len(s.events)), Time: t, Type: typ, Process: len(s.events), F: f, Key: key, Value: v, Revision: rev, Node: "n1"})
}

// op records an operation on a fresh process: invoke at t, done at t+1.
func (s *script) op(t int64, f, key string, in, out *string, rev int64) {
	p := len(s.events)
	s.events = append(s.events,
		history.Event{Index: int64(p), Time: t, Type: history.Invoke, Process: p, F: f, Key: key, Value: in, Node: "n1"},
		history.Event{Index: int64(p + 1), Time: t + 1, Type: history.OK, Process: p, F: f, Key: key, Value: out, Revision: rev, Node: "n1"})
}

const sec = int64(1e9)

func spec(plan string) *string {
	return history.WatchJSON(history.LeaseSpec{ID: 7, TTL: 1, Plan: plan, BoundNS: sec})
}

func read(keys map[string]int64) *string { return history.WatchJSON(history.LeaseRead{Keys: keys}) }

// lease 7 granted at 0 with keys k1, k2 put at revisions 2, 3.
func granted(plan string) *script {
	var s script
	s.op(0, history.FGrant, "", spec(plan), spec(plan), 0)
	s.op(10, history.FLeasePut, "k1", spec(plan), nil, 2)
	s.op(20, history.FLeasePut, "k2", spec(plan), nil, 3)
	return &s
}

func TestLeaseChecks(t *testing.T) {
	both := map[string]int64{"k1": 7, "k2": 7}
	for _, tc := range []struct {
		name string
		plan string
		more func(s *script)
		kind string
	}{
		{"kept keys seen within the TTL", history.LeaseKeep, func(s *script) {
			s.op(sec/2, history.FLeaseRead, "", history.Str("linearizable"), read(both), 3)
		}, ""},
		{"kept keys missing within the TTL", history.LeaseKeep, func(s *script) {
			s.op(sec/2, history.FLeaseRead, "", history.Str("linearizable"), read(nil), 4)
		}, lease.KindExpiredEarly},
		{"abandoned keys gone after the bound", history.LeaseAbandon, func(s *script) {
			s.op(3*sec, history.FLeaseRead, "", history.Str("linearizable"), read(nil), 4)
		}, ""},
		{"abandoned keys outlive the bound", history.LeaseAbandon, func(s *script) {
			s.op(3*sec, history.FLeaseRead, "", history.Str("linearizable"), read(both), 3)
		}, lease.KindOutlived},
		{"a stale serializable read is not held to the bound", history.LeaseAbandon, func(s *script) {
			s.op(3*sec, history.FLeaseRead, "", history.Str("serializable"), read(both), 3)
		}, ""},
		{"revoked keys seen at the revoke's revision", history.LeaseRevoke, func(s *script) {
			s.op(30, history.FRevoke, "", spec("revoke"), nil, 4)
			s.op(40, history.FLeaseRead, "", history.Str("serializable"), read(both), 4)
		}, lease.KindRevokedSeen},
		{"half of a lease's keys", history.LeaseRevoke, func(s *script) {
			s.op(40, history.FLeaseRead, "", history.Str("linearizable"), read(map[string]int64{"k1": 7}), 3)
		}, lease.KindSplit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := granted(tc.plan)
			tc.more(s)
			r := lease.Check(s.events)
			want := verdict.Valid
			if tc.kind != "" {
				want = verdict.Invalid
			}
			if r.Verdict != want || tc.kind != "" && r.Counts[tc.kind] == 0 {
				t.Fatalf("%+v", r)
			}
		})
	}
}
