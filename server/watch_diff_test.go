package server_test

import (
	"context"
	"fmt"
	"math/rand"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

// startEmbeddedEtcd starts etcd 3.6 in this process, on loopback ports
// chosen by the kernel, and returns a client of it.
func startEmbeddedEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(t.TempDir(), "etcd")
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	lc, _ := url.Parse("http://127.0.0.1:0")
	lp, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*lc}, []url.URL{*lc}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*lp}, []url.URL{*lp}
	cfg.InitialCluster = cfg.Name + "=" + lp.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("embedded etcd not ready after 30 s")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Clients[0].Addr().String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func leaseGrant(id clientv3.LeaseID, ttl int64) *pb.LeaseGrantRequest {
	return &pb.LeaseGrantRequest{ID: int64(id), TTL: ttl}
}

// diffWatcher records what one watcher received, as comparable lines.
type diffWatcher struct {
	desc string
	// ctx gives the watcher a gRPC stream of its own (clientv3 shares a
	// stream between watchers with the same metadata), so that a progress
	// request is about this watcher alone.
	ctx   context.Context
	cli   *clientv3.Client
	start int64
	mu    sync.Mutex
	got   []string
	// progress is the highest revision of a progress notification.
	progress int64
	closed   bool
}

func (w *diffWatcher) run(ch clientv3.WatchChan) {
	for resp := range ch {
		w.mu.Lock()
		switch {
		case resp.CompactRevision != 0:
			w.got = append(w.got, fmt.Sprintf("compacted at %d", resp.CompactRevision))
		case resp.IsProgressNotify():
			w.progress = max(w.progress, resp.Header.Revision)
		case resp.Canceled:
			w.got = append(w.got, "canceled: "+resp.Err().Error())
		}
		for _, e := range resp.Events {
			w.got = append(w.got, eventLine(e))
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func kvLine(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "-"
	}
	return fmt.Sprintf("%q=%q c%d m%d v%d l%x", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

func eventLine(e *clientv3.Event) string {
	return fmt.Sprintf("%s %s prev %s create %v modify %v", e.Type, kvLine(e.Kv), kvLine(e.PrevKv), e.IsCreate(), e.IsModify())
}

// diffSide is one server under test: a client and its watchers.
type diffSide struct {
	name     string
	clients  []*clientv3.Client
	watchers []*diffWatcher
}

// TestWatchEventsEqualEmbeddedEtcd is the differential test of Watch: the
// same random puts, deletes, txns, lease grants, revokes and expiries, and
// compactions go to a 3-member quorumd and to an embedded etcd 3.6, and
// watchers created at the same moments on both — random keys, prefixes and
// ranges, from past (possibly compacted), present and future revisions,
// with random filters and prev_kv, on random quorumd members — must receive
// exactly the same events (and the same compaction cancellations).
func TestWatchEventsEqualEmbeddedEtcd(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	var q diffSide
	q.name = "quorumd"
	for _, ep := range tc.Endpoints() {
		q.clients = append(q.clients, tc.client(ep))
	}
	e := diffSide{name: "etcd", clients: []*clientv3.Client{startEmbeddedEtcd(t)}}
	sides := []*diffSide{&q, &e}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()

	rng := rand.New(rand.NewSource(20261202))
	keys := []string{"a", "a/1", "a/2", "b", "b/1", "c", "d"}
	key := func() string { return keys[rng.Intn(len(keys))] }
	var rev int64 = 1
	compacted := int64(0)
	leases := map[clientv3.LeaseID]bool{}
	nextLease := clientv3.LeaseID(0x100)

	// do runs one operation on both sides and requires the same revision.
	do := func(what string, f func(cli *clientv3.Client) (int64, error)) {
		t.Helper()
		var revs [2]int64
		var errs [2]string
		for i, s := range sides {
			cli := s.clients[rng.Intn(len(s.clients))]
			r, err := f(cli)
			revs[i] = r
			if err != nil {
				errs[i] = err.Error()
			}
		}
		if revs[0] != revs[1] || errs[0] != errs[1] {
			t.Fatalf("%s: quorumd rev %d err %q; etcd rev %d err %q", what, revs[0], errs[0], revs[1], errs[1])
		}
		rev = max(rev, revs[0])
	}
	watch := func() {
		k := key()
		var opts []clientv3.OpOption
		desc := k
		switch rng.Intn(4) {
		case 1:
			opts = append(opts, clientv3.WithPrefix())
			desc += " prefix"
		case 2:
			opts = append(opts, clientv3.WithFromKey())
			desc += " fromkey"
		case 3:
			end := keys[rng.Intn(len(keys))]
			if end > k {
				opts = append(opts, clientv3.WithRange(end))
				desc += " to " + end
			}
		}
		start := rev + 1
		switch rng.Intn(3) {
		case 0:
			start = 1 + rng.Int63n(rev)
		case 1:
			start = rev + 1 + rng.Int63n(3)
		}
		opts = append(opts, clientv3.WithRev(start), clientv3.WithProgressNotify())
		desc += fmt.Sprintf(" from %d", start)
		if rng.Intn(2) == 0 {
			opts = append(opts, clientv3.WithPrevKV())
			desc += " prevkv"
		}
		switch rng.Intn(6) {
		case 0:
			opts = append(opts, clientv3.WithFilterPut())
			desc += " noput"
		case 1:
			opts = append(opts, clientv3.WithFilterDelete())
			desc += " nodelete"
		}
		for _, s := range sides {
			w := &diffWatcher{desc: desc, start: start, cli: s.clients[rng.Intn(len(s.clients))],
				ctx: metadata.AppendToOutgoingContext(wctx, "watcher", fmt.Sprint(len(s.watchers)))}
			s.watchers = append(s.watchers, w)
			go w.run(w.cli.Watch(w.ctx, k, opts...))
		}
	}
	// synced waits until every watcher on both sides that started at or
	// below revision at has reported progress at it (or was canceled): a
	// catch-up then cannot race a compaction.
	synced := func(at int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for _, s := range sides {
			for {
				behind := 0
				for _, w := range s.watchers {
					w.mu.Lock()
					lag := !w.closed && w.start <= at && w.progress < at
					w.mu.Unlock()
					if lag {
						behind++
						_ = w.cli.RequestProgress(w.ctx)
					}
				}
				if behind == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d watchers without progress at revision %d after 30 s", s.name, behind, at)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}

	for step := 0; step < 400; step++ {
		switch x := rng.Intn(100); {
		case x < 30:
			k, v := key(), fmt.Sprint(rng.Intn(1000))
			var opts []clientv3.OpOption
			for id := range leases {
				if rng.Intn(3) == 0 {
					opts = append(opts, clientv3.WithLease(id))
				}
				break
			}
			do("put "+k, func(cli *clientv3.Client) (int64, error) {
				r, err := cli.Put(ctx, k, v, opts...)
				if err != nil {
					return 0, err
				}
				return r.Header.Revision, nil
			})
		case x < 40:
			k := key()
			var opts []clientv3.OpOption
			if rng.Intn(2) == 0 {
				opts = append(opts, clientv3.WithPrefix())
			}
			do("delete "+k, func(cli *clientv3.Client) (int64, error) {
				r, err := cli.Delete(ctx, k, opts...)
				if err != nil {
					return 0, err
				}
				return r.Header.Revision, nil
			})
		case x < 55:
			k1, k2, k3 := key(), key(), key()
			if k1 == k2 || k2 == k3 || k1 == k3 {
				continue
			}
			do("txn", func(cli *clientv3.Client) (int64, error) {
				r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(k1), ">", 0)).
					Then(clientv3.OpPut(k2, "t"), clientv3.OpDelete(k3)).
					Else(clientv3.OpPut(k3, "e"), clientv3.OpPut(k2, "e")).Commit()
				if err != nil {
					return 0, err
				}
				return r.Header.Revision, nil
			})
		case x < 60:
			id := nextLease
			nextLease++
			leases[id] = true
			do("lease grant", func(cli *clientv3.Client) (int64, error) {
				r, err := clientv3.RetryLeaseClient(cli).LeaseGrant(ctx, leaseGrant(id, 600))
				if err != nil {
					return 0, err
				}
				return r.Header.Revision, nil
			})
		case x < 64:
			for id := range leases {
				delete(leases, id)
				do("lease revoke", func(cli *clientv3.Client) (int64, error) {
					r, err := cli.Revoke(ctx, id)
					if err != nil {
						return 0, err
					}
					return r.Header.Revision, nil
				})
				break
			}
		case x < 67:
			if rev-compacted < 3 {
				continue
			}
			at := compacted + 1 + rng.Int63n(rev-compacted-1)
			synced(rev)
			do(fmt.Sprint("compact ", at), func(cli *clientv3.Client) (int64, error) {
				_, err := cli.Compact(ctx, at)
				return rev, err
			})
			compacted = at
		case x < 68 && step > 50:
			// A lease that really expires, with two keys: both sides
			// delete them in one revision, then nothing else happens
			// until both have.
			id := nextLease
			nextLease++
			do("short lease", func(cli *clientv3.Client) (int64, error) {
				if _, err := clientv3.RetryLeaseClient(cli).LeaseGrant(ctx, leaseGrant(id, 1)); err != nil {
					return 0, err
				}
				if _, err := cli.Put(ctx, "a/exp", "x", clientv3.WithLease(id)); err != nil {
					return 0, err
				}
				r, err := cli.Put(ctx, "b/exp", "y", clientv3.WithLease(id))
				if err != nil {
					return 0, err
				}
				return r.Header.Revision, nil
			})
			for _, s := range sides {
				eventually(t, 15*time.Second, s.name+" lease expiry", func() error {
					r, err := s.clients[0].Get(ctx, "a/exp")
					if err != nil {
						return err
					}
					if r.Count != 0 {
						return fmt.Errorf("a/exp still there at %d", r.Header.Revision)
					}
					rev = max(rev, r.Header.Revision)
					return nil
				})
			}
		default:
			watch()
		}
	}

	// Move past every future start revision.
	for range 4 {
		do("final put", func(cli *clientv3.Client) (int64, error) {
			r, err := cli.Put(ctx, "zzz", "end")
			if err != nil {
				return 0, err
			}
			return r.Header.Revision, nil
		})
	}

	// Wait until every watcher on both sides has reported progress at the
	// final revision (or was canceled), then compare.
	final := rev
	synced(final)
	events := 0
	for i := range q.watchers {
		qw, ew := q.watchers[i], e.watchers[i]
		qw.mu.Lock()
		ew.mu.Lock()
		if strings.Join(qw.got, "\n") != strings.Join(ew.got, "\n") {
			t.Errorf("watcher %d (%s): quorumd got\n%s\netcd got\n%s", i, qw.desc, strings.Join(qw.got, "\n"), strings.Join(ew.got, "\n"))
		}
		events += len(ew.got)
		qw.mu.Unlock()
		ew.mu.Unlock()
	}
	t.Logf("%d watchers, %d events compared, final revision %d, compacted at %d", len(q.watchers), events, final, compacted)
}
