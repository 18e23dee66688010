package workloads

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Workload names for Config.Workload (the same strings as checker's).
const (
	WorkloadRegister = "register"
	WorkloadSet      = "set"
	// WorkloadAppend runs list-append transactions (history.FTxn) for
	// package checker/elle.
	WorkloadAppend = "append"
	// WorkloadWatch runs puts, deletes and write txns on a few keys while
	// watchers on every member record what they see (history.FWatch),
	// for package checker/watch.
	WorkloadWatch = "watch"
	// WorkloadLease grants leases, attaches keys, keeps some alive,
	// abandons and revokes others while every member reads, for
	// package checker/lease.
	WorkloadLease = "lease"
	// WorkloadLock takes concurrency.Mutex locks and increments a
	// register under each (history.FAcquire, FIncr, FRelease), for
	// package checker/lock.
	WorkloadLock = "lock"
)

// Read consistencies for Config.ReadConsistency.
const (
	Linearizable = "linearizable"
	Serializable = "serializable"
)

// Mix weighs the register workload's operations; weights are relative
// (they need not sum to 1).
type Mix struct {
	Read  float64 `json:"read"`
	Write float64 `json:"write"`
	CAS   float64 `json:"cas"`
}

// Config describes a workload run. Build one with DefaultConfig, change
// fields, then Validate.
type Config struct {
	// Workload is WorkloadRegister, WorkloadSet, WorkloadAppend or
	// WorkloadWatch.
	Workload string `json:"workload"`
	// Concurrency is the number of logical clients (workers), each with
	// one operation in flight.
	Concurrency int `json:"concurrency"`
	// Rate is the total operations per second across workers; 0:
	// unlimited.
	Rate float64 `json:"rate"`
	// Keys is the number of register keys; in the append workload, the
	// number of keys active at a time (see Config.AppendKey); in the lock
	// workload, the number of locks (each with its register).
	Keys int `json:"keys"`
	// Mix weighs reads, writes and cas in the register workload. In the
	// set workload one operation in SetReadEvery is a read of the whole
	// set; the others are adds.
	Mix Mix `json:"mix"`
	// ReadConsistency is Linearizable or Serializable, for the workload's
	// reads. (FinalReads are always serializable.) Serializable register
	// reads may legitimately be stale, so the checker may call the history
	// invalid: use it to show that, not to test for bugs.
	ReadConsistency string `json:"read_consistency"`
	// Timeout bounds each operation.
	Timeout time.Duration `json:"timeout"`
	// Seed derives every worker's *rand.Rand: the same seed gives every
	// worker the same sequence of operations.
	Seed int64 `json:"seed"`
	// MaxOps bounds the operations Run invokes in total. 0: derived, see
	// Config.OpsBound.
	MaxOps int `json:"max_ops"`
	// Watchers is, in the watch workload, how many watchers each member
	// serves (see Config.WatchKey); ignored by the others.
	Watchers int `json:"watchers"`
	// LeaseBound is, in the lease workload, how long after its TTL an
	// abandoned lease's keys may still be read (see LeaseBound; 0:
	// LeaseBound(LockTTL, 1 s)).
	LeaseBound time.Duration `json:"lease_bound,omitempty"`
	// LockTTL is, in the lock and lease workloads, the TTL in seconds of every
	// client's session lease (the server may raise it to its minimum).
	LockTTL int64 `json:"lock_ttl,omitempty"`
	// LockHoldTime is, in the lock workload, how long a holder waits
	// between being granted the lock and reading the register: the
	// window in which a paused member lets its holder's lease expire.
	LockHoldTime time.Duration `json:"lock_hold_time,omitempty"`
	// Fenced makes the lock workload's writes fenced: a Txn guarded by
	// the holder's lock key still having the create revision it was
	// granted at (etcd's recipe), instead of a plain Put.
	Fenced bool `json:"fenced,omitempty"`
	// KeyPrefix is prepended to every key the workload touches: register
	// keys are KeyPrefix+"register/<i>", the set is KeyPrefix+"set".
	KeyPrefix string `json:"key_prefix"`

	// Progress, when not nil, receives Run's live counters, so a caller
	// can poll Progress.Snapshot while Run is going. Not part of the
	// run's description (not serialized).
	Progress *Progress `json:"-"`
}

// SetReadEvery: in the set workload, an operation is a read of the whole
// set with probability 1/SetReadEvery; otherwise an add.
const SetReadEvery = 10

// DefaultMaxOps is the bound on operations when MaxOps is 0 and none can
// be derived from Rate and the run's deadline.
const DefaultMaxOps = 200_000

// DefaultConfig returns the register workload with 10 clients, no rate
// limit, 8 keys, reads/writes/cas weighted 0.5/0.25/0.25, linearizable
// reads, a 2 s operation timeout, seed 1 and key prefix "/quorum/".
func DefaultConfig() Config {
	return Config{
		Workload:        WorkloadRegister,
		Concurrency:     10,
		Keys:            8,
		Mix:             Mix{Read: 0.5, Write: 0.25, CAS: 0.25},
		ReadConsistency: Linearizable,
		Timeout:         2 * time.Second,
		Seed:            1,
		Watchers:        2,
		LockTTL:         2,
		LockHoldTime:    20 * time.Millisecond,
		KeyPrefix:       "/quorum/",
	}
}

// Validate returns an error naming every bad field, or nil.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("workload config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch c.Workload {
	case WorkloadRegister, WorkloadSet, WorkloadAppend, WorkloadWatch, WorkloadLock, WorkloadLease:
	default:
		bad("Workload", "%q: want %q, %q, %q, %q, %q or %q", c.Workload, WorkloadRegister, WorkloadSet, WorkloadAppend, WorkloadWatch, WorkloadLock, WorkloadLease)
	}
	if (c.Workload == WorkloadLock || c.Workload == WorkloadLease) && (c.LockTTL < 1 || c.LockHoldTime < 0) {
		bad("LockTTL", "%d s, hold time %v: want a TTL >= 1 s and a hold time >= 0", c.LockTTL, c.LockHoldTime)
	}
	if c.Workload == WorkloadWatch && (c.Watchers < 1 || c.Watchers > MaxWatchers) {
		bad("Watchers", "%d: want 1 to %d watchers per member", c.Watchers, MaxWatchers)
	}
	if c.Concurrency < 1 {
		bad("Concurrency", "%d: want >= 1", c.Concurrency)
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		bad("Rate", "%v: want a finite rate >= 0 (0: unlimited)", c.Rate)
	}
	if c.Keys < 1 {
		bad("Keys", "%d: want >= 1", c.Keys)
	}
	if w := []float64{c.Mix.Read, c.Mix.Write, c.Mix.CAS}; w[0] < 0 || w[1] < 0 || w[2] < 0 ||
		math.IsNaN(w[0]+w[1]+w[2]) || math.IsInf(w[0]+w[1]+w[2], 0) || w[0]+w[1]+w[2] <= 0 {
		bad("Mix", "%+v: want finite weights >= 0 with a positive sum", c.Mix)
	}
	if c.ReadConsistency != Linearizable && c.ReadConsistency != Serializable {
		bad("ReadConsistency", "%q: want %q or %q", c.ReadConsistency, Linearizable, Serializable)
	}
	if c.Timeout <= 0 {
		bad("Timeout", "%v: want > 0", c.Timeout)
	}
	if c.MaxOps < 0 {
		bad("MaxOps", "%d: want >= 0 (0: derived)", c.MaxOps)
	}
	if c.KeyPrefix == "" || strings.ContainsRune(c.KeyPrefix, 0) {
		bad("KeyPrefix", "%q: want a non-empty prefix without NUL", c.KeyPrefix)
	}
	return errors.Join(errs...)
}

