// Package lease checks the lease workload: clients grant leases with
// short TTLs, put keys attached to them, then keep some alive
// (history.FKeepAlive), abandon some and revoke some, while every member
// is read (history.FLeaseRead: every key under the workload's prefix with
// its lease, at one header revision). Check is a pure function of the
// history; its times are the client's monotonic ones.
//
// Clock reasoning. A grant or keep-alive acknowledged ok with TTL T was
// applied by the leader at some time s between its invocation i and its
// acknowledgement a, and set the lease's expiry to s + T at the earliest.
// So:
//
//   - kept alive: a lease with an ok renewal r (grant or keep-alive) has
//     not expired before r.i + T_r — if it was renewed before a read was
//     served the expiry is later than r.i + T_r, and if after, it was
//     still alive then. A read that completes before r.i + T_r, whose
//     revision covers the key's put, with no revoke of the lease invoked
//     before it completed, must see the key.
//   - abandoned: the last renewal took effect before its acknowledgement
//     a (an unacknowledged one before the end of its operation), so the
//     lease expires by a + T on that leader. The leader checks for expired
//     leases every 500 ms and proposes the revoke, which commits in a
//     round trip; after a leader change the new leader restarts every
//     lease's full TTL plus an election timeout (etcd's Promote), and the
//     election itself takes up to two election timeouts. The workload
//     records its bound B (LeaseSpec.BoundNS: TTL + 3 election timeouts +
//     500 ms + 1 s margin) with each lease: a linearizable read invoked
//     after a + T + B must not see the lease's keys. Serializable reads
//     may be stale without bound and are not held to it.
//   - revoked: an ok revoke at revision R deleted the lease's keys at R:
//     no read at revision >= R (on any member, whatever its consistency:
//     a read is a snapshot at its revision) may see them.
//   - one revision: a read sees either all or none of a lease's keys
//     whose puts its revision covers.
package lease

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

// Anomaly kinds.
const (
	KindExpiredEarly = "expired-early"  // a kept-alive lease's key missing
	KindOutlived     = "outlived-bound" // an abandoned lease's key after its bound
	KindRevokedSeen  = "revoked-seen"   // a revoked lease's key at or after the revoke
	KindSplit        = "split"          // some of a lease's keys but not all
)

// MaxAnomalies is how many anomalies Result keeps.
const MaxAnomalies = 20

