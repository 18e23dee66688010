package workloads

import (
	"context"
	"sort"
	"time"

	"github.com/quorum-kv/quorum/history"
)

var _ WatchClient = (*memClient)(nil)

// errMemCut is the Err of a watch response cut by MemBugs.WatchCutEvery.
const errMemCut = "memstore: injected watch cut"

func (c *memClient) Delete(ctx context.Context, key string) (int64, error) {
	return c.WriteTxn(ctx, []history.WriteOp{{F: history.WatchDelete, Key: key}})
}

// WriteTxn applies ops at one new revision, unless none changes anything
// (deletes of absent keys): then the revision stays. IndefiniteEvery
// applies as to the other writes.
func (c *memClient) WriteTxn(ctx context.Context, ops []history.WriteOp) (int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	timeout, apply := c.s.indefiniteLocked()
	if apply {
		next, changed := c.s.rev+1, false
		for _, o := range ops {
			changed = c.s.writeLocked(next, o.Key, o.Value, o.F == history.WatchDelete) || changed
		}
		if changed {
			c.s.rev = next
			c.s.bumpLocked()
		}
	}
	if timeout {
		return 0, errMemTimeout
	}
	return c.s.rev, nil
}

// Revision returns the revision of the member's view (LaggingNode's lags).
func (c *memClient) Revision(ctx context.Context) (int64, error) {
	if err := c.check(ctx); err != nil {
		return 0, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.viewRevLocked(c.node), nil
}

// Watch delivers the store's events from spec.StartRev up to the member's
// view (LaggingNode's lags), one response per revision, whenever a new
// revision is written; with spec.ProgressNotify, a progress notification
// at the view's revision every ProgressEvery once it delivered everything
// up to it. MemBugs.WatchSkipEvery drops events; WatchCutEvery cuts
// watches.
func (c *memClient) Watch(ctx context.Context, spec history.WatchSpec) <-chan history.WatchResponse {
	out := make(chan history.WatchResponse, 16)
	go func() {
		defer close(out)
		send := func(r history.WatchResponse) bool {
			select {
			case out <- r:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if err := c.check(ctx); err != nil {
			send(history.WatchResponse{Err: err.Error()})
			return
		}
		tick := time.NewTicker(ProgressEvery)
		defer tick.Stop()
		next, askProgress := spec.StartRev, false
		for {
			resps, cut, changed := c.s.watchBatch(c.node, spec, &next, askProgress)
			askProgress = false
			for _, r := range resps {
				if !send(r) {
					return
				}
			}
			if cut {
				send(history.WatchResponse{Err: errMemCut})
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-tick.C:
				askProgress = spec.ProgressNotify
			}
		}
	}()
	return out
}

// watchBatch returns the responses a watch on node from *next gets now,
// advances *next past the view, and returns the channel closed at the next
// revision; cut says the watch is cut after the responses.
func (s *MemStore) watchBatch(node string, spec history.WatchSpec, next *int64, progress bool) (resps []history.WatchResponse, cut bool, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	view := s.viewRevLocked(node)
	i := sort.Search(len(s.log), func(i int) bool { return s.log[i].Kv.ModRev >= *next })
	for ; i < len(s.log) && s.log[i].Kv.ModRev <= view; i++ {
		e := s.log[i]
		if !spec.Contains(e.Kv.Key) || e.Type == history.WatchPut && spec.NoPut || e.Type == history.WatchDelete && spec.NoDelete {
			continue
		}
		s.watchEvs++
		if n := s.bugs.WatchSkipEvery; n > 0 && s.watchEvs%n == 0 {
			continue
		}
		if !spec.PrevKV {
			e.PrevKV = nil
		}
		if n := len(resps); n > 0 && resps[n-1].Events[0].Kv.ModRev == e.Kv.ModRev {
			resps[n-1].Events = append(resps[n-1].Events, e)
			continue
		}
		if cut {
			break
		}
		resps = append(resps, history.WatchResponse{Revision: view, Events: []history.WatchEvent{e}})
		s.watchRsp++
		if n := s.bugs.WatchCutEvery; n > 0 && s.watchRsp%n == 0 {
			cut = true
		}
	}
	if cut {
		return resps, true, s.changed
	}
	*next = max(*next, view+1)
	if progress {
		resps = append(resps, history.WatchResponse{Revision: view, Progress: true})
	}
	return resps, false, s.changed
}
