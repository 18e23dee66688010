package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxWatchPutRate bounds Config.WatchPutRate so that the ack ring holds
// several seconds of puts.
const maxWatchPutRate = 10000

// ackRingSize is the number of put acknowledgements an ackRing holds:
// 6.5 s of puts at maxWatchPutRate.
const ackRingSize = 1 << 16

// ackRing records when each put was acknowledged, keyed by the revision
// the put created (its response header's revision, which is the event's
// mod revision): a bounded table, slot = revision mod ackRingSize, written
// by the put goroutines and read by every watcher goroutine without locks.
// A slot overwritten by a newer revision reads as absent.
type ackRing struct {
	rev  [ackRingSize]atomic.Int64
	at   [ackRingSize]atomic.Int64
	sent [ackRingSize]atomic.Int64
}

// put records that the put of rev was sent at sent and acknowledged at at
// (nanoseconds since the cell's origin).
func (r *ackRing) put(rev, sent, at int64) {
	i := rev & (ackRingSize - 1)
	r.rev[i].Store(0) // readers of the old revision see a change
	r.at[i].Store(at)
	r.sent[i].Store(sent)
	r.rev[i].Store(rev)
}

// get returns when rev's put was sent and acknowledged; false when it was
// not recorded (yet, or any more).
func (r *ackRing) get(rev int64) (sent, at int64, ok bool) {
	i := rev & (ackRingSize - 1)
	if r.rev[i].Load() != rev {
		return 0, 0, false
	}
	at, sent = r.at[i].Load(), r.sent[i].Load()
	if r.rev[i].Load() != rev {
		return 0, 0, false
	}
	return sent, at, true
}

// watchers is a set of open watchers, each on its own goroutine.
type watchers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// created is the per-watcher creation latency (Watch call to the
	// created response), in microseconds.
	created *hdrhistogram.Histogram
	mu      sync.Mutex
	errs    int64
	sample  string
}

// watchTarget is what watcher i watches.
type watchTarget func(i int) (key string, opts []clientv3.OpOption)

// watchHandler returns watcher i's callbacks: onResp for each response
// carrying events, onEnd once when the watcher ends. Both run on watcher
// i's goroutine.
type watchHandler func(i int) (onResp func(clientv3.WatchResponse), onEnd func())

// startWatchers opens n watchers, watcher i on conns[i mod len(conns)]
// (clientv3 multiplexes a client's watchers with the same context on one
// gRPC stream, so there are len(conns) streams). It returns once every
// watcher is created, or with an error when that took longer than
// timeout (the watchers are then closed). Close the set with close.
func startWatchers(ctx context.Context, conns []*clientv3.Client, n int, target watchTarget, handler watchHandler, timeout time.Duration) (*watchers, error) {
	wctx, cancel := context.WithCancel(ctx)
	ws := &watchers{cancel: cancel, created: hdrhistogram.New(histMin, histMax, histSigFigs)}
	var created sync.WaitGroup
	created.Add(n)
	for i := 0; i < n; i++ {
		key, opts := target(i)
		var onResp func(clientv3.WatchResponse)
		var onEnd func()
		if handler != nil {
			onResp, onEnd = handler(i)
		}
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			if onEnd != nil {
				defer onEnd()
			}
			t0 := time.Now()
			wch := conns[i%len(conns)].Watch(wctx, key, append(opts, clientv3.WithCreatedNotify())...)
			isCreated := false
			defer func() {
				if !isCreated {
					created.Done()
				}
			}()
			for resp := range wch {
				if resp.Created && !isCreated {
					isCreated = true
					us := min(max(time.Since(t0).Microseconds(), histMin), histMax)
					ws.mu.Lock()
					ws.created.RecordValue(us)
					ws.mu.Unlock()
					created.Done()
				}
				if err := resp.Err(); err != nil || resp.Canceled {
					if wctx.Err() == nil {
						ws.fail(fmt.Sprintf("watcher %d: canceled: %v", i, err))
					}
					return
				}
				if len(resp.Events) > 0 && onResp != nil {
					onResp(resp)
				}
			}
			if wctx.Err() == nil {
				ws.fail(fmt.Sprintf("watcher %d: channel closed", i))
			}
		}()
	}
	done := make(chan struct{})
	go func() { created.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return ws, nil
	case <-t.C:
		ws.close()
		return nil, fmt.Errorf("open %d watchers: not all created within %v", n, timeout)
	case <-ctx.Done():
		ws.close()
		return nil, ctx.Err()
	}
}

func (ws *watchers) fail(msg string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.errs++
	if ws.sample == "" {
		ws.sample = msg
	}
}

// close cancels every watcher and waits for their goroutines (and their
// onEnd callbacks) to finish.
func (ws *watchers) close() {
	ws.cancel()
	ws.wg.Wait()
}

