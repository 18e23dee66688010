package workloads

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/quorum-kv/quorum/history"
)

var _ LockClient = (*etcdClient)(nil)

// Session grants a lease with the operation's context and hands it to a
// concurrency.Session, which keeps it alive (KeepAlive every TTL/3) on
// this client's connection until the client is closed or the lease is
// lost.
func (e *etcdClient) Session(ctx context.Context, ttl int64) (int64, int64, error) {
	if e.sess != nil {
		select {
		case <-e.sess.Done():
			e.sess.Orphan()
			e.sess, e.mutexes = nil, nil
		default:
			return int64(e.sess.Lease()), e.sessTTL, nil
		}
	}
	if err := e.ready(ctx); err != nil {
		return 0, 0, err
	}
	g, err := e.c.Grant(ctx, ttl)
	if err != nil {
		return 0, 0, fmt.Errorf("grant lease of %d s on %s: %w", ttl, e.target.Name, err)
	}
	s, err := concurrency.NewSession(e.c, concurrency.WithLease(g.ID), concurrency.WithTTL(int(g.TTL)))
	if err != nil {
		return 0, 0, fmt.Errorf("session on lease %x on %s: %w", g.ID, e.target.Name, err)
	}
	e.sess, e.sessTTL, e.mutexes = s, g.TTL, map[string]*concurrency.Mutex{}
	return int64(g.ID), g.TTL, nil
}

func (e *etcdClient) Lock(ctx context.Context, name string) (history.LockHold, error) {
	if e.sess == nil {
		return history.LockHold{}, fmt.Errorf("lock %s on %s: no session: %w", name, e.target.Name, ErrNotSent)
	}
	if err := e.ready(ctx); err != nil {
		return history.LockHold{}, err
	}
	m := concurrency.NewMutex(e.sess, name)
	if err := m.Lock(ctx); err != nil {
		if errors.Is(err, concurrency.ErrSessionExpired) {
			// Lock saw its own key gone: nothing is held.
			return history.LockHold{}, fmt.Errorf("lock %s on %s: %w: %w", name, e.target.Name, ErrNotSent, err)
		}
		return history.LockHold{}, fmt.Errorf("lock %s on %s: %w", name, e.target.Name, err)
	}
	e.mutexes[m.Key()] = m
	h := history.LockHold{Lock: name, Key: m.Key(), Granted: m.Header().Revision}
	if cr, ok := m.IsOwner().TargetUnion.(*etcdserverpb.Compare_CreateRevision); ok {
		h.Rev = cr.CreateRevision
	}
	return h, nil
}

func (e *etcdClient) Unlock(ctx context.Context, h history.LockHold) error {
	m := e.mutexes[h.Key]
	if m == nil {
		return fmt.Errorf("unlock %s on %s: not held by this client: %w", h.Key, e.target.Name, ErrNotSent)
	}
	if err := e.ready(ctx); err != nil {
		return err
	}
	if err := m.Unlock(ctx); err != nil {
		return fmt.Errorf("unlock %s on %s: %w", h.Key, e.target.Name, err)
	}
	delete(e.mutexes, h.Key)
	return nil
}

// Incr reads the register, then puts read+1. Fenced, the put is etcd's
// recipe: a Txn comparing the lock key's create revision with the
// revision it was created at (the mutex's IsOwner compare), so a
// holder whose key is gone — its lease expired — writes nothing.
func (e *etcdClient) Incr(ctx context.Context, register string, h history.LockHold, serializable bool) (history.IncrResult, int64, bool, error) {
	if err := e.ready(ctx); err != nil {
		return history.IncrResult{}, 0, false, err
	}
	resp, err := e.c.Get(ctx, register, readOpts(serializable)...)
	if err != nil {
		return history.IncrResult{}, 0, false, fmt.Errorf("get %s on %s: %w: %w", register, e.target.Name, ErrNotSent, err)
	}
	var v *string
	if len(resp.Kvs) > 0 {
		v = history.Str(string(resp.Kvs[0].Value))
	}
	n, err := parseCount(register, v)
	if err != nil {
		return history.IncrResult{}, 0, false, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	res := history.IncrResult{Read: n, Wrote: n + 1}
	put := clientv3.OpPut(register, strconv.FormatInt(n+1, 10))
	if !h.Fenced {
		pr, err := e.c.Do(ctx, put)
		if err != nil {
			return res, 0, false, fmt.Errorf("put %s on %s: %w", register, e.target.Name, err)
		}
		return res, pr.Put().Header.Revision, true, nil
	}
	owner := clientv3.Compare(clientv3.CreateRevision(h.Key), "=", h.Rev)
	if m := e.mutexes[h.Key]; m != nil {
		owner = m.IsOwner()
	}
	tr, err := e.c.Txn(ctx).If(owner).Then(put).Commit()
	if err != nil {
		return res, 0, false, fmt.Errorf("fenced put %s on %s: %w", register, e.target.Name, err)
	}
	return res, tr.Header.Revision, tr.Succeeded, nil
}
