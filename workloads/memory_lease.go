package workloads

import (
	"context"
	"fmt"
	"strings"
	"time"
)

var _ LeaseClient = (*memClient)(nil)

// memLease is a lease of a MemStore: its TTL, expiry and keys.
type memLease struct {
	ttl    int64
	expiry time.Time
	keys   map[string]bool
}

// expireLocked revokes every lease past its expiry (unless
// MemBugs.LeaseNeverExpires), as a leader's expiry loop would, checked
// lazily at each request. s.mu must be held.
func (s *MemStore) expireLocked() {
	if s.bugs.LeaseNeverExpires {
		return
	}
	now := s.now()
	for id, l := range s.memLeases {
		if now.After(l.expiry) {
			s.revokeLocked(id)
		}
	}
}

// revokeLocked deletes lease id's keys at one new revision.
func (s *MemStore) revokeLocked(id int64) {
	l := s.memLeases[id]
	delete(s.memLeases, id)
	s.rev++
	for k := range l.keys {
		s.writeLocked(s.rev, k, "", true)
		delete(s.keyLease, k)
	}
	s.bumpLocked()
}

func (s *MemStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (c *memClient) Grant(ctx context.Context, ttl int64) (int64, int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, 0, err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	s.leases++
	s.memLeases[s.leases] = &memLease{ttl: ttl, expiry: s.now().Add(time.Duration(ttl) * time.Second), keys: map[string]bool{}}
	return s.leases, ttl, nil
}

func (c *memClient) PutLease(ctx context.Context, key, value string, id int64) (int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	l := s.memLeases[id]
	if l == nil {
		return 0, fmt.Errorf("member %s: lease %x not found: %w", c.node, id, ErrNotSent)
	}
	l.keys[key] = true
	s.keyLease[key] = id
	return s.putLocked(key, value), nil
}

func (c *memClient) KeepAliveOnce(ctx context.Context, id int64) (int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	l := s.memLeases[id]
	if l == nil {
		return 0, nil
	}
	l.expiry = s.now().Add(time.Duration(l.ttl) * time.Second)
	return l.ttl, nil
}

func (c *memClient) Revoke(ctx context.Context, id int64) (int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if s.memLeases[id] == nil {
		return 0, fmt.Errorf("member %s: lease %x not found: %w", c.node, id, ErrNotSent)
	}
	s.revokeLocked(id)
	return s.rev, nil
}

func (c *memClient) ReadLeases(ctx context.Context, prefix string, _ bool) (map[string]int64, int64, error) {
	if err := c.check(ctx); err != nil {
		return nil, 0, err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	keys := map[string]int64{}
	for k := range s.versions {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if _, ok := s.getLocked(k, s.rev); ok {
			keys[k] = s.keyLease[k]
		}
	}
	return keys, s.rev, nil
}
