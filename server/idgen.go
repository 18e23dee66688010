package server

import (
	"sync/atomic"
	"time"
)

// idGenerator makes request IDs unique across the cluster and across
// restarts of this member: the member ID's low 16 bits, then a timestamp and
// a counter, as etcd's idutil. Safe for concurrent use.
type idGenerator struct {
	prefix uint64
	next   atomic.Uint64
}

// newIDGenerator starts member memberID's IDs at the time now.
func newIDGenerator(memberID uint64, now time.Time) *idGenerator {
	g := &idGenerator{prefix: (memberID & 0xffff) << 48}
	g.next.Store(uint64(now.UnixMilli()&0xffffffffff) << 8)
	return g
}

func (g *idGenerator) Next() uint64 {
	return g.prefix | (g.next.Add(1) & (1<<48 - 1))
}
