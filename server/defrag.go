package server

import (
	"context"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/dustin/go-humanize"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Defragment, as etcd's (storage/backend defrag): local to the member, not
// through Raft. etcd rewrites its bolt file into a new one, dropping the
// free pages compaction left. Here the applier rebuilds the store's tree
// from fresh allocations (mvcc.Store.Defragment), publishes it, returns
// the freed memory to the OS (runtime/debug.FreeOSMemory) and resets
// DbSize's high-water mark to what is in use. Writes wait meanwhile, as
// etcd's wait for its backend lock.

// defragRequest asks the applier goroutine to defragment; the result
// comes back on done (buffered).
type defragRequest struct {
	done chan defragResult
}

// defragResult is DbSize and DbSizeInUse before and after.
type defragResult struct {
	size1, inUse1, size2, inUse2 int64
	took                         time.Duration
}

// defragment runs on the applier goroutine.
func (a *applier) defragment() defragResult {
	start := time.Now()
	var r defragResult
	r.inUse1 = dbBaseBytes + a.store.Size()
	r.size1 = max(a.db.total(), r.inUse1)
	a.store.Defragment()
	a.publish() // readers drop the old tree with the old view
	a.db.high.Store(a.store.Size())
	debug.FreeOSMemory()
	r.inUse2 = dbBaseBytes + a.store.Size()
	r.size2 = max(a.db.total(), r.inUse2)
	r.took = time.Since(start)
	return r
}

// defragment asks the applier to defragment and waits for it, logging
// etcd's lines.
func (s *Server) defragment(ctx context.Context) error {
	path := filepath.Join(s.cfg.DataDir, "member", "snap")
	size1, inUse1 := s.dbSizes()
	s.lg.Info("defragmenting", "path", path,
		"current-db-size-bytes", size1, "current-db-size", humanize.Bytes(uint64(size1)),
		"current-db-size-in-use-bytes", inUse1, "current-db-size-in-use", humanize.Bytes(uint64(inUse1)))
	req := defragRequest{done: make(chan defragResult, 1)}
	select {
	case s.app.defragc <- req:
	case <-ctx.Done():
		return clientContextError(ctx)
	case <-s.stopc:
		return rpctypes.ErrGRPCStopped
	}
	var r defragResult
	select {
	case r = <-req.done:
	case <-s.stopc:
		return rpctypes.ErrGRPCStopped
	}
	s.metrics.defragDuration.Observe(r.took.Seconds())
	s.lg.Info("finished defragmenting directory", "path", path,
		"current-db-size-bytes-diff", r.size2-r.size1,
		"current-db-size-bytes", r.size2, "current-db-size", humanize.Bytes(uint64(r.size2)),
		"current-db-size-in-use-bytes-diff", r.inUse2-r.inUse1,
		"current-db-size-in-use-bytes", r.inUse2, "current-db-size-in-use", humanize.Bytes(uint64(r.inUse2)),
		"took", r.took)
	return nil
}
