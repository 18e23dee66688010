package server

import (
	"errors"
	"math"
	"sort"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

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

// leaseRevokeRate is etcd's default leaseRevokeRate: expired leases
// revoked per second at most.
const leaseRevokeRate = 1000

// expiredLeaseRetry is how long the leader waits before proposing the revoke
// of an expired lease again (etcd's expiredLeaseRetryInterval).
const expiredLeaseRetry = 3 * time.Second

// minLeaseTTL is etcd's minimum lease TTL in seconds: one and a half
// election timeouts (in ticks), rounded up (etcdserver/server.go).
func minLeaseTTL(electionTicks int, heartbeat time.Duration) int64 {
	d := time.Duration((3*electionTicks)/2) * heartbeat
	return int64(math.Ceil(d.Seconds()))
}

// lease is one lease. id, ttl, remaining and keys are replicated state,
// changed only by the applier; expiry, retry and checkpointAt are the
// leader's alone (zero on a follower: no expiry).
type lease struct {
	id   int64
	ttl  int64
	keys map[string]struct{}
	// remaining is the remaining TTL in seconds that the last applied
	// checkpoint recorded, 0 when none has since the lease was granted or
	// last renewed (etcd's remainingTTL): a new leader gives the lease
	// this much instead of its full TTL.
	remaining int64
	expiry    time.Time
	// retry: the leader proposed the revoke of this expired lease and
	// proposes it again only after then.
	retry time.Time
	// checkpointAt: the leader checkpoints the lease's remaining TTL at
	// or after then; zero when none is scheduled.
	checkpointAt time.Time
}

// refreshTTL is the TTL a refresh gives the lease: the checkpointed
// remaining TTL if there is one, else the full TTL (etcd's
// getRemainingTTL).
func (l *lease) refreshTTL() time.Duration {
	if l.remaining > 0 {
		return time.Duration(l.remaining) * time.Second
	}
	return time.Duration(l.ttl) * time.Second
}

// lessor is a member's lease table (etcd's lessor): the leases by ID, their
// TTLs and attached keys, which the applier changes as it applies committed
// entries (grant, revoke, attach, detach) and the snapshot carries; and the
// expiry times, which are not replicated: only the leader (primary) keeps
// them, resets them on becoming leader (Promote) and decides expiry, which
// it proposes through Raft as a LeaseRevoke.
//
// With checkpoints on (checkpointInterval > 0, etcd's LeaseCheckpoint
// feature), the leader also records through Raft, every checkpointInterval,
// the remaining TTL of each lease whose TTL is longer than that interval
// (dueCheckpoints, applied by checkpoint), so that a new leader extends it
// by what was left rather than its whole TTL; a renewal clears the record
// first (needsClear). The records are replicated state: they are in the WAL
// and in snapshots, as etcd 3.6 persists them.
//
// The applier is the only caller of grant, remove, applyChanges, checkpoint
// and restore; the front and the leader's expiry loop call the rest. A
// mutex guards the table; the applier takes it only for lease requests and
// for writes that change a key's lease, never for other writes.
type lessor struct {
	minTTL int64
	// checkpointInterval is the time between a lease's checkpoints; 0:
	// checkpoints off.
	checkpointInterval time.Duration

	mu      sync.RWMutex
	leases  map[int64]*lease
	primary bool
}

// newLessor returns an empty lessor raising TTLs to minTTL seconds, with
// lease checkpoints every checkpointInterval (0: none).
func newLessor(minTTL int64, checkpointInterval time.Duration) *lessor {
	return &lessor{minTTL: minTTL, checkpointInterval: checkpointInterval, leases: map[int64]*lease{}}
}

// scheduleCheckpoint schedules lease l's next checkpoint one interval from
// now, if checkpoints are on and l would be refreshed to more than an
// interval (etcd's scheduleCheckpointIfNeeded). Caller holds mu; primary.
func (le *lessor) scheduleCheckpoint(l *lease, now time.Time) {
	if le.checkpointInterval > 0 && l.refreshTTL() > le.checkpointInterval.Truncate(time.Second) {
		l.checkpointAt = now.Add(le.checkpointInterval)
	}
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
		le.scheduleCheckpoint(l, now)
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

// renew resets lease id's expiry to its TTL from now (its checkpointed
// remaining TTL while one is recorded: clear it first, see needsClear) and
// returns the full TTL, as etcd's Renew. Errors: errNotPrimary off the
// leader; errLeaseNotFound for a lease that does not exist or has expired
// (its revoke is on the way).
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
	l.expiry = now.Add(l.refreshTTL())
	return l.ttl, nil
}

// needsClear reports whether renewing lease id must first clear its
// checkpointed remaining TTL through Raft (a checkpoint of 0), as etcd's
// Renew does: checkpoints are on, this is the primary, the lease is live
// and has a remaining TTL recorded. So a lease costs at most two Raft
// entries per checkpoint interval however often it is renewed.
func (le *lessor) needsClear(id int64, now time.Time) bool {
	le.mu.RLock()
	defer le.mu.RUnlock()
	l := le.leases[id]
	return le.checkpointInterval > 0 && le.primary && l != nil && now.Before(l.expiry) && l.remaining > 0
}

// checkpoint records remaining as lease id's remaining TTL (0 clears it);
// on the primary it schedules the lease's next checkpoint. A lease that no
// longer exists is skipped. Applier only (etcd's Checkpoint).
func (le *lessor) checkpoint(id, remaining int64, now time.Time) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return
	}
	l.remaining = remaining
	if le.primary {
		le.scheduleCheckpoint(l, now)
	}
}