// idleKey is idle watcher i's key: longer than every benchmark key, so no
// workload writes it.
func (k keyspace) idleKey(i int) string {
	return k.key(k.n-1) + "/idle/" + strconv.Itoa(i)
}

// rangeOpts makes a watch or get cover every key of the key space.
func (k keyspace) rangeOpts() []clientv3.OpOption {
	if k.keySize < 8 && k.n == 1<<(8*k.keySize) {
		return []clientv3.OpOption{clientv3.WithFromKey()}
	}
	return []clientv3.OpOption{clientv3.WithRange(k.key(k.n))}
}

// openIdleWatchers opens n watchers, each on its own idle key; events
// counts the events they received (none, unless something wrote an idle
// key).
func openIdleWatchers(ctx context.Context, conns []*clientv3.Client, ks keyspace, n int, timeout time.Duration) (ws *watchers, events *atomic.Int64, err error) {
	events = new(atomic.Int64)
	ws, err = startWatchers(ctx, conns, n,
		func(i int) (string, []clientv3.OpOption) { return ks.idleKey(i), nil },
		func(int) (func(clientv3.WatchResponse), func()) {
			return func(r clientv3.WatchResponse) { events.Add(int64(len(r.Events))) }, nil
		}, timeout)
	return ws, events, err
}

// watchCreateTimeout bounds the creation of n watchers.
func watchCreateTimeout(n int) time.Duration {
	return 30*time.Second + time.Duration(n)*time.Millisecond
}

// watchSpec is one watch cell.
type watchSpec struct {
	Watchers                    int
	PutRate                     float64
	Warmup, Duration, OpTimeout time.Duration
	Seed                        uint64
	// OnMeasure is called once when the measured time starts.
	OnMeasure func()
}

// watchOutcome is a watch cell as measured: Events (received in the
// measured time) and their latencies, the puts' latencies, and the
// delivery checks in Stats.
type watchOutcome struct {
	Stats    WatchStats
	Events   int64
	Measured time.Duration
	Hist     *hdrhistogram.Histogram
	PutHist  *hdrhistogram.Histogram
	// PutErrorSample is one failed put's error.
	PutErrorSample string
}

