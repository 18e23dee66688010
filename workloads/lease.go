package workloads

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"

	"github.com/quorum-kv/quorum/history"
)

// LeaseClient is the optional capability of a Client that the lease
// workload needs. Run checks for it at run time; EtcdDialer's and
// MemStore's Clients have it.
type LeaseClient interface {
	Client
	// Grant grants a lease of ttl seconds and returns its ID and the TTL
	// granted.
	Grant(ctx context.Context, ttl int64) (id, granted int64, err error)
	// PutLease puts key attached to lease id and returns its revision.
	PutLease(ctx context.Context, key, value string, id int64) (rev int64, err error)
	// KeepAliveOnce renews lease id once and returns the TTL answered
	// (<= 0: the lease was not found).
	KeepAliveOnce(ctx context.Context, id int64) (ttl int64, err error)
	// Revoke revokes lease id and returns the header revision.
	Revoke(ctx context.Context, id int64) (rev int64, err error)
	// ReadLeases reads every key under prefix with its lease, and the
	// header revision.
	ReadLeases(ctx context.Context, prefix string, serializable bool) (keys map[string]int64, rev int64, err error)
}

// LeaseBound returns the bound recorded with each lease
// (history.LeaseSpec.BoundNS): how long after its TTL an abandoned
// lease's keys may still be read, for members with election timeout et
// (0: etcd's default 1 s). The leader checks for expired leases every
// 500 ms; a leader change restarts every lease's TTL plus an election
// timeout (etcd's Promote), after an election of up to two election
// timeouts; then the revoke commits; 1 s of margin for scheduling.
func LeaseBound(ttl int64, et time.Duration) time.Duration {
	if et <= 0 {
		et = time.Second
	}
	return time.Duration(ttl)*time.Second + 3*et + 500*time.Millisecond + time.Second
}

// LeasePrefix is the lease workload's key space.
func (c Config) LeasePrefix() string { return c.KeyPrefix + "lease/" }

// leasePlan: of every three leases one is kept alive, one abandoned, one
// revoked, in an order the worker's rand.Rand chooses.
func leasePlan(rng *rand.Rand) string {
	return []string{history.LeaseKeep, history.LeaseAbandon, history.LeaseRevoke}[rng.IntN(3)]
}

// runLease is worker w's loop in the lease workload: grant a lease of
// cfg.LockTTL seconds (its plan chosen at random), put two keys
// attached to it, then for about two TTLs read the prefix on its member
// every TTL/4, renewing a kept lease every TTL/3; finally revoke a kept
// or revoke-planned lease (a revoke-planned one right after its puts),
// and leave an abandoned one to expire. Every request is one recorded
// operation.
func (w *worker) runLease(ctx context.Context, take func() bool, lim *rate.Limiter) error {
	var dialErr error
	defer w.closeClient()
	rng := rand.New(rand.NewPCG(uint64(w.cfg.Seed), 3<<32+uint64(w.process)))
	ttl := w.cfg.LockTTL
	ttlD := time.Duration(ttl) * time.Second
	seq := 0
	for ctx.Err() == nil {
		if w.client == nil {
			c, err := w.dial(w.target)
			if err != nil {
				dialErr = err
				sleep(ctx, dialBackoff)
				continue
			}
			w.client = c
		}
		lc, ok := w.client.(LeaseClient)
		if !ok {
			return fmt.Errorf("%T has no leases", w.client)
		}
		if !take() || lim != nil && lim.Wait(ctx) != nil {
			return dialErr
		}
		spec := history.LeaseSpec{TTL: ttl, Plan: leasePlan(rng), BoundNS: int64(w.cfg.LeaseBound)}
		t, _ := w.record(ctx, history.Invocation{F: history.FGrant, Value: history.WatchJSON(spec)},
			func(ctx context.Context) (history.Type, history.Completion) {
				id, granted, err := lc.Grant(ctx, ttl)
				if err != nil {
					return Classify(err, true), history.Completion{Error: err.Error()}
				}
				spec.ID, spec.TTL = id, granted
				return history.OK, history.Completion{Value: history.WatchJSON(spec)}
			})
		if !w.after(ctx, t) {
			continue
		}
		js := history.WatchJSON(spec)
		lost := false
		for k := range 2 {
			seq++
			key := fmt.Sprintf("%s%d-%d-%d", w.cfg.LeasePrefix(), w.process, seq, k)
			t, _ = w.record(ctx, history.Invocation{F: history.FLeasePut, Key: key, Value: js},
				func(ctx context.Context) (history.Type, history.Completion) {
					rev, err := lc.PutLease(ctx, key, "v", spec.ID)
					if err != nil {
						return Classify(err, true), history.Completion{Error: err.Error()}
					}
					return history.OK, history.Completion{Revision: rev}
				})
			if t == history.Info {
				w.after(ctx, t)
				lost = true
				break
			}
		}
		if lost {
			continue
		}
		revoke := func() history.Type {
			t, _ := w.record(ctx, history.Invocation{F: history.FRevoke, Value: js},
				func(ctx context.Context) (history.Type, history.Completion) {
					rev, err := lc.Revoke(ctx, spec.ID)
					if err != nil {
						return Classify(err, true), history.Completion{Error: err.Error()}
					}
					return history.OK, history.Completion{Revision: rev}
				})
			return t
		}
		if spec.Plan == history.LeaseRevoke {
			if w.after(ctx, revoke()); w.client == nil {
				continue
			}
		}
		start, lastRenew := time.Now(), time.Now()
		for time.Since(start) < 2*ttlD && ctx.Err() == nil && w.client != nil {
			sleep(ctx, ttlD/4)
			if spec.Plan == history.LeaseKeep && time.Since(lastRenew) >= ttlD/3 {
				lastRenew = time.Now()
				t, _ = w.record(ctx, history.Invocation{F: history.FKeepAlive, Value: js},
					func(ctx context.Context) (history.Type, history.Completion) {
						got, err := lc.KeepAliveOnce(ctx, spec.ID)
						switch {
						case err != nil:
							return Classify(err, true), history.Completion{Error: err.Error()}
						case got <= 0:
							return history.Fail, history.Completion{Error: "lease not found"}
						}
						s := spec
						s.TTL = got
						return history.OK, history.Completion{Value: history.WatchJSON(s)}
					})
				if t == history.Info {
					w.after(ctx, t)
					break
				}
			}
			w.leaseRead(ctx, lc)
		}
		if spec.Plan == history.LeaseKeep && w.client != nil {
			w.after(ctx, revoke())
		}
	}
	return dialErr
}

// leaseRead records one read of the lease prefix on w's member.
func (w *worker) leaseRead(ctx context.Context, lc LeaseClient) {
	ser := w.cfg.ReadConsistency == Serializable
	w.record(ctx, history.Invocation{F: history.FLeaseRead, Key: w.cfg.LeasePrefix(), Value: history.Str(w.cfg.ReadConsistency)},
		func(ctx context.Context) (history.Type, history.Completion) {
			return doLeaseRead(ctx, lc, w.cfg.LeasePrefix(), ser)
		})
}

func doLeaseRead(ctx context.Context, lc LeaseClient, prefix string, ser bool) (history.Type, history.Completion) {
	keys, rev, err := lc.ReadLeases(ctx, prefix, ser)
	if err != nil {
		return history.Fail, history.Completion{Error: err.Error()}
	}
	return history.OK, history.Completion{Value: history.WatchJSON(history.LeaseRead{Keys: keys}), Revision: rev}
}