// dueCheckpoints returns at most limit checkpoints due at now, lowest IDs
// first, each the lease's remaining TTL rounded up, and unschedules them
// (checkpoint schedules the next when the entry is applied). A lease
// that has expired, or whose remaining TTL is still its full TTL, gets
// none (etcd's findDueScheduledCheckpoints). Primary only; none elsewhere.
func (le *lessor) dueCheckpoints(now time.Time, limit int) []*pb.LeaseCheckpoint {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary || le.checkpointInterval == 0 {
		return nil
	}
	var due []*lease
	for _, l := range le.leases {
		if !l.checkpointAt.IsZero() && !now.Before(l.checkpointAt) {
			due = append(due, l)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].id < due[j].id })
	var cps []*pb.LeaseCheckpoint
	for _, l := range due {
		if len(cps) == limit {
			break
		}
		l.checkpointAt = time.Time{}
		if !now.Before(l.expiry) {
			continue
		}
		rem := int64(math.Ceil(l.expiry.Sub(now).Seconds()))
		if rem >= l.ttl {
			continue
		}
		cps = append(cps, &pb.LeaseCheckpoint{ID: l.id, Remaining_TTL: rem})
	}
	return cps
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

// promote makes this lessor the primary: every lease expires its TTL (its
// checkpointed remaining TTL, if one is recorded) plus extend from now, so
// that no lease expires because of the election (etcd's Promote, which
// extends by an election timeout), and has its next checkpoint scheduled.
//
// With at least leaseRevokeRate leases, expiries that would pile up are
// then spread out, as etcd's Promote spreads them: within each window of
// about a second no more than three quarters of the revoke rate expire;
// the rest are pushed later in proportion to how far over the target
// their window is. (etcd orders leases of the same expiry at random; here
// by ID, so the outcome is the same on every run.)
func (le *lessor) promote(now time.Time, extend time.Duration) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.primary = true
	for _, l := range le.leases {
		l.expiry = now.Add(extend + l.refreshTTL())
		l.retry = time.Time{}
		le.scheduleCheckpoint(l, now)
	}
	if len(le.leases) >= leaseRevokeRate {
		le.spreadExpiries(now, extend)
	}
	if bugzoo.Enabled(bugzoo.EarlyLeaseExpiry) {
		for _, l := range le.leases {
			l.expiry = now
		}
	}
}

// spreadExpiries is the second half of etcd's Promote: it walks the leases
// by expiry in windows starting at the first expiry of each; past
// 3/4·leaseRevokeRate expiries in a window, each further lease is given
// rateDelay = (expiries so far / target) seconds minus how far into the
// window it already expires, on top of its refresh, and the window grows
// to that delay. Caller holds mu.
func (le *lessor) spreadExpiries(now time.Time, extend time.Duration) {
	ls := make([]*lease, 0, len(le.leases))
	for _, l := range le.leases {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool {
		if !ls[i].expiry.Equal(ls[j].expiry) {
			return ls[i].expiry.Before(ls[j].expiry)
		}
		return ls[i].id < ls[j].id
	})
	target := (3 * leaseRevokeRate) / 4
	base := ls[0].expiry.Sub(now)
	next := base + time.Second
	expires := 0
	for _, l := range ls {
		remaining := l.expiry.Sub(now)
		if remaining > next {
			base, next, expires = remaining, remaining+time.Second, 1
			continue
		}
		expires++
		if expires <= target {
			continue
		}
		rateDelay := float64(time.Second)*(float64(expires)/float64(target)) - float64(remaining-base)
		delay := time.Duration(rateDelay)
		next = base + delay
		l.expiry = now.Add(delay + extend + l.refreshTTL())
		le.scheduleCheckpoint(l, now)
	}
}

// demote forgets the expiry times and scheduled checkpoints: a follower
// decides no expiry and proposes no checkpoint.
func (le *lessor) demote() {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.primary = false
	for _, l := range le.leases {
		l.expiry, l.retry, l.checkpointAt = time.Time{}, time.Time{}, time.Time{}
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

// leaseRecord is one lease in a snapshot. RemainingTTL is its
// checkpointed remaining TTL (0: none; absent in snapshots written before
// checkpoints, which had none).
type leaseRecord struct {
	ID           int64    `json:"id"`
	TTL          int64    `json:"ttl"`
	RemainingTTL int64    `json:"remaining_ttl,omitempty"`
	Keys         [][]byte `json:"keys,omitempty"`
}

// records returns the replicated state, sorted by ID, for a snapshot.
// Applier only (or any goroutine, consistently with the applier's last
// change).
func (le *lessor) records() []leaseRecord {
	le.mu.RLock()
	defer le.mu.RUnlock()
	rs := make([]leaseRecord, 0, len(le.leases))
	for _, l := range le.leases {
		r := leaseRecord{ID: l.id, TTL: l.ttl, RemainingTTL: l.remaining}
		for _, k := range sortedKeys(l) {
			r.Keys = append(r.Keys, []byte(k))
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs
}

// restore replaces the replicated state with a snapshot's. On the primary
// every restored lease gets its TTL (or checkpointed remaining TTL) from
// now. Applier only.
func (le *lessor) restore(rs []leaseRecord, now time.Time) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.leases = make(map[int64]*lease, len(rs))
	for _, r := range rs {
		l := &lease{id: r.ID, ttl: r.TTL, remaining: r.RemainingTTL, keys: make(map[string]struct{}, len(r.Keys))}
		for _, k := range r.Keys {
			l.keys[string(k)] = struct{}{}
		}
		if le.primary {
			l.expiry = now.Add(l.refreshTTL())
			le.scheduleCheckpoint(l, now)
		}
		le.leases[r.ID] = l
	}
}
