package workloads

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/history"
)

var _ Client = (*memClient)(nil)

// MemBugs selects the faults of a MemStore. The zero MemBugs is a correct,
// linearizable store.
type MemBugs struct {
	// LaggingNode, when not empty, is a member whose reads (linearizable
	// or not) are served from a replica Lag revisions behind: a stale-read
	// bug the register checker and the final reads must catch (and, for
	// read-only append transactions, checker/elle).
	LaggingNode string
	// Lag is how many revisions LaggingNode lags behind (>= 1 to matter).
	Lag int64
	// DropEvery, when > 0, makes every DropEvery-th Put (write or add; not
	// cas) acknowledged but never applied: a lost-write bug.
	DropEvery int
	// IndefiniteEvery, when > 0, makes every IndefiniteEvery-th mutating
	// request (write, cas, add, txn that appends) answer context.DeadlineExceeded; the odd
	// ones among those are applied nevertheless, the even ones not. This is
	// not a bug (the client is told the outcome is unknown); it lets tests
	// exercise info outcomes.
	IndefiniteEvery int
	// WatchSkipEvery, when > 0, makes watches drop every
	// WatchSkipEvery-th event they would deliver: an unreliable-watch bug
	// checker/watch must catch.
	WatchSkipEvery int
	// WatchCutEvery, when > 0, cuts a watch after every
	// WatchCutEvery-th response the store's watches send. Not a bug (the
	// watcher is told, and resumes); it exercises resumption.
	WatchCutEvery int
	// LockDoubleGrantEvery, when > 0, makes every
	// LockDoubleGrantEvery-th attempt to take a held lock succeed
	// anyway: a lock granted to two holders, which checker/lock must
	// catch.
	LockDoubleGrantEvery int
	// LeaseNeverExpires makes leases live until revoked: a bug the lease
	// checker must catch (an abandoned lease's keys outlive their bound).
	LeaseNeverExpires bool
}

// MemStore is an in-memory twin of an etcd KV store, shared by all the
// Clients its Dialer makes: one revision counter, a key's mod revision is
// the revision of its last put, a write's revision is the new store
// revision. It is safe for concurrent use; every request is applied
// atomically under one mutex, so without bugs the store is linearizable.
type MemStore struct {
	bugs MemBugs
	// Now is the clock of lease expiry (nil: time.Now). Set it before
	// the first request.
	Now func() time.Time

	mu        sync.Mutex
	rev       int64
	versions  map[string][]memVersion // key -> every put, in revision order
	puts      int                     // Puts seen, for DropEvery
	mutating  int                     // mutating requests seen, for IndefiniteEvery
	dials     map[string]int          // target name -> Dialer calls
	log       []history.WatchEvent    // every event, in revision order, with PrevKV
	changed   chan struct{}           // closed and replaced at every new revision
	watchEvs  int                     // events watches delivered, for WatchSkipEvery
	watchRsp  int                     // responses watches sent, for WatchCutEvery
	leases    int64                   // leases granted
	holders   map[string][]memHold    // lock name -> sessions holding it
	lockTry   int                     // attempts on held locks, for LockDoubleGrantEvery
	memLeases map[int64]*memLease     // the lease workload's leases
	keyLease  map[string]int64        // key -> its lease
}

// memVersion is one revision of a key: a put, or a delete (deleted).
type memVersion struct {
	rev     int64
	value   string
	create  int64
	version int64
	deleted bool
}

// NewMemStore returns an empty store at revision 0 with the given bugs.
func NewMemStore(bugs MemBugs) *MemStore {
	return &MemStore{bugs: bugs, versions: map[string][]memVersion{}, dials: map[string]int{}, holders: map[string][]memHold{}, memLeases: map[int64]*memLease{}, keyLease: map[string]int64{}, changed: make(chan struct{})}
}

// Dialer returns a Dialer making Clients of this store. The Target's
// Endpoint is ignored; its Name selects the member (for LaggingNode).
func (s *MemStore) Dialer() Dialer {
	return func(t Target) (Client, error) {
		s.mu.Lock()
		s.dials[t.Name]++
		s.mu.Unlock()
		return &memClient{s: s, node: t.Name}, nil
	}
}

