package server

import (
	"errors"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/server/bugzoo"
	"github.com/quorum-kv/quorum/server/mvcc"
)

// Lease errors, etcd's (lease/lessor.go); the front maps them onto
// rpctypes' wire errors.
var (
	errLeaseNotFound    = errors.New("lease not found")
	errLeaseExists      = errors.New("lease already exists")
	errLeaseTTLTooLarge = errors.New("too large lease TTL")
	// errNotPrimary: the member is not the leader, whose lessor alone keeps
	// expiry times; the caller forwards to the leader.
	errNotPrimary = errors.New("not a primary lessor")
)

// maxLeaseTTL is etcd's MaxLeaseTTL, in seconds.
const maxLeaseTTL = 9000000000

// expiredLeaseRetry is how long the leader waits before proposing the revoke
// of an expired lease again (etcd's expiredLeaseRetryInterval).
const expiredLeaseRetry = 3 * time.Second

// minLeaseTTL is etcd's minimum lease TTL in seconds: one and a half
// election timeouts (in ticks), rounded up (etcdserver/server.go).
func minLeaseTTL(electionTicks int, heartbeat time.Duration) int64 {
	d := time.Duration((3*electionTicks)/2) * heartbeat
	return int64(math.Ceil(d.Seconds()))
}

// lease is one lease. id, ttl and keys are replicated state, changed only by
// the applier; expiry is the leader's alone (zero: forever, on a follower).
type lease struct {
	id     int64
	ttl    int64
	keys   map[string]struct{}
	expiry time.Time
	// retry: the leader proposed the revoke of this expired lease and
	// proposes it again only after then.
	retry time.Time
}

// lessor is a member's lease table (etcd's lessor): the leases by ID, their
// TTLs and attached keys, which the applier changes as it applies committed
// entries (grant, revoke, attach, detach) and the snapshot carries; and the
// expiry times, which are not replicated: only the leader (primary) keeps
// them, resets them on becoming leader (Promote) and decides expiry, which
// it proposes through Raft as a LeaseRevoke.
//
// The applier is the only caller of grant, remove, applyChanges and restore;
// the front and the leader's expiry loop call the rest. A mutex guards the
// table; the applier takes it only for lease requests and for writes that
// change a key's lease, never for other writes.
type lessor struct {
	minTTL int64

	mu      sync.RWMutex
	leases  map[int64]*lease
	primary bool
}

func newLessor(minTTL int64) *lessor {
	return &lessor{minTTL: minTTL, leases: map[int64]*lease{}}
}