// runWatch opens spec.Watchers watchers of the whole key space over
// wconns, then puts random keys at spec.PutRate (open loop, at most 64 in
// flight, round-robin over pconns) for Warmup+Duration. An event received
// in the measured time counts towards the events/s, with latency = its
// receipt − its put's acknowledgement (0 when it came first). After the
// last put it waits (at most OpTimeout) for every watcher to have an event
// per acknowledged put, then checks delivery per watcher.
func runWatch(ctx context.Context, wconns, pconns []*clientv3.Client, ks keyspace, spec watchSpec) (watchOutcome, error) {
	origin := time.Now()
	since := func(t time.Time) int64 { return int64(t.Sub(origin)) }
	ring := new(ackRing)
	// The measured window, in ns since origin, set before the first put.
	var from, to atomic.Int64
	n := spec.Watchers
	got := make([]atomic.Int64, n)
	dups := make([]atomic.Int64, n)
	type histShard struct {
		mu             sync.Mutex
		hist, fromSend *hdrhistogram.Histogram
		events         int64
		beforeAck      int64
	}
	shards := make([]*histShard, len(wconns))
	for i := range shards {
		shards[i] = &histShard{hist: hdrhistogram.New(histMin, histMax, histSigFigs), fromSend: hdrhistogram.New(histMin, histMax, histSigFigs)}
	}
	opts := ks.rangeOpts()
	handler := func(i int) (func(clientv3.WatchResponse), func()) {
		var last int64
		var batch, sendBatch []int64
		var beforeAck int64
		sh := shards[i%len(shards)]
		flush := func() {
			sh.mu.Lock()
			for _, us := range batch {
				sh.hist.RecordValue(us)
			}
			for _, us := range sendBatch {
				sh.fromSend.RecordValue(us)
			}
			sh.events += int64(len(batch))
			sh.beforeAck += beforeAck
			sh.mu.Unlock()
			batch, sendBatch, beforeAck = batch[:0], sendBatch[:0], 0
		}
		us := func(ns int64) int64 { return min(max(ns/int64(time.Microsecond), histMin), histMax) }
		onResp := func(resp clientv3.WatchResponse) {
			now := since(time.Now())
			f, t := from.Load(), to.Load()
			for _, ev := range resp.Events {
				rev := ev.Kv.ModRevision
				if rev <= last {
					dups[i].Add(1)
					continue
				}
				last = rev
				got[i].Add(1)
				if f == 0 || now < f || now >= t {
					continue
				}
				lat := int64(0)
				sent, at, ok := ring.get(rev)
				if ok && at <= now {
					lat = now - at
				} else {
					beforeAck++
				}
				batch = append(batch, us(lat))
				if ok {
					sendBatch = append(sendBatch, us(now-sent))
				}
			}
			if len(batch) >= 256 {
				flush()
			}
		}
		return onResp, flush
	}
	ws, err := startWatchers(ctx, wconns, n, func(int) (string, []clientv3.OpOption) { return ks.key(0), opts }, handler, watchCreateTimeout(n))
	if err != nil {
		return watchOutcome{}, err
	}
	defer ws.close()

	out := watchOutcome{PutHist: hdrhistogram.New(histMin, histMax, histSigFigs), Measured: spec.Duration}
	out.Stats.PutRate = spec.PutRate
	out.Stats.EventRate = spec.PutRate * float64(n)
	start := time.Now()
	measureFrom := start.Add(spec.Warmup)
	end := measureFrom.Add(spec.Duration)
	from.Store(since(measureFrom))
	to.Store(since(end))
	timer := time.AfterFunc(spec.Warmup, func() {
		if spec.OnMeasure != nil {
			spec.OnMeasure()
		}
	})
	defer timer.Stop()

	var puts, putErrs atomic.Int64
	var putMu sync.Mutex
	var putWG sync.WaitGroup
	sem := make(chan struct{}, 64)
	rng := rand.New(rand.NewPCG(spec.Seed, 0x3a7c4))
	interval := time.Duration(float64(time.Second) / spec.PutRate)
	for i := 0; ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if !at.Before(end) {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		select {
		case sem <- struct{}{}:
		default:
			out.Stats.PutsSkipped++
			continue
		}
		k, cli := ks.key(rng.IntN(ks.n)), pconns[i%len(pconns)]
		putWG.Add(1)
		go func() {
			defer putWG.Done()
			octx, cancel := context.WithTimeout(ctx, spec.OpTimeout)
			t0 := time.Now()
			resp, err := cli.Put(octx, k, ks.value)
			t1 := time.Now()
			cancel()
			<-sem
			if err != nil {
				putErrs.Add(1)
				putMu.Lock()
				if out.PutErrorSample == "" {
					out.PutErrorSample = err.Error()
				}
				putMu.Unlock()
				return
			}
			ring.put(resp.Header.Revision, since(t0), since(t1))
			puts.Add(1)
			if !t0.Before(measureFrom) {
				us := min(max(t1.Sub(t0).Microseconds(), histMin), histMax)
				putMu.Lock()
				out.PutHist.RecordValue(us)
				putMu.Unlock()
			}
		}()
	}
	putWG.Wait()
	lastAck := time.Now()
	acked := puts.Load()
	for ctx.Err() == nil && time.Since(lastAck) < spec.OpTimeout {
		all := true
		for i := range got {
			if got[i].Load() < acked {
				all = false
				break
			}
		}
		if all {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	out.Stats.Drain = time.Since(lastAck)
	ws.close()

	st := &out.Stats
	st.Puts, st.PutErrors = acked, putErrs.Load()
	st.Expected = acked * int64(n)
	for i := range got {
		g := got[i].Load()
		st.Delivered += g
		st.Duplicates += dups[i].Load()
		st.Missing += max(0, acked-g)
		st.Extra += max(0, g-acked-st.PutErrors)
	}
	st.WatchErrors, st.WatchErrorSample = ws.errs, ws.sample
	out.Hist = hdrhistogram.New(histMin, histMax, histSigFigs)
	fromSend := hdrhistogram.New(histMin, histMax, histSigFigs)
	for _, sh := range shards {
		out.Events += sh.events
		st.BeforeAck += sh.beforeAck
		out.Hist.Merge(sh.hist)
		fromSend.Merge(sh.fromSend)
	}
	st.FromSend = latencyOf(fromSend)
	st.PutLatency = latencyOf(out.PutHist)
	if ctx.Err() != nil {
		out.Measured = max(0, min(time.Since(measureFrom), spec.Duration))
		return out, ctx.Err()
	}
	return out, nil
}

// grantLeases grants n leases of ttl seconds over conns, up to 64 in
// flight, recording each grant's latency; it returns the number granted
// and the first error.
func grantLeases(ctx context.Context, conns []*clientv3.Client, n int, ttl int64, timeout time.Duration, hist *hdrhistogram.Histogram) (int64, int64, error) {
	var next, ok, failed atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := 0; w < min(64, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := conns[w%len(conns)]
			for ctx.Err() == nil {
				if int(next.Add(1)) > n {
					return
				}
				octx, cancel := context.WithTimeout(ctx, timeout)
				t0 := time.Now()
				_, err := cli.Grant(octx, ttl)
				lat := time.Since(t0)
				cancel()
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if first == nil {
						first = err
					}
				} else {
					ok.Add(1)
					hist.RecordValue(min(max(lat.Microseconds(), histMin), histMax))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return ok.Load(), failed.Load(), first
}