// Dials returns how many Clients the Dialer made for each member name.
// The map is the caller's.
func (s *MemStore) Dials() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.dials))
	for k, v := range s.dials {
		out[k] = v
	}
	return out
}

// errMemTimeout is what an IndefiniteEvery request returns.
var errMemTimeout = fmt.Errorf("memstore: injected timeout: %w", context.DeadlineExceeded)

// viewRev returns the revision reads on node see. s.mu must be held.
func (s *MemStore) viewRevLocked(node string) int64 {
	if s.bugs.LaggingNode != "" && node == s.bugs.LaggingNode {
		return max(0, s.rev-s.bugs.Lag)
	}
	return s.rev
}

// getLocked returns key's value and mod revision as of revision at.
func (s *MemStore) getLocked(key string, at int64) (memVersion, bool) {
	vs := s.versions[key]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].rev > at })
	if i == 0 || vs[i-1].deleted {
		return memVersion{}, false
	}
	return vs[i-1], true
}

// writeLocked records a put of value at key (or, deleted, a delete) at
// revision rev, the current one, which the caller has just advanced to:
// the key's new version and the event for watches. A delete of an absent
// key records nothing and returns false. s.mu must be held.
func (s *MemStore) writeLocked(rev int64, key, value string, deleted bool) bool {
	prev, existed := s.getLocked(key, rev)
	if deleted && !existed {
		return false
	}
	v := memVersion{rev: rev, value: value, create: rev, version: 1, deleted: deleted}
	ev := history.WatchEvent{Type: history.WatchPut}
	if existed {
		v.create, v.version = prev.create, prev.version+1
		ev.PrevKV = &history.KV{Key: key, Value: prev.value, ModRev: prev.rev, CreateRev: prev.create, Version: prev.version}
	}
	if deleted {
		v = memVersion{rev: rev, deleted: true}
		ev.Type, ev.Kv = history.WatchDelete, history.KV{Key: key, ModRev: rev}
	} else {
		ev.Kv = history.KV{Key: key, Value: value, ModRev: rev, CreateRev: v.create, Version: v.version}
	}
	s.versions[key] = append(s.versions[key], v)
	s.log = append(s.log, ev)
	return true
}

// bumpLocked tells the watches a new revision exists. s.mu must be held.
func (s *MemStore) bumpLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// indefiniteLocked counts a mutating request and says whether it must
// answer a timeout, and if so whether it is applied anyway.
func (s *MemStore) indefiniteLocked() (timeout, apply bool) {
	s.mutating++
	if n := s.bugs.IndefiniteEvery; n > 0 && s.mutating%n == 0 {
		return true, (s.mutating/n)%2 == 1
	}
	return false, true
}

func (s *MemStore) putLocked(key, value string) int64 {
	s.rev++
	s.puts++
	if n := s.bugs.DropEvery; n > 0 && s.puts%n == 0 {
		return s.rev // acknowledged, never stored
	}
	s.writeLocked(s.rev, key, value, false)
	s.bumpLocked()
	return s.rev
}

// memClient is one logical client of a MemStore, bound to a member name.
type memClient struct {
	s      *MemStore
	node   string
	closed bool
	lease  int64 // the lock workload's session, 0: none
	ttl    int64
}

var errMemClosed = errors.New("memstore: client closed")