// grant adds a lease, its TTL raised to the minimum; on the primary it
// expires after its TTL from now. Applier only.
func (le *lessor) grant(id, ttl int64, now time.Time) (int64, error) {
	if id == 0 {
		return 0, errLeaseNotFound
	}
	if ttl > maxLeaseTTL {
		return 0, errLeaseTTLTooLarge
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if _, ok := le.leases[id]; ok {
		return 0, errLeaseExists
	}
	ttl = max(ttl, le.minTTL)
	l := &lease{id: id, ttl: ttl, keys: map[string]struct{}{}}
	if le.primary {
		l.expiry = now.Add(time.Duration(ttl) * time.Second)
	}
	le.leases[id] = l
	return ttl, nil
}

// exists reports whether lease id exists. Any goroutine.
func (le *lessor) exists(id int64) bool {
	le.mu.RLock()
	_, ok := le.leases[id]
	le.mu.RUnlock()
	return ok
}

// keys returns the keys attached to lease id, sorted (the order every
// member deletes them in), or errLeaseNotFound. Any goroutine.
func (le *lessor) keys(id int64) ([]string, error) {
	le.mu.RLock()
	defer le.mu.RUnlock()
	l := le.leases[id]
	if l == nil {
		return nil, errLeaseNotFound
	}
	return sortedKeys(l), nil
}

func sortedKeys(l *lease) []string {
	ks := make([]string, 0, len(l.keys))
	for k := range l.keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// remove deletes lease id (its keys are the caller's to delete first).
// Applier only.
func (le *lessor) remove(id int64) {
	le.mu.Lock()
	delete(le.leases, id)
	le.mu.Unlock()
}

// applyChanges detaches and attaches keys as the store's writes changed
// their leases. A lease missing here (the write was checked against the
// table, so only for a detach from a lease already removed) is skipped.
// Applier only.
func (le *lessor) applyChanges(cs []mvcc.LeaseChange) {
	le.mu.Lock()
	defer le.mu.Unlock()
	for _, c := range cs {
		if l := le.leases[c.Old]; l != nil {
			delete(l.keys, string(c.Key))
		}
		if l := le.leases[c.New]; l != nil {
			l.keys[string(c.Key)] = struct{}{}
		}
	}
}

// renew resets lease id's expiry to its full TTL from now and returns the
// TTL. Errors: errNotPrimary off the leader; errLeaseNotFound for a lease
// that does not exist or has expired (its revoke is on the way).
func (le *lessor) renew(id int64, now time.Time) (int64, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return -1, errNotPrimary
	}
	l := le.leases[id]
	if l == nil || !now.Before(l.expiry) {
		return -1, errLeaseNotFound
	}
	l.expiry = now.Add(time.Duration(l.ttl) * time.Second)
	return l.ttl, nil
}

// leaseStatus is what TimeToLive reports of a lease.
type leaseStatus struct {
	granted   int64
	remaining int64 // seconds, rounded down
	keys      []string
}

// timeToLive reports lease id as of now. Errors: errNotPrimary off the
// leader (only the leader knows remaining TTLs), errLeaseNotFound.
func (le *lessor) timeToLive(id int64, withKeys bool, now time.Time) (leaseStatus, error) {
	le.mu.RLock()
	defer le.mu.RUnlock()
	if !le.primary {
		return leaseStatus{}, errNotPrimary
	}
	l := le.leases[id]
	if l == nil {
		return leaseStatus{}, errLeaseNotFound
	}
	st := leaseStatus{granted: l.ttl, remaining: int64(l.expiry.Sub(now).Seconds())}
	if withKeys {
		st.keys = sortedKeys(l)
	}
	return st, nil
}

// ids returns every lease's ID, sorted. Any goroutine.
func (le *lessor) ids() []int64 {
	le.mu.RLock()
	ids := make([]int64, 0, len(le.leases))
	for id := range le.leases {
		ids = append(ids, id)
	}
	le.mu.RUnlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// promote makes this lessor the primary: every lease expires its full TTL
// plus extend from now, so that no lease expires because of the election
// (etcd's Promote, which extends by an election timeout).
func (le *lessor) promote(now time.Time, extend time.Duration) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.primary = true
	for _, l := range le.leases {
		l.expiry = now.Add(extend + time.Duration(l.ttl)*time.Second)
		if bugzoo.Enabled(bugzoo.EarlyLeaseExpiry) {
			l.expiry = now
		}
		l.retry = time.Time{}
	}
}

// demote forgets the expiry times: a follower decides no expiry.
func (le *lessor) demote() {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.primary = false
	for _, l := range le.leases {
		l.expiry, l.retry = time.Time{}, time.Time{}
	}
}

// isPrimary reports whether promote was called more recently than demote.
func (le *lessor) isPrimary() bool {
	le.mu.RLock()
	defer le.mu.RUnlock()
	return le.primary
}

// expired returns at most limit of the leases expired at now whose revoke
// is not already in flight, lowest IDs first, and marks them in flight
// until expiredLeaseRetry from now; the others are returned by later calls.
// Primary only; a follower's lessor returns none.
func (le *lessor) expired(now time.Time, limit int) []int64 {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return nil
	}
	var ids []int64
	for id, l := range le.leases {
		if now.Before(l.expiry) || now.Before(l.retry) {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if len(ids) > limit {
		ids = ids[:limit]
	}
	for _, id := range ids {
		le.leases[id].retry = now.Add(expiredLeaseRetry)
	}
	return ids
}

// leaseRecord is one lease in a snapshot.
type leaseRecord struct {
	ID   int64    `json:"id"`
	TTL  int64    `json:"ttl"`
	Keys [][]byte `json:"keys,omitempty"`
}

// records returns the replicated state, sorted by ID, for a snapshot.
// Applier only (or any goroutine, consistently with the applier's last
// change).
func (le *lessor) records() []leaseRecord {
	le.mu.RLock()
	defer le.mu.RUnlock()
	rs := make([]leaseRecord, 0, len(le.leases))
	for _, l := range le.leases {
		r := leaseRecord{ID: l.id, TTL: l.ttl}
		for _, k := range sortedKeys(l) {
			r.Keys = append(r.Keys, []byte(k))
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs
}

// restore replaces the replicated state with a snapshot's. On the primary
// every restored lease gets its full TTL from now. Applier only.
func (le *lessor) restore(rs []leaseRecord, now time.Time) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.leases = make(map[int64]*lease, len(rs))
	for _, r := range rs {
		l := &lease{id: r.ID, ttl: r.TTL, keys: make(map[string]struct{}, len(r.Keys))}
		for _, k := range r.Keys {
			l.keys[string(k)] = struct{}{}
		}
		if le.primary {
			l.expiry = now.Add(time.Duration(r.TTL) * time.Second)
		}
		le.leases[r.ID] = l
	}
}
