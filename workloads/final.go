package workloads

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/history"
)

// Bounds of FinalReads: attempts per member to pass the barrier, and per
// key, and the pause between attempts. A member that never answers costs
// finalAttempts*(cfg.Timeout+finalBackoff); one that answers, one round
// trip per key.
const (
	finalAttempts = 5
	finalBackoff  = 250 * time.Millisecond
)

// FinalReads records, for every member in targets, a serializable read
// (history.FFinalRead, Node = the member) of every register key
// (cfg.RegisterKey(0..Keys-1); for the lock workload
// cfg.LockRegisterKey(0..Keys-1)) or of the set (cfg.SetKey(), Elements), so
// the checker can compare the replicas; for the append workload it does
// nothing; for the watch workload it records the final watch (see
// finalWatch) instead. Call it after Run returned and
// every fault was healed.
//
// Members are read concurrently, each by a fresh Client and a fresh
// process id (above every process already in rec). Before its recorded
// reads, each member passes a barrier that is not recorded: a
// linearizable read, which makes it apply everything committed so far, so
// that its serializable reads are not stale merely because it was cut off
// until just now. A member that does not answer is tried finalAttempts
// times, finalBackoff apart, with cfg.Timeout per attempt (redialling
// after a failed dial); if it never passes the barrier nothing is recorded
// for it. A recorded read that errors is recorded as fail and retried the
// same way.
//
// It returns nil if every member answered every read, else an error naming
// each member that did not (the history still holds what was read).
func FinalReads(ctx context.Context, cfg Config, targets []Target, dial Dialer, rec *history.Recorder) error {
	if err := checkArgs(cfg, targets, dial, rec); err != nil {
		return fmt.Errorf("final reads: %w", err)
	}
	if cfg.Workload == WorkloadAppend {
		return nil // checker/elle needs none: every txn's reads are checked
	}
	base := 0
	for _, e := range rec.Events() {
		base = max(base, e.Process+1)
	}
	if cfg.Workload == WorkloadWatch {
		return finalWatch(ctx, cfg, targets, dial, rec, base)
	}
	if cfg.Workload == WorkloadLease {
		return finalLeaseReads(ctx, cfg, targets, dial, rec, base)
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for j, t := range targets {
		wg.Go(func() { errs[j] = finalReadMember(ctx, cfg, t, dial, rec, base+j) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// finalReadMember performs FinalReads on one member as process.
func finalReadMember(ctx context.Context, cfg Config, t Target, dial Dialer, rec *history.Recorder, process int) error {
	var c Client
	defer func() {
		if c != nil {
			_ = c.Close()
		}
	}()
	attempt := func(f func(ctx context.Context) error) error {
		var err error
		for i := range finalAttempts {
			if i > 0 {
				sleep(ctx, finalBackoff)
			}
			if ctx.Err() != nil {
				return errors.Join(err, ctx.Err())
			}
			if c == nil {
				if c, err = dial(t); err != nil {
					c = nil
					continue
				}
			}
			octx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			err = f(octx)
			cancel()
			if err == nil {
				return nil
			}
		}
		return err
	}

	if err := attempt(func(ctx context.Context) error {
		_, _, err := c.Read(ctx, cfg.RegisterKey(0), false)
		return err
	}); err != nil {
		// Unreachable: record nothing rather than one failure per key.
		return fmt.Errorf("final reads on %s: barrier (linearizable read): %w", t.Name, err)
	}

	keys := []string{cfg.SetKey()}
	if cfg.Workload == WorkloadRegister || cfg.Workload == WorkloadLock {
		keys = keys[:0]
		for i := range cfg.Keys {
			k := cfg.RegisterKey(i)
			if cfg.Workload == WorkloadLock {
				k = cfg.LockRegisterKey(i)
			}
			keys = append(keys, k)
		}
	}
	var errs []error
	for _, key := range keys {
		err := attempt(func(ctx context.Context) error {
			h := rec.Invoke(process, history.Invocation{F: history.FFinalRead, Key: key, Node: t.Name})
			var comp history.Completion
			var err error
			if cfg.Workload == WorkloadSet {
				comp.Elements, err = c.ReadSet(ctx, key, true)
			} else {
				comp.Value, comp.Revision, err = c.Read(ctx, key, true)
			}
			if err != nil {
				rec.Complete(h, history.Fail, history.Completion{Error: err.Error()})
				return err
			}
			rec.Complete(h, history.OK, comp)
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("final read of %s on %s: %w", key, t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// finalLeaseReads records, on every member, one linearizable read of the
// lease prefix (history.FLeaseRead), retried as finalReadMember retries.
func finalLeaseReads(ctx context.Context, cfg Config, targets []Target, dial Dialer, rec *history.Recorder, base int) error {
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for j, t := range targets {
		wg.Go(func() {
			var err error
			for i := range finalAttempts {
				if i > 0 {
					sleep(ctx, finalBackoff)
				}
				var c Client
				if c, err = dial(t); err != nil {
					continue
				}
				lc, ok := c.(LeaseClient)
				if !ok {
					_ = c.Close()
					errs[j] = fmt.Errorf("%T has no leases", c)
					return
				}
				h := rec.Invoke(base+j, history.Invocation{F: history.FLeaseRead, Key: cfg.LeasePrefix(), Value: history.Str(Linearizable), Node: t.Name})
				octx, cancel := context.WithTimeout(ctx, cfg.Timeout)
				typ, comp := doLeaseRead(octx, lc, cfg.LeasePrefix(), false)
				cancel()
				rec.Complete(h, typ, comp)
				_ = c.Close()
				if typ == history.OK {
					return
				}
				err = errors.New(comp.Error)
			}
			errs[j] = fmt.Errorf("final lease read on %s: %w", t.Name, err)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