func (c *memClient) check(ctx context.Context) error {
	if c.closed {
		return fmt.Errorf("member %s: %w", c.node, errMemClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("member %s: %w", c.node, err)
	}
	return nil
}

func (c *memClient) Read(ctx context.Context, key string, _ bool) (*string, int64, error) {
	if err := c.check(ctx); err != nil {
		return nil, 0, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	v, ok := c.s.getLocked(key, c.s.viewRevLocked(c.node))
	if !ok {
		return nil, 0, nil
	}
	return &v.value, v.rev, nil
}

func (c *memClient) Write(ctx context.Context, key, value string) (int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	timeout, apply := c.s.indefiniteLocked()
	var rev int64
	if apply {
		rev = c.s.putLocked(key, value)
	}
	if timeout {
		return 0, errMemTimeout
	}
	return rev, nil
}

func (c *memClient) CAS(ctx context.Context, key string, expected *string, value string) (bool, int64, error) {
	if err := c.check(ctx); err != nil {
		return false, 0, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	timeout, apply := c.s.indefiniteLocked()
	cur, ok := c.s.getLocked(key, c.s.rev)
	holds := !ok && expected == nil || ok && expected != nil && cur.value == *expected
	rev := c.s.rev
	if holds && apply {
		c.s.rev++
		rev = c.s.rev
		c.s.writeLocked(rev, key, value, false)
		c.s.bumpLocked()
	}
	if timeout {
		return false, 0, errMemTimeout
	}
	return holds, rev, nil
}

func (c *memClient) Add(ctx context.Context, set, element string) error {
	if err := c.check(ctx); err != nil {
		return err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	timeout, apply := c.s.indefiniteLocked()
	if apply {
		c.s.putLocked(set+"/"+element, "")
	}
	if timeout {
		return errMemTimeout
	}
	return nil
}

func (c *memClient) ReadSet(ctx context.Context, set string, _ bool) ([]string, error) {
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	at := c.s.viewRevLocked(c.node)
	prefix := set + "/"
	var els []string
	for k := range c.s.versions {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if _, ok := c.s.getLocked(k, at); ok {
			els = append(els, strings.TrimPrefix(k, prefix))
		}
	}
	sort.Strings(els)
	return els, nil
}

func (c *memClient) Close() error {
	c.closed = true
	return nil
}

// Txn mirrors etcdClient.Txn in one atomic step: the lists are read as of
// the member's view (LaggingNode's lags); a transaction that appends
// commits only if every key it appends to has the same mod revision now
// as in that view (else committed false), and then reads its read-only
// keys at the current revision and puts every appended list at one new
// revision. A read-only transaction is served from the view alone, so
// on LaggingNode it reads stale lists: the bug checker/elle must catch.
func (c *memClient) Txn(ctx context.Context, ops []history.MicroOp, _ bool) ([]history.MicroOp, bool, error) {
	if err := c.check(ctx); err != nil {
		return nil, false, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	appended, readOnly := txnKeys(ops)
	lists := map[string][]int{}
	read := func(keys []string, at int64) (map[string]int64, error) {
		revs := map[string]int64{}
		for _, k := range keys {
			v, ok := c.s.getLocked(k, at)
			if !ok {
				lists[k] = nil
				continue
			}
			l, err := decodeList(k, v.value)
			if err != nil {
				return nil, err
			}
			lists[k], revs[k] = l, v.rev
		}
		return revs, nil
	}
	view := c.s.viewRevLocked(c.node)
	if len(appended) == 0 {
		if _, err := read(readOnly, view); err != nil {
			return nil, false, fmt.Errorf("member %s: %w", c.node, err)
		}
		done, _ := applyTxn(ops, lists)
		return done, true, nil
	}
	seen, err := read(appended, view)
	if err != nil {
		return nil, false, fmt.Errorf("member %s: %w: %w", c.node, ErrNotSent, err)
	}
	timeout, apply := c.s.indefiniteLocked()
	for _, k := range appended {
		if cur, _ := c.s.getLocked(k, c.s.rev); cur.rev != seen[k] {
			if timeout {
				return nil, false, errMemTimeout
			}
			return nil, false, nil
		}
	}
	if _, err := read(readOnly, c.s.rev); err != nil {
		return nil, false, fmt.Errorf("member %s: %w", c.node, err)
	}
	done, writes := applyTxn(ops, lists)
	if apply {
		c.s.rev++
		for _, k := range appended {
			c.s.writeLocked(c.s.rev, k, encodeList(writes[k]), false)
		}
		c.s.bumpLocked()
	}
	if timeout {
		return nil, false, errMemTimeout
	}
	return done, true, nil
}
