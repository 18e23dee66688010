package workloads

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc/connectivity"

	"github.com/quorum-kv/quorum/history"
)

var _ Client = (*etcdClient)(nil)

// EtcdOptions configures the clients EtcdDialer makes.
type EtcdOptions struct {
	// DialTimeout bounds clientv3.New (0: DefaultDialTimeout). clientv3
	// dials lazily, so an unreachable member shows up as operation errors,
	// not as a dial error.
	DialTimeout time.Duration
}

// DefaultDialTimeout is the EtcdOptions.DialTimeout used when it is 0.
const DefaultDialTimeout = 2 * time.Second

// EtcdDialer returns a Dialer making one clientv3.Client per call, bound to
// the target's endpoint only (so the history records which member served
// each operation), with clientv3's automatic retries disabled.
//
// Retries: clientv3 (v3.6.16, retry_interceptor.go) wraps every unary RPC
// in a retry interceptor allowing MaxUnaryRetries attempts (default 100).
// Range is marked repeatable and retried on Unavailable; Put and Txn are
// non-repeatable and retried only when no connection was available — but
// the interceptor also retries any call whose error is DeadlineExceeded or
// Canceled while the caller's context is still live (a server-side
// deadline), which could apply a write twice. MaxUnaryRetries is therefore
// set to 1: the loop makes exactly one attempt, so every operation the
// history records is one request on the wire.
//
// Before sending, a client waits (within the operation's context) until its
// connection is ready; if it is not, the operation fails with ErrNotSent,
// which Classify calls definite: a member that is down or cut off yields
// failed operations, not unknown ones.
func EtcdDialer(opts EtcdOptions) Dialer {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	return func(t Target) (Client, error) {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:       []string{t.Endpoint},
			TLS:             t.TLS,
			DialTimeout:     opts.DialTimeout,
			MaxUnaryRetries: 1,
			Logger:          zap.NewNop(),
		})
		if err != nil {
			return nil, fmt.Errorf("dial member %s at %s: %w", t.Name, t.Endpoint, err)
		}
		return &etcdClient{c: c, target: t}, nil
	}
}

// etcdClient is a Client on one clientv3.Client bound to one endpoint.
type etcdClient struct {
	c      *clientv3.Client
	target Target

	// The lock workload's session and the mutexes held on it, by key.
	sess    *concurrency.Session
	sessTTL int64
	mutexes map[string]*concurrency.Mutex
}

// ready waits until the connection to the member is up, so that a request
// is sent only on a ready connection. It returns an error wrapping
// ErrNotSent (and ctx's error) if the connection is not ready before ctx
// is done, or was shut down: the request was not sent.
//
// Without it, clientv3's default grpc.WaitForReady(true) would hold a
// request to a down member until its deadline and return
// DeadlineExceeded, which Classify must call indefinite although nothing
// was sent. A connection lost between this check and the send still
// yields an indefinite error, as it should.
func (e *etcdClient) ready(ctx context.Context) error {
	conn := e.c.ActiveConnection()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if s == connectivity.Shutdown {
			return fmt.Errorf("member %s: connection shut down: %w", e.target.Name, ErrNotSent)
		}
		if s == connectivity.Idle {
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("member %s: connection %s: %w: %w", e.target.Name, s, ErrNotSent, ctx.Err())
		}
	}
	return nil
}

func readOpts(serializable bool, extra ...clientv3.OpOption) []clientv3.OpOption {
	if serializable {
		extra = append(extra, clientv3.WithSerializable())
	}
	return extra
}

func (e *etcdClient) Read(ctx context.Context, key string, serializable bool) (*string, int64, error) {
	if err := e.ready(ctx); err != nil {
		return nil, 0, err
	}
	resp, err := e.c.Get(ctx, key, readOpts(serializable)...)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s on %s: %w", key, e.target.Name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	v := string(resp.Kvs[0].Value)
	return &v, resp.Kvs[0].ModRevision, nil
}

func (e *etcdClient) Write(ctx context.Context, key, value string) (int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, err
	}
	resp, err := e.c.Put(ctx, key, value)
	if err != nil {
		return 0, fmt.Errorf("put %s on %s: %w", key, e.target.Name, err)
	}
	return resp.Header.Revision, nil
}

func (e *etcdClient) CAS(ctx context.Context, key string, expected *string, value string) (bool, int64, error) {
	if err := e.ready(ctx); err != nil {
		return false, 0, err
	}
	cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if expected != nil {
		cmp = clientv3.Compare(clientv3.Value(key), "=", *expected)
	}
	resp, err := e.c.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, value)).Commit()
	if err != nil {
		return false, 0, fmt.Errorf("txn cas %s on %s: %w", key, e.target.Name, err)
	}
	return resp.Succeeded, resp.Header.Revision, nil
}

