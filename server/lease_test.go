package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/quorum-kv/quorum/server/etcdbolt"
	"github.com/quorum-kv/quorum/server/mvcc"
)

func TestMinLeaseTTLIsEtcds(t *testing.T) {
	for _, tt := range []struct {
		ticks     int
		heartbeat time.Duration
		want      int64
	}{
		{10, 100 * time.Millisecond, 2}, // etcd's defaults: 1.5 s rounded up
		{10, 20 * time.Millisecond, 1},
		{50, 100 * time.Millisecond, 8}, // 7.5 s
		{5, 1000 * time.Millisecond, 7}, // (3*5)/2 = 7 ticks
	} {
		if got := minLeaseTTL(tt.ticks, tt.heartbeat); got != tt.want {
			t.Errorf("minLeaseTTL(%d, %v) = %d, want %d", tt.ticks, tt.heartbeat, got, tt.want)
		}
	}
}

func TestLessorGrantValidatesAsEtcd(t *testing.T) {
	le := newLessor(5, 0)
	now := time.Unix(1000, 0)
	if ttl, err := le.grant(1, 1, now); err != nil || ttl != 5 {
		t.Errorf("grant below the minimum: ttl %d, %v; want 5 (raised)", ttl, err)
	}
	if ttl, err := le.grant(2, 60, now); err != nil || ttl != 60 {
		t.Errorf("grant 60: ttl %d, %v", ttl, err)
	}
	for _, tt := range []struct {
		id, ttl int64
		want    error
	}{
		{0, 10, errLeaseNotFound},
		{1, 10, errLeaseExists},
		{3, maxLeaseTTL + 1, errLeaseTTLTooLarge},
	} {
		if _, err := le.grant(tt.id, tt.ttl, now); !errors.Is(err, tt.want) {
			t.Errorf("grant(%d, %d): %v, want %v", tt.id, tt.ttl, err, tt.want)
		}
	}
	if fmt.Sprint(le.ids()) != "[1 2]" {
		t.Errorf("ids %v, want [1 2]", le.ids())
	}
}