// Anomaly is one violation, with the read that shows it.
type Anomaly struct {
	Kind  string   `json:"kind"`
	Lease string   `json:"lease"`
	Plan  string   `json:"plan"`
	TTL   int64    `json:"ttl"`
	Keys  []string `json:"keys"`
	// Read is the read's invoke index, member, revision and interval.
	ReadIndex int64  `json:"read_index"`
	Node      string `json:"node,omitempty"`
	Revision  int64  `json:"rev"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
	// Deadline is the time the property is measured against (the
	// renewal's invocation + TTL, or the last renewal + TTL + bound), or
	// the revoke's revision for revoked-seen.
	Deadline    int64  `json:"deadline"`
	Explanation string `json:"explanation"`
}

// Result is the lease check's outcome.
type Result struct {
	Verdict verdict.Verdict `json:"verdict"`
	Reason  string          `json:"reason,omitempty"`
	// Leases counts ok grants by plan; Reads the ok reads, Checked the
	// (read, lease) pairs some property applied to.
	Leases  map[string]int `json:"leases"`
	Reads   int            `json:"reads"`
	Checked int            `json:"checked"`
	// Counts counts anomalies by kind; Anomalies are the first
	// MaxAnomalies.
	Counts    map[string]int `json:"counts,omitempty"`
	Anomalies []Anomaly      `json:"anomalies,omitempty"`
}

type leaseState struct {
	spec      history.LeaseSpec
	renewals  [][2]int64 // ok renewal: invocation time, TTL ns
	lastAck   int64      // last renewal's acknowledgement (or end of an unknown one)
	revokeInv int64      // first revoke invocation, -1: none
	revokeRev int64      // ok revoke's revision, 0: none
	puts      map[string]int64
}

// LeaseHex renders a lease ID as etcdctl does.
func LeaseHex(id int64) string { return strconv.FormatInt(id, 16) }

// Check checks a lease workload history.
func Check(events []history.Event) Result {
	res := Result{Leases: map[string]int{}, Counts: map[string]int{}}
	ops, _, err := history.Operations(events)
	if err != nil {
		res.Reason = fmt.Sprintf("cannot check: %v", err)
		return res
	}
	end := int64(0)
	if n := len(events); n > 0 {
		end = events[n-1].Time
	}
	leases := map[int64]*leaseState{}
	get := func(id int64) *leaseState {
		if l := leases[id]; l != nil {
			return l
		}
		l := &leaseState{revokeInv: -1, puts: map[string]int64{}}
		leases[id] = l
		return l
	}
	var reads []history.Op
	for _, o := range ops {
		var spec history.LeaseSpec
		switch o.F() {
		case history.FGrant, history.FKeepAlive, history.FLeasePut, history.FRevoke:
			v := o.Invoke.Value
			if (o.F() == history.FGrant || o.F() == history.FKeepAlive) && o.Type() == history.OK {
				v = o.Complete.Value
			}
			if o.F() == history.FGrant && o.Type() != history.OK {
				continue
			}
			if err := unmarshal(v, &spec); err != nil {
				res.Reason = fmt.Sprintf("cannot check: %s #%d: %v", o.F(), o.Invoke.Index, err)
				return res
			}
		case history.FLeaseRead:
			if o.Type() == history.OK {
				reads = append(reads, o)
			}
			continue
		default:
			continue
		}
		l := get(spec.ID)
		switch o.F() {
		case history.FGrant:
			l.spec = spec
			res.Leases[spec.Plan]++
			l.renewals = append(l.renewals, [2]int64{o.Invoke.Time, spec.TTL * 1e9})
			l.lastAck = max(l.lastAck, o.Complete.Time)
		case history.FKeepAlive:
			switch o.Type() {
			case history.OK:
				l.renewals = append(l.renewals, [2]int64{o.Invoke.Time, spec.TTL * 1e9})
				l.lastAck = max(l.lastAck, o.Complete.Time)
			case history.Info:
				t := end
				if o.Complete != nil {
					t = o.Complete.Time
				}
				l.lastAck = max(l.lastAck, t)
			}
		case history.FLeasePut:
			if o.Type() == history.OK {
				l.puts[o.Key()] = o.Complete.Revision
			}
		case history.FRevoke:
			if l.revokeInv < 0 {
				l.revokeInv = o.Invoke.Time
			}
			if o.Type() == history.OK {
				l.revokeRev = o.Complete.Revision
			}
		}
	}
	ids := make([]int64, 0, len(leases))
	for id, l := range leases {
		if l.spec.Plan != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)

	add := func(a Anomaly) {
		res.Counts[a.Kind]++
		if len(res.Anomalies) < MaxAnomalies {
			res.Anomalies = append(res.Anomalies, a)
		}
	}
	for _, r := range reads {
		var lr history.LeaseRead
		if err := unmarshal(r.Complete.Value, &lr); err != nil {
			res.Reason = fmt.Sprintf("cannot check: lease-read #%d: %v", r.Invoke.Index, err)
			return res
		}
		res.Reads++
		rev := r.Complete.Revision
		linear := r.Invoke.Value == nil || *r.Invoke.Value != "serializable"
		for _, id := range ids {
			l := leases[id]
			var covered, seen, missing []string
			for k, pr := range l.puts {
				if pr > rev {
					continue
				}
				covered = append(covered, k)
				if lr.Keys[k] == id {
					seen = append(seen, k)
				} else {
					missing = append(missing, k)
				}
			}
			if len(covered) == 0 {
				continue
			}
			slices.Sort(seen)
			slices.Sort(missing)
			res.Checked++
			base := Anomaly{Lease: LeaseHex(id), Plan: l.spec.Plan, TTL: l.spec.TTL, ReadIndex: r.Invoke.Index,
				Node: r.Complete.Node, Revision: rev, From: r.Invoke.Time, To: r.Complete.Time}
			if len(seen) > 0 && len(missing) > 0 {
				a := base
				a.Kind, a.Keys = KindSplit, missing
				a.Explanation = fmt.Sprintf("the read at revision %d saw %v of lease %s but not %v", rev, seen, a.Lease, missing)
				add(a)
			}
			if l.revokeRev > 0 && rev >= l.revokeRev && len(seen) > 0 {
				a := base
				a.Kind, a.Keys, a.Deadline = KindRevokedSeen, seen, l.revokeRev
				a.Explanation = fmt.Sprintf("lease %s was revoked at revision %d, yet the read at revision %d on %s still saw %v", a.Lease, l.revokeRev, rev, a.Node, seen)
				add(a)
			}
			if len(missing) > 0 && (l.revokeInv < 0 || l.revokeInv > r.Complete.Time) {
				alive := int64(-1)
				for _, rn := range l.renewals {
					alive = max(alive, rn[0]+rn[1])
				}
				if r.Complete.Time < alive {
					a := base
					a.Kind, a.Keys, a.Deadline = KindExpiredEarly, missing, alive
					a.Explanation = fmt.Sprintf("lease %s (TTL %d s) was renewed by a request sent at %s and so was alive until at least %s, not revoked, yet the read on %s that ended at %s (revision %d) lacked %v",
						a.Lease, l.spec.TTL, secs(alive-l.spec.TTL*1e9), secs(alive), a.Node, secs(r.Complete.Time), rev, missing)
					add(a)
				}
			}
			if l.spec.Plan == history.LeaseAbandon && linear && len(seen) > 0 {
				deadline := l.lastAck + l.spec.TTL*1e9 + l.spec.BoundNS
				if r.Invoke.Time > deadline {
					a := base
					a.Kind, a.Keys, a.Deadline = KindOutlived, seen, deadline
					a.Explanation = fmt.Sprintf("lease %s (TTL %d s) was last renewed by %s and abandoned; its keys had to be gone by %s (TTL + bound %s), yet the linearizable read on %s sent at %s (revision %d) saw %v",
						a.Lease, l.spec.TTL, secs(l.lastAck), secs(deadline), secs(l.spec.BoundNS), a.Node, secs(r.Invoke.Time), rev, seen)
					add(a)
				}
			}
		}
	}
	switch {
	case len(res.Counts) > 0:
		res.Verdict = verdict.Invalid
	case len(ids) == 0:
		res.Reason = "no lease was granted: nothing was checked"
	case res.Checked == 0:
		res.Reason = "no read covered a lease's keys: nothing was checked"
	default:
		res.Verdict = verdict.Valid
	}
	return res
}

func secs(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }

func unmarshal(v *string, into any) error {
	if v == nil {
		return fmt.Errorf("no value")
	}
	return json.Unmarshal([]byte(*v), into)
}