func (e *etcdClient) Add(ctx context.Context, set, element string) error {
	if err := e.ready(ctx); err != nil {
		return err
	}
	if _, err := e.c.Put(ctx, set+"/"+element, ""); err != nil {
		return fmt.Errorf("put %s/%s on %s: %w", set, element, e.target.Name, err)
	}
	return nil
}

func (e *etcdClient) ReadSet(ctx context.Context, set string, serializable bool) ([]string, error) {
	if err := e.ready(ctx); err != nil {
		return nil, err
	}
	prefix := set + "/"
	resp, err := e.c.Get(ctx, prefix, readOpts(serializable, clientv3.WithPrefix(), clientv3.WithKeysOnly())...)
	if err != nil {
		return nil, fmt.Errorf("get prefix %s on %s: %w", prefix, e.target.Name, err)
	}
	els := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		els = append(els, strings.TrimPrefix(string(kv.Key), prefix))
	}
	return els, nil
}

func (e *etcdClient) Close() error {
	if e.sess != nil {
		// Abandon the lease (it expires after its TTL) rather than
		// revoke it through a member that may not answer.
		e.sess.Orphan()
	}
	if err := e.c.Close(); err != nil {
		return fmt.Errorf("close client of %s: %w", e.target.Name, err)
	}
	return nil
}

// Txn is Jepsen's etcd list-append transaction: one Txn of Gets of every
// key ops use (linearizable unless serializable); if ops only read, their
// lists come from it. Otherwise a second Txn, guarded by
// mod_revision(k) == the revision read for every key ops append to (0:
// absent), puts each appended key's new list and gets the keys ops only
// read, so that reads and appends take effect at one revision; a guard
// that does not hold yields committed false (nothing applied).
func (e *etcdClient) Txn(ctx context.Context, ops []history.MicroOp, serializable bool) ([]history.MicroOp, bool, error) {
	if err := e.ready(ctx); err != nil {
		return nil, false, err
	}
	appended, readOnly := txnKeys(ops)
	lists := map[string][]int{}
	gets := func(keys []string) []clientv3.Op {
		out := make([]clientv3.Op, len(keys))
		for i, k := range keys {
			out[i] = clientv3.OpGet(k, readOpts(serializable)...)
		}
		return out
	}
	// collect decodes the Get responses of keys, which start at resps[0].
	collect := func(keys []string, resps []*etcdserverpb.ResponseOp, modRevs map[string]int64) error {
		for i, k := range keys {
			r := resps[i].GetResponseRange()
			if r == nil || len(r.Kvs) == 0 {
				lists[k] = nil
				continue
			}
			l, err := decodeList(k, string(r.Kvs[0].Value))
			if err != nil {
				return err
			}
			lists[k] = l
			if modRevs != nil {
				modRevs[k] = r.Kvs[0].ModRevision
			}
		}
		return nil
	}

	all := append(append([]string(nil), appended...), readOnly...)
	resp, err := e.c.Txn(ctx).Then(gets(all)...).Commit()
	if err != nil {
		return nil, false, fmt.Errorf("txn read %d keys on %s: %w", len(all), e.target.Name, err)
	}
	modRevs := map[string]int64{}
	if err := collect(all, resp.Responses, modRevs); err != nil {
		return nil, false, fmt.Errorf("txn read on %s: %w: %w", e.target.Name, ErrNotSent, err)
	}
	if len(appended) == 0 {
		done, _ := applyTxn(ops, lists)
		return done, true, nil
	}

	done, writes := applyTxn(ops, lists)
	cmps := make([]clientv3.Cmp, len(appended))
	then := make([]clientv3.Op, 0, len(appended)+len(readOnly))
	for i, k := range appended {
		cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", modRevs[k])
		then = append(then, clientv3.OpPut(k, encodeList(writes[k])))
	}
	then = append(then, gets(readOnly)...)
	resp, err = e.c.Txn(ctx).If(cmps...).Then(then...).Commit()
	if err != nil {
		return nil, false, fmt.Errorf("txn append to %d keys on %s: %w", len(appended), e.target.Name, err)
	}
	if !resp.Succeeded {
		return nil, false, nil
	}
	if err := collect(readOnly, resp.Responses[len(appended):], nil); err != nil {
		// Committed, but what was read is unreadable: unknown to the
		// checker, so not definite.
		return nil, false, fmt.Errorf("txn on %s committed: %w", e.target.Name, err)
	}
	done, _ = applyTxn(ops, lists)
	return done, true, nil
}

var _ WatchClient = (*etcdClient)(nil)

func (e *etcdClient) Delete(ctx context.Context, key string) (int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, err
	}
	resp, err := e.c.Delete(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("delete %s on %s: %w", key, e.target.Name, err)
	}
	return resp.Header.Revision, nil
}

