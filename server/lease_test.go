package server

import (
	"errors"
	"fmt"
	"testing"
	"time"

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
	le := newLessor(5)
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
	le := newLessor(1)
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
	le := newLessor(1)
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
	le := newLessor(1)
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
	back := newLessor(1)
	back.restore(le.records(), now)
	if got, want := fmt.Sprint(back.records()), fmt.Sprint(le.records()); got != want {
		t.Errorf("restored %s, want %s", got, want)
	}
	le.remove(1)
	if _, err := le.keys(1); !errors.Is(err, errLeaseNotFound) {
		t.Errorf("keys of a removed lease: %v", err)
	}
}
