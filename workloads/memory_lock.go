package workloads

import (
	"context"
	"fmt"
	"strconv"

	"github.com/quorum-kv/quorum/history"
)

var _ LockClient = (*memClient)(nil)

// memHold is one session's key under a lock of a MemStore.
type memHold struct {
	key string
	rev int64
}

// Session grants a lease that never expires (the store has no clock).
func (c *memClient) Session(ctx context.Context, ttl int64) (int64, int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, 0, err
	}
	if c.lease == 0 {
		c.s.mu.Lock()
		c.s.leases++
		c.lease, c.ttl = c.s.leases, ttl
		c.s.mu.Unlock()
	}
	return c.lease, c.ttl, nil
}

// Lock waits until no other session holds name, then holds it; with
// MemBugs.LockDoubleGrantEvery it sometimes does not wait.
func (c *memClient) Lock(ctx context.Context, name string) (history.LockHold, error) {
	if err := c.check(ctx); err != nil {
		return history.LockHold{}, err
	}
	if c.lease == 0 {
		return history.LockHold{}, fmt.Errorf("lock %s: no session: %w", name, ErrNotSent)
	}
	s := c.s
	s.mu.Lock()
	s.rev++
	s.bumpLocked()
	h := history.LockHold{Lock: name, Key: fmt.Sprintf("%s/%x", name, c.lease), Rev: s.rev}
	for {
		held := len(s.holders[name]) > 0
		if held {
			s.lockTry++
		}
		if !held || s.bugs.LockDoubleGrantEvery > 0 && s.lockTry%s.bugs.LockDoubleGrantEvery == 0 {
			s.holders[name] = append(s.holders[name], memHold{key: h.Key, rev: h.Rev})
			h.Granted = s.rev
			s.mu.Unlock()
			return h, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return history.LockHold{}, fmt.Errorf("lock %s on %s: %w", name, c.node, ctx.Err())
		case <-ch:
		}
		s.mu.Lock()
	}
}

func (c *memClient) Unlock(ctx context.Context, h history.LockHold) error {
	if err := c.check(ctx); err != nil {
		return err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := s.holders[h.Lock]
	for i, x := range hs {
		if x.key == h.Key {
			s.holders[h.Lock] = append(hs[:i:i], hs[i+1:]...)
			break
		}
	}
	s.rev++
	s.bumpLocked()
	return nil
}

// Incr reads and then writes in two steps, as etcdClient does: two
// holders at once can lose an increment.
func (c *memClient) Incr(ctx context.Context, register string, h history.LockHold, _ bool) (history.IncrResult, int64, bool, error) {
	v, _, err := c.Read(ctx, register, false)
	if err != nil {
		return history.IncrResult{}, 0, false, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	n, err := parseCount(register, v)
	if err != nil {
		return history.IncrResult{}, 0, false, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	res := history.IncrResult{Read: n, Wrote: n + 1}
	if err := c.check(ctx); err != nil {
		return res, 0, false, err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.Fenced {
		owner := false
		for _, x := range s.holders[h.Lock] {
			owner = owner || x.key == h.Key && x.rev == h.Rev
		}
		if !owner {
			return res, s.rev, false, nil
		}
	}
	return res, s.putLocked(register, strconv.FormatInt(n+1, 10)), true, nil
}