// OpsBound returns the maximum number of operations Run invokes when the
// run may last up to d (d <= 0: unknown): MaxOps if set; else, with a
// Rate and a known d, Rate*d plus one per worker; else DefaultMaxOps.
func (c Config) OpsBound(d time.Duration) int {
	switch {
	case c.MaxOps > 0:
		return c.MaxOps
	case c.Rate > 0 && d > 0:
		if n := c.Rate*d.Seconds() + float64(c.Concurrency); n < math.MaxInt32 {
			return int(math.Ceil(n))
		}
	}
	return DefaultMaxOps
}

// RegisterKey returns the i-th register key.
func (c Config) RegisterKey(i int) string { return fmt.Sprintf("%sregister/%d", c.KeyPrefix, i) }

// SetKey returns the set workload's set: elements are keys below it.
func (c Config) SetKey() string { return c.KeyPrefix + "set" }

// AppendKey returns the n-th key of the append workload, which holds a
// list of ints encoded as comma-separated decimals ("" or absent: empty).
func (c Config) AppendKey(n int) string { return fmt.Sprintf("%sappend/%d", c.KeyPrefix, n) }

// AppendKeyEvery: in the append workload a worker's active keys are
// AppendKey(w) .. AppendKey(w+Keys-1) with w = its operation count /
// AppendKeyEvery, so keys retire and fresh ones start as the run goes on
// and lists stay short (Elle's advice), while workers that progress alike
// share their active keys.
const AppendKeyEvery = 4

// MaxWatchers bounds Config.Watchers.
const MaxWatchers = 64

// WatchPrefix is the watch workload's key space: every key it writes is
// WatchKey(i), below it.
func (c Config) WatchPrefix() string { return c.KeyPrefix + "watch/" }

// WatchKey returns the i-th key of the watch workload.
func (c Config) WatchKey(i int) string { return fmt.Sprintf("%s%d", c.WatchPrefix(), i) }

// LockKey returns the i-th lock of the lock workload: the prefix under
// which concurrency.Mutex puts each waiting session's key.
func (c Config) LockKey(i int) string { return fmt.Sprintf("%slock/%d", c.KeyPrefix, i) }

// LockRegisterKey returns the register incremented under LockKey(i): a
// decimal count, absent for 0.
func (c Config) LockRegisterKey(i int) string {
	return fmt.Sprintf("%slock-register/%d", c.KeyPrefix, i)
}