// Only the primary keeps expiry times: a follower renews nothing and
// reports nothing expired; promote gives every lease its TTL plus the
// extension from then, so an election expires no lease.
func TestLessorExpiryIsThePrimarysAndPromoteExtends(t *testing.T) {
	le := newLessor(1, 0)
	t0 := time.Unix(1000, 0)
	if _, err := le.grant(7, 10, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := le.renew(7, t0); !errors.Is(err, errNotPrimary) {
		t.Errorf("renew on a follower: %v, want errNotPrimary", err)
	}
	if got := le.expired(t0.Add(time.Hour), 10); got != nil {
		t.Errorf("a follower found %v expired", got)
	}
	t1 := t0.Add(time.Hour) // the lease is long past its TTL: an election happened
	le.promote(t1, time.Second)
	if got := le.expired(t1.Add(10*time.Second), 10); got != nil {
		t.Errorf("expired %v within TTL+extension of the promotion", got)
	}
	st, err := le.timeToLive(7, false, t1)
	if err != nil || st.granted != 10 || st.remaining != 11 {
		t.Errorf("timeToLive after promote: %+v, %v; want granted 10, remaining 11", st, err)
	}
	if ttl, err := le.renew(7, t1.Add(5*time.Second)); err != nil || ttl != 10 {
		t.Errorf("renew: %d, %v", ttl, err)
	}
	if got := le.expired(t1.Add(14*time.Second), 10); got != nil {
		t.Errorf("expired %v before the renewed TTL ran out", got)
	}
	t2 := t1.Add(16 * time.Second)
	if got := fmt.Sprint(le.expired(t2, 10)); got != "[7]" {
		t.Errorf("expired %s, want [7]", got)
	}
	if got := le.expired(t2.Add(time.Second), 10); got != nil {
		t.Errorf("expired %v again while its revoke is in flight", got)
	}
	if got := fmt.Sprint(le.expired(t2.Add(expiredLeaseRetry), 10)); got != "[7]" {
		t.Errorf("expired %s after the retry interval, want [7] again", got)
	}
	if _, err := le.renew(7, t2); !errors.Is(err, errLeaseNotFound) {
		t.Errorf("renew of an expired lease: %v, want errLeaseNotFound", err)
	}
	le.demote()
	if got := le.expired(t2.Add(time.Hour), 10); got != nil {
		t.Errorf("a demoted lessor found %v expired", got)
	}
}

// Expired leases come out at most limit at a time, lowest IDs first; the
// rest on the next call.
func TestLessorExpiredIsBounded(t *testing.T) {
	le := newLessor(1, 0)
	t0 := time.Unix(1000, 0)
	le.promote(t0, 0)
	for id := int64(1); id <= 5; id++ {
		if _, err := le.grant(id, 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	t1 := t0.Add(2 * time.Second)
	if got := fmt.Sprint(le.expired(t1, 3)); got != "[1 2 3]" {
		t.Errorf("first call: %s, want [1 2 3]", got)
	}
	if got := fmt.Sprint(le.expired(t1, 3)); got != "[4 5]" {
		t.Errorf("second call: %s, want [4 5]", got)
	}
}

func TestLessorAttachDetachAndRecordsRoundTrip(t *testing.T) {
	le := newLessor(1, 0)
	now := time.Unix(1000, 0)
	for _, id := range []int64{1, 2} {
		if _, err := le.grant(id, 30, now); err != nil {
			t.Fatal(err)
		}
	}
	le.applyChanges([]mvcc.LeaseChange{
		{Key: []byte("b"), New: 1}, {Key: []byte("a"), New: 1}, {Key: []byte("c"), New: 2},
		{Key: []byte("c"), Old: 2, New: 1}, // moved to lease 1
		{Key: []byte("b"), Old: 1},         // deleted or put without a lease
		{Key: []byte("x"), Old: 99},        // a lease already gone
	})
	if ks, _ := le.keys(1); fmt.Sprint(ks) != "[a c]" {
		t.Errorf("lease 1 keys %v, want [a c]", ks)
	}
	if ks, _ := le.keys(2); len(ks) != 0 {
		t.Errorf("lease 2 keys %v, want none", ks)
	}
	back := newLessor(1, 0)
	back.restore(le.records(), now)
	if got, want := fmt.Sprint(back.records()), fmt.Sprint(le.records()); got != want {
		t.Errorf("restored %s, want %s", got, want)
	}
	le.remove(1)
	if _, err := le.keys(1); !errors.Is(err, errLeaseNotFound) {
		t.Errorf("keys of a removed lease: %v", err)
	}
}

// With checkpoints on, the primary checkpoints a lease longer than the
// interval once the interval has passed, with its remaining TTL rounded up;
// a new primary extends the lease by that instead of the whole TTL; a
// renewal needs the record cleared first and then gives the full TTL; the
// record travels in snapshot records. Leases no longer than the interval,
// at their full TTL, expired or on a follower get no checkpoint.
func TestLessorCheckpointsRemainingTTLAsEtcd(t *testing.T) {
	const interval = 10 * time.Second
	le := newLessor(1, interval)
	t0 := time.Unix(1000, 0)
	le.promote(t0, 0)
	for _, g := range []struct{ id, ttl int64 }{{1, 60}, {2, 10}, {3, 30}} {
		if _, err := le.grant(g.id, g.ttl, t0); err != nil {
			t.Fatal(err)
		}
	}
	if cps := le.dueCheckpoints(t0.Add(interval-time.Millisecond), 100); len(cps) != 0 {
		t.Errorf("checkpoints before the interval: %v", cps)
	}
	now := t0.Add(interval + 500*time.Millisecond)
	cps := le.dueCheckpoints(now, 100)
	// Lease 2 (TTL 10, not above the 10 s interval) was never scheduled.
	if got := fmtCheckpoints(cps); got != "1:50 3:20" {
		t.Fatalf("due checkpoints %s", got)
	}
	if again := le.dueCheckpoints(now, 100); len(again) != 0 {
		t.Errorf("the same checkpoints twice: %v", again)
	}
	for _, c := range cps {
		le.checkpoint(c.ID, c.Remaining_TTL, now)
	}
	// Applied on the primary, each is scheduled again one interval later
	// (lease 3, 20 s left, still above the interval).
	if got := fmtCheckpoints(le.dueCheckpoints(now.Add(interval), 1)); got != "1:40" {
		t.Errorf("next checkpoint, limit 1: %s", got)
	}

	// A leader change: the new primary extends lease 1 by its 50 s, lease
	// 2 (never checkpointed) by its TTL.
	le.demote()
	if cps := le.dueCheckpoints(now.Add(time.Hour), 100); cps != nil {
		t.Errorf("a follower's checkpoints: %v", cps)
	}
	t1 := now.Add(30 * time.Second)
	le.promote(t1, time.Second)
	for id, want := range map[int64]int64{1: 51, 2: 11, 3: 21} {
		if st, err := le.timeToLive(id, false, t1); err != nil || st.remaining != want || st.granted == want {
			t.Errorf("lease %d after promote: %+v %v, want remaining %d", id, st, err, want)
		}
	}
	if !le.needsClear(1, t1) || le.needsClear(2, t1) || le.needsClear(9, t1) {
		t.Errorf("needsClear: lease 1 %v (want true), 2 %v, missing %v", le.needsClear(1, t1), le.needsClear(2, t1), le.needsClear(9, t1))
	}
	recs := le.records()
	if recs[0].RemainingTTL != 50 || recs[1].RemainingTTL != 0 || recs[2].RemainingTTL != 20 {
		t.Errorf("records %+v", recs)
	}
	le.checkpoint(1, 0, t1) // the clearing entry, applied
	if ttl, err := le.renew(1, t1); err != nil || ttl != 60 {
		t.Errorf("renew after clearing: %d %v", ttl, err)
	}
	if st, _ := le.timeToLive(1, false, t1); st.remaining != 60 {
		t.Errorf("lease 1 after the renewal: %+v, want 60 s left", st)
	}

	// A snapshot's records carry the remaining TTL to a new lessor, whose
	// promotion uses it.
	back := newLessor(1, interval)
	back.restore(recs, t1)
	back.promote(t1, 0)
	if st, _ := back.timeToLive(3, false, t1); st.remaining != 20 {
		t.Errorf("restored lease 3: %+v, want 20 s left", st)
	}

	// An expired lease and a lease at its full TTL are not checkpointed.
	t2 := t1.Add(21*time.Second + interval)
	if got := fmtCheckpoints(le.dueCheckpoints(t2, 100)); got != "1:29" {
		t.Errorf("checkpoints at %v: %s (lease 3 has expired)", t2.Sub(t1), got)
	}

	off := newLessor(1, 0)
	off.promote(t0, 0)
	off.grant(1, 600, t0)
	if cps := off.dueCheckpoints(t0.Add(time.Hour), 100); cps != nil || off.needsClear(1, t0) {
		t.Errorf("checkpoints off: %v", cps)
	}
}

// fmtCheckpoints prints checkpoints as "id:remaining", space-separated.
func fmtCheckpoints(cps []*pb.LeaseCheckpoint) string {
	var parts []string
	for _, c := range cps {
		parts = append(parts, fmt.Sprintf("%d:%d", c.ID, c.Remaining_TTL))
	}
	return strings.Join(parts, " ")
}

// A checkpointed remaining TTL goes into the remaining_TTL of etcd's lease
// bucket in an etcd-format snapshot, and comes back from one (etcd 3.6
// persists it and restores it).
func TestEtcdSnapshotCarriesCheckpointedTTL(t *testing.T) {
	store := mvcc.New()
	if _, err := store.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 5}); err != nil {
		t.Fatal(err)
	}
	recs := []leaseRecord{{ID: 5, TTL: 600, RemainingTTL: 420, Keys: [][]byte{[]byte("k")}}, {ID: 6, TTL: 60}}
	set := snapshotSet{view: store.View(), sections: snapshotSections{membership: NewMembership(nil, ""), leases: recs}}
	path := filepath.Join(t.TempDir(), "snap.db")
	if err := etcdbolt.WriteFile(path, etcdBackend(set, 1)); err != nil {
		t.Fatal(err)
	}
	st, err := readBackendFile(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%+v", st.sections.leases), fmt.Sprintf("%+v", recs); got != want {
		t.Errorf("leases read back %s, want %s", got, want)
	}
}

// A new leader with many leases expiring together spreads them as etcd's
// Promote does: at most 750 (3/4 of the revoke rate) in the first second's
// window, the rest pushed later in proportion, none earlier than its TTL;
// below 1,000 leases nothing moves.
func TestLessorPromoteSpreadsPiledUpExpiriesAsEtcd(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// spreadDelay is etcd's rateDelay for the k-th lease of one window,
	// computed at run time as etcd does.
	spreadDelay := func(k int) time.Duration { return time.Duration(float64(time.Second) * (float64(k) / 750)) }
	for _, n := range []int{999, 2000} {
		le := newLessor(1, 0)
		for id := int64(1); id <= int64(n); id++ {
			if _, err := le.grant(id, 10, t0); err != nil {
				t.Fatal(err)
			}
		}
		le.promote(t0, time.Second)
		perSecond := map[int]int{}
		var latest time.Duration
		for id := int64(1); id <= int64(n); id++ {
			d := le.leases[id].expiry.Sub(t0)
			if d < 11*time.Second {
				t.Fatalf("%d leases: lease %d expires after %v, before its TTL plus the extension", n, id, d)
			}
			perSecond[int(d/time.Second)]++
			latest = max(latest, d)
		}
		switch n {
		case 999:
			if perSecond[11] != 999 {
				t.Errorf("999 leases were moved: %v", perSecond)
			}
		case 2000:
			// Leases 1..750 stay at 11 s; lease 751+k gets (751+k)/750 s more.
			if got := le.leases[750].expiry.Sub(t0); got != 11*time.Second {
				t.Errorf("lease 750 at %v, want 11s", got)
			}
			if got, want := le.leases[2000].expiry.Sub(t0), 11*time.Second+spreadDelay(2000); got != want {
				t.Errorf("lease 2000 at %v, want %v", got, want)
			}
			for sec, k := range perSecond {
				if k > 750 {
					t.Errorf("%d leases expire in second %d: %v", k, sec, perSecond)
				}
			}
			if latest > 14*time.Second {
				t.Errorf("latest expiry %v", latest)
			}
		}
	}
}