func (e *etcdClient) WriteTxn(ctx context.Context, ops []history.WriteOp) (int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, err
	}
	then := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		then[i] = clientv3.OpDelete(o.Key)
		if o.F == history.WatchPut {
			then[i] = clientv3.OpPut(o.Key, o.Value)
		}
	}
	resp, err := e.c.Txn(ctx).Then(then...).Commit()
	if err != nil {
		return 0, fmt.Errorf("txn of %d writes on %s: %w", len(ops), e.target.Name, err)
	}
	return resp.Header.Revision, nil
}

func (e *etcdClient) Revision(ctx context.Context) (int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, err
	}
	resp, err := e.c.Get(ctx, "\x00", clientv3.WithKeysOnly(), clientv3.WithLimit(1))
	if err != nil {
		return 0, fmt.Errorf("get revision on %s: %w", e.target.Name, err)
	}
	return resp.Header.Revision, nil
}

// watchPoll is how often a watch checks its connection.
const watchPoll = 100 * time.Millisecond

// Watch is clientv3's Watch with WithRequireLeader, so that a member
// that loses its leader cancels the watch ("no leader") instead of
// serving it from a partitioned copy, and with the spec's options. It
// starts once the connection is ready (else, within DefaultDialTimeout,
// it is cut at once). The watch counts as cut — its last response carries Err — when clientv3
// ends it, or when the connection to the member is found not ready (every
// watchPoll): clientv3 would otherwise reconnect and resume the watch
// itself, and the cut would not show in the history. With
// spec.ProgressNotify it calls RequestProgress every ProgressEvery.
func (e *etcdClient) Watch(ctx context.Context, spec history.WatchSpec) <-chan history.WatchResponse {
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
		rctx, rcancel := context.WithTimeout(ctx, DefaultDialTimeout)
		err := e.ready(rctx)
		rcancel()
		if err != nil {
			if ctx.Err() == nil {
				send(history.WatchResponse{Err: err.Error()})
			}
			return
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer cancel()
		opts := []clientv3.OpOption{clientv3.WithRev(spec.StartRev)}
		if spec.RangeEnd != "" {
			opts = append(opts, clientv3.WithRange(spec.RangeEnd))
		}
		if spec.PrevKV {
			opts = append(opts, clientv3.WithPrevKV())
		}
		if spec.NoPut {
			opts = append(opts, clientv3.WithFilterPut())
		}
		if spec.NoDelete {
			opts = append(opts, clientv3.WithFilterDelete())
		}
		if spec.ProgressNotify {
			opts = append(opts, clientv3.WithProgressNotify())
		}
		wch := e.c.Watch(wctx, spec.Key, opts...)
		poll := time.NewTicker(watchPoll)
		defer poll.Stop()
		lastAsk := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-poll.C:
				if s := e.c.ActiveConnection().GetState(); s != connectivity.Ready {
					send(history.WatchResponse{Err: fmt.Sprintf("member %s: connection %s", e.target.Name, s)})
					return
				}
				if spec.ProgressNotify && time.Since(lastAsk) >= ProgressEvery {
					lastAsk = time.Now()
					_ = e.c.RequestProgress(wctx)
				}
			case wr, ok := <-wch:
				if !ok {
					if ctx.Err() == nil {
						send(history.WatchResponse{Err: fmt.Sprintf("member %s: watch channel closed", e.target.Name)})
					}
					return
				}
				r := watchResponse(wr)
				if err := wr.Err(); err != nil && ctx.Err() == nil {
					r.Err = fmt.Sprintf("member %s: %v", e.target.Name, err)
				}
				if !send(r) || r.Err != "" || r.Canceled {
					return
				}
			}
		}
	}()
	return out
}

// watchResponse converts a clientv3 watch response.
func watchResponse(wr clientv3.WatchResponse) history.WatchResponse {
	r := history.WatchResponse{
		Revision: wr.Header.Revision, Created: wr.Created, Canceled: wr.Canceled,
		CompactRevision: wr.CompactRevision, Progress: wr.IsProgressNotify(),
	}
	for _, ev := range wr.Events {
		e := history.WatchEvent{Type: history.WatchPut, Kv: kvOf(ev.Kv)}
		if ev.Type == clientv3.EventTypeDelete {
			e.Type = history.WatchDelete
		}
		if ev.PrevKv != nil {
			p := kvOf(ev.PrevKv)
			e.PrevKV = &p
		}
		r.Events = append(r.Events, e)
	}
	return r
}

func kvOf(kv *mvccpb.KeyValue) history.KV {
	return history.KV{Key: string(kv.Key), Value: string(kv.Value), ModRev: kv.ModRevision, CreateRev: kv.CreateRevision, Version: kv.Version}
}
