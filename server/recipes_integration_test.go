package server_test

// etcd's client-side recipes (go.etcd.io/etcd/client/v3/concurrency) over
// a 3-member quorumd, with their clients spread over the three members:
// they hold only if reads are linearizable, transactions compare
// revisions correctly, watches deliver deletes in order and leases expire.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// memberClients returns one client per member, each talking to that
// member only.
func memberClients(tc *testCluster) []*clientv3.Client {
	var clis []*clientv3.Client
	for _, ep := range tc.Endpoints() {
		clis = append(clis, tc.client(ep))
	}
	return clis
}

func newSession(t *testing.T, cli *clientv3.Client, opts ...concurrency.SessionOption) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(cli, opts...)
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Five sessions, over three members, each increment a counter twenty times
// with a plain read and a plain write under concurrency.Mutex: the lock
// alone keeps the increments apart, so none is lost.
func TestMutexFiveSessionsTwentyIncrementsLoseNone(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	clis := memberClients(tc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := clis[0].Put(ctx, "counter", "0"); err != nil {
		t.Fatal(err)
	}
	const sessions, increments = 5, 20
	var holders atomic.Int32 // goroutines inside the critical section
	errc := make(chan error, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		cli := clis[i%len(clis)]
		s := newSession(t, cli)
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := concurrency.NewMutex(s, "/counter-lock")
			for j := range increments {
				if err := m.Lock(ctx); err != nil {
					errc <- fmt.Errorf("session %d increment %d: lock: %w", i, j, err)
					return
				}
				if n := holders.Add(1); n != 1 {
					errc <- fmt.Errorf("session %d increment %d: %d holders of the lock", i, j, n)
				}
				err := func() error {
					resp, err := cli.Get(ctx, "counter")
					if err != nil {
						return fmt.Errorf("get: %w", err)
					}
					if len(resp.Kvs) != 1 {
						return errors.New("counter missing")
					}
					v, err := strconv.Atoi(string(resp.Kvs[0].Value))
					if err != nil {
						return err
					}
					if _, err := cli.Put(ctx, "counter", strconv.Itoa(v+1)); err != nil {
						return fmt.Errorf("put: %w", err)
					}
					return nil
				}()
				holders.Add(-1)
				if uerr := m.Unlock(ctx); uerr != nil && err == nil {
					err = fmt.Errorf("unlock: %w", uerr)
				}
				if err != nil {
					errc <- fmt.Errorf("session %d increment %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for i, cli := range clis {
		resp, err := cli.Get(ctx, "counter")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(resp.Kvs[0].Value); got != strconv.Itoa(sessions*increments) {
			t.Errorf("member %d: counter = %s, want %d", i, got, sessions*increments)
		}
	}
	if resp, err := clis[1].Get(ctx, "/counter-lock", clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("lock keys left after every unlock: %v, %v", resp, err)
	}
}

// Candidates on three members campaign at once: exactly one leads at a
// time, Leader and Observe (from a fourth session) agree with it, and each
// Resign hands leadership to one of those still waiting.
func TestElectionOneLeaderAtATimeResignHandsOver(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	clis := memberClients(tc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	observer := concurrency.NewElection(newSession(t, clis[2]), "/leader")
	obsCtx, obsCancel := context.WithCancel(ctx)
	defer obsCancel()
	observed := observer.Observe(obsCtx)

	const candidates = 3
	type win struct {
		i   int
		err error
	}
	wins := make(chan win, candidates)
	elections := make([]*concurrency.Election, candidates)
	for i := range candidates {
		elections[i] = concurrency.NewElection(newSession(t, clis[i%len(clis)]), "/leader")
		go func() {
			wins <- win{i, elections[i].Campaign(ctx, "c"+strconv.Itoa(i))}
		}()
	}

	// next waits for the observer to report value, skipping repeats of the
	// previous leader.
	next := func(prev, value string) {
		t.Helper()
		for {
			select {
			case resp, ok := <-observed:
				if !ok {
					t.Fatalf("observer closed waiting for %s", value)
				}
				got := string(resp.Kvs[0].Value)
				if got == prev {
					continue
				}
				if got != value {
					t.Fatalf("observer saw leader %s, want %s", got, value)
				}
				return
			case <-time.After(10 * time.Second):
				t.Fatalf("observer did not see leader %s", value)
			}
		}
	}

	prev := ""
	for round := range candidates {
		var w win
		select {
		case w = <-wins:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no candidate won", round)
		}
		if w.err != nil {
			t.Fatalf("round %d: candidate %d: campaign: %v", round, w.i, w.err)
		}
		value := "c" + strconv.Itoa(w.i)
		// Nobody else may win while this one leads.
		select {
		case o := <-wins:
			t.Fatalf("round %d: candidate %d won while %s leads (err %v)", round, o.i, value, o.err)
		case <-time.After(500 * time.Millisecond):
		}
		for j, cli := range clis {
			e := concurrency.NewElection(newSession(t, cli), "/leader")
			resp, err := e.Leader(ctx)
			if err != nil {
				t.Fatalf("round %d: Leader via member %d: %v", round, j, err)
			}
			if got := string(resp.Kvs[0].Value); got != value {
				t.Errorf("round %d: Leader via member %d = %s, want %s", round, j, got, value)
			}
		}
		next(prev, value)
		if err := elections[w.i].Resign(ctx); err != nil {
			t.Fatalf("round %d: %s resign: %v", round, value, err)
		}
		prev = value
	}
	if _, err := observer.Leader(ctx); !errors.Is(err, concurrency.ErrElectionNoLeader) {
		t.Errorf("after every candidate resigned: Leader err = %v, want %v", err, concurrency.ErrElectionNoLeader)
	}
}

// Transfers between accounts in STM transactions, by workers on all three
// members, keep the total, at every revision and at the end, for each
// isolation level.
func TestSTMTransfersKeepTheTotal(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	clis := memberClients(tc)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, iso := range []struct {
		name string
		iso  concurrency.Isolation
	}{
		{"Serializable", concurrency.Serializable},
		{"SerializableSnapshot", concurrency.SerializableSnapshot},
		{"RepeatableReads", concurrency.RepeatableReads},
	} {
		t.Run(iso.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			const accounts, balance, workers, transfers = 5, 100, 6, 25
			prefix := "/bank/" + iso.name + "/"
			account := func(i int) string { return prefix + strconv.Itoa(i) }
			for i := range accounts {
				if _, err := clis[0].Put(ctx, account(i), strconv.Itoa(balance)); err != nil {
					t.Fatal(err)
				}
			}
			total := func(cli *clientv3.Client, opts ...clientv3.OpOption) (int, int64, error) {
				resp, err := cli.Get(ctx, prefix, append(opts, clientv3.WithPrefix())...)
				if err != nil {
					return 0, 0, err
				}
				sum := 0
				for _, kv := range resp.Kvs {
					v, err := strconv.Atoi(string(kv.Value))
					if err != nil {
						return 0, 0, err
					}
					sum += v
				}
				return sum, resp.Header.Revision, nil
			}
			errc := make(chan error, workers+1)
			var wg sync.WaitGroup
			for w := range workers {
				cli := clis[w%len(clis)]
				rng := rand.New(rand.NewPCG(seed, uint64(w)))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range transfers {
						from, to := rng.IntN(accounts), rng.IntN(accounts-1)
						if to >= from {
							to++
						}
						amount := 1 + rng.IntN(20)
						_, err := concurrency.NewSTM(cli, func(stm concurrency.STM) error {
							a, _ := strconv.Atoi(stm.Get(account(from)))
							b, _ := strconv.Atoi(stm.Get(account(to)))
							if a < amount {
								return nil
							}
							stm.Put(account(from), strconv.Itoa(a-amount))
							stm.Put(account(to), strconv.Itoa(b+amount))
							return nil
						}, concurrency.WithIsolation(iso.iso), concurrency.WithAbortContext(ctx))
						if err != nil {
							errc <- fmt.Errorf("worker %d transfer %d: %w", w, n, err)
							return
						}
					}
				}()
			}
			// Meanwhile every member's view, read at one revision, adds up.
			done := make(chan struct{})
			var checker sync.WaitGroup
			checker.Add(1)
			go func() {
				defer checker.Done()
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					case <-time.After(20 * time.Millisecond):
					}
					opts := []clientv3.OpOption{}
					if i%2 == 1 {
						opts = append(opts, clientv3.WithSerializable())
					}
					sum, rev, err := total(clis[i%len(clis)], opts...)
					if err != nil {
						errc <- fmt.Errorf("total via member %d: %w", i%len(clis), err)
						return
					}
					if sum != accounts*balance {
						errc <- fmt.Errorf("total via member %d at revision %d = %d, want %d", i%len(clis), rev, sum, accounts*balance)
						return
					}
				}
			}()
			wg.Wait()
			close(done)
			checker.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			for i, cli := range clis {
				sum, rev, err := total(cli)
				if err != nil {
					t.Fatal(err)
				}
				if sum != accounts*balance {
					t.Errorf("member %d at revision %d: total %d, want %d", i, rev, sum, accounts*balance)
				}
			}
		})
	}
}

// A session whose client goes away without revoking its lease loses the
// lease after its TTL: the lock key vanishes and the next Mutex waiter, on
// another member, gets the lock.
func TestExpiredSessionReleasesMutexToNextWaiter(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	eps := tc.Endpoints()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The holder's client is closed by hand, not by the test's cleanup.
	holderCli := tc.client(eps[0])
	const ttl = 2
	holder := newSession(t, holderCli, concurrency.WithTTL(ttl))
	hm := concurrency.NewMutex(holder, "/expiring-lock")
	if err := hm.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	holderKey, holderLease := hm.Key(), holder.Lease()

	waiterCli := tc.client(eps[1])
	wm := concurrency.NewMutex(newSession(t, waiterCli), "/expiring-lock")
	locked := make(chan error, 1)
	go func() { locked <- wm.Lock(ctx) }()

	// While the holder's keepalives run, the waiter waits well past the TTL.
	select {
	case err := <-locked:
		t.Fatalf("waiter got the lock while the holder's session was alive (err %v)", err)
	case <-time.After(2 * ttl * time.Second):
	}

	closed := time.Now()
	holderCli.Close() // stops the keepalives; nothing revokes the lease
	select {
	case err := <-locked:
		if err != nil {
			t.Fatalf("waiter lock: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("waiter did not get the lock within 15s of the holder's client closing")
	}
	waited := time.Since(closed)
	t.Logf("waiter got the lock %v after the holder's client closed (TTL %ds)", waited.Round(time.Millisecond), ttl)
	if waited < time.Second {
		t.Errorf("waiter got the lock %v after the holder's client closed: before a %ds lease could expire", waited, ttl)
	}

	observer := tc.client(eps[2])
	resp, err := observer.Get(ctx, holderKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Errorf("holder's key %s still there after its lease expired", holderKey)
	}
	ttlResp, err := observer.TimeToLive(ctx, holderLease)
	if err != nil {
		t.Fatal(err)
	}
	if ttlResp.TTL != -1 {
		t.Errorf("holder's lease %x: TTL %d, want -1 (expired)", holderLease, ttlResp.TTL)
	}
	owner, err := observer.Get(ctx, "/expiring-lock", clientv3.WithFirstCreate()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(owner.Kvs) != 1 || string(owner.Kvs[0].Key) != wm.Key() {
		t.Errorf("lock owner keys %v, want the waiter's %s", owner.Kvs, wm.Key())
	}
	if err := wm.Unlock(ctx); err != nil {
		t.Error(err)
	}
}
