package workloads

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var _ LeaseClient = (*etcdClient)(nil)

func (e *etcdClient) Grant(ctx context.Context, ttl int64) (int64, int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, 0, err
	}
	g, err := e.c.Grant(ctx, ttl)
	if err != nil {
		return 0, 0, fmt.Errorf("grant %d s on %s: %w", ttl, e.target.Name, err)
	}
	return int64(g.ID), g.TTL, nil
}

func (e *etcdClient) PutLease(ctx context.Context, key, value string, id int64) (int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, err
	}
	r, err := e.c.Put(ctx, key, value, clientv3.WithLease(clientv3.LeaseID(id)))
	if err != nil {
		return 0, fmt.Errorf("put %s with lease %x on %s: %w", key, id, e.target.Name, err)
	}
	return r.Header.Revision, nil
}

func (e *etcdClient) KeepAliveOnce(ctx context.Context, id int64) (int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, err
	}
	r, err := e.c.KeepAliveOnce(ctx, clientv3.LeaseID(id))
	if err != nil {
		if strings.Contains(err.Error(), "requested lease not found") {
			return 0, nil
		}
		return 0, fmt.Errorf("keepalive %x on %s: %w", id, e.target.Name, err)
	}
	return r.TTL, nil
}

func (e *etcdClient) Revoke(ctx context.Context, id int64) (int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, err
	}
	r, err := e.c.Revoke(ctx, clientv3.LeaseID(id))
	if err != nil {
		return 0, fmt.Errorf("revoke %x on %s: %w", id, e.target.Name, err)
	}
	return r.Header.Revision, nil
}

func (e *etcdClient) ReadLeases(ctx context.Context, prefix string, serializable bool) (map[string]int64, int64, error) {
	if err := e.ready(ctx); err != nil {
		return nil, 0, err
	}
	r, err := e.c.Get(ctx, prefix, readOpts(serializable, clientv3.WithPrefix())...)
	if err != nil {
		return nil, 0, fmt.Errorf("get prefix %s on %s: %w", prefix, e.target.Name, err)
	}
	keys := make(map[string]int64, len(r.Kvs))
	for _, kv := range r.Kvs {
		keys[string(kv.Key)] = kv.Lease
	}
	return keys, r.Header.Revision, nil
}
