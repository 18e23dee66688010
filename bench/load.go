package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/quorum-kv/quorum/cluster"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/reports/render"
)

// Histogram bounds, in microseconds: 1 µs to 60 s, 3 significant figures.
const (
	histMin     = 1
	histMax     = 60_000_000
	histSigFigs = 3
)

// CDFQuantiles are the quantiles saved in Latency.CDF.
var CDFQuantiles = []float64{0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1}

// loadSpec is one cell's load.
type loadSpec struct {
	Workload         string
	Clients, Conns   int
	Warmup, Duration time.Duration
	OpTimeout        time.Duration
	Seed             uint64
	// OnMeasure is called once when the measured time starts (after the
	// warm-up), from a timer goroutine.
	OnMeasure func()
}

// loadOutcome is one cell's load as measured.
type loadOutcome struct {
	OK, Errors  int64
	ErrorSample string
	Measured    time.Duration
	Hist        *hdrhistogram.Histogram
}

// shard is the state the clients of one connection share: a histogram
// and counters behind one lock (recording is nanoseconds beside a
// request's round trip, and ten clients share a shard in etcd's shape).
type shard struct {
	mu     sync.Mutex
	hist   *hdrhistogram.Histogram
	ok     int64
	errs   int64
	sample string
}

// keyspace makes the fixed-size keys and the value of a benchmark.
type keyspace struct {
	keySize, n int
	value      string
}

func newKeyspace(keySize, valueSize, n int, seed uint64) keyspace {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	v := make([]byte, valueSize)
	for i := range v {
		v[i] = byte('a' + rng.IntN(26))
	}
	return keyspace{keySize: keySize, n: n, value: string(v)}
}

// key is key i as keySize bytes: i big-endian in the last (up to) 8 bytes.
func (k keyspace) key(i int) string {
	b := make([]byte, k.keySize)
	var x [8]byte
	binary.BigEndian.PutUint64(x[:], uint64(i))
	if k.keySize >= 8 {
		copy(b[k.keySize-8:], x[:])
	} else {
		copy(b, x[8-k.keySize:])
	}
	return string(b)
}

// dialConns opens n clients, client i connected to endpoint i mod
// len(endpoints) only, as etcd's benchmark tool does: n gRPC connections
// in all, spread evenly over the members; over TLS when the cluster is
// (cluster.ClientTLS).
func dialConns(ctx context.Context, cl cluster.Cluster, n int) ([]*clientv3.Client, error) {
	endpoints, tlsCfg := cl.Endpoints(), cluster.ClientTLS(cl)
	conns := make([]*clientv3.Client, 0, n)
	for i := 0; i < n; i++ {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{endpoints[i%len(endpoints)]},
			TLS:         tlsCfg,
			DialTimeout: 10 * time.Second,
			Logger:      zap.NewNop(),
			Context:     ctx,
		})
		if err != nil {
			closeConns(conns)
			return nil, fmt.Errorf("dial %s (connection %d of %d): %w", endpoints[i%len(endpoints)], i+1, n, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeConns(cs []*clientv3.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// preload puts every key of ks once, with up to 64 requests in flight.
func preload(ctx context.Context, conns []*clientv3.Client, ks keyspace, timeout time.Duration) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, min(64, ks.n))
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := conns[w%len(conns)]
			for {
				i := int(next.Add(1) - 1)
				if i >= ks.n || ctx.Err() != nil {
					return
				}
				octx, cancel := context.WithTimeout(ctx, timeout)
				_, err := cli.Put(octx, ks.key(i), ks.value)
				cancel()
				if err != nil {
					errs[w] = fmt.Errorf("preload key %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// runLoad runs spec's clients over conns for Warmup+Duration and returns
// what the requests invoked in the measured time did. Every client has one
// request in flight; requests are bounded by OpTimeout, so runLoad returns
// within Warmup+Duration+OpTimeout (or soon after ctx ends).
func runLoad(ctx context.Context, conns []*clientv3.Client, ks keyspace, spec loadSpec) loadOutcome {
	shards := make([]*shard, len(conns))
	for i := range shards {
		shards[i] = &shard{hist: hdrhistogram.New(histMin, histMax, histSigFigs)}
	}
	start := time.Now()
	measureFrom := start.Add(spec.Warmup)
	end := measureFrom.Add(spec.Duration)
	timer := time.AfterFunc(spec.Warmup, func() {
		if spec.OnMeasure != nil {
			spec.OnMeasure()
		}
	})
	defer timer.Stop()
	var wg sync.WaitGroup
	for c := 0; c < spec.Clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh := shards[c%len(shards)]
			cli := conns[c%len(conns)]
			rng := rand.New(rand.NewPCG(spec.Seed, uint64(c)))
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := doOp(ctx, cli, ks, spec, rng)
				lat := time.Since(t0)
				if t0.Before(measureFrom) {
					continue
				}
				us := min(max(lat.Microseconds(), histMin), histMax)
				sh.mu.Lock()
				if err != nil {
					sh.errs++
					if sh.sample == "" {
						sh.sample = err.Error()
					}
				} else {
					sh.ok++
					sh.hist.RecordValue(us)
				}
				sh.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	out := loadOutcome{Hist: hdrhistogram.New(histMin, histMax, histSigFigs), Measured: spec.Duration}
	for _, sh := range shards {
		out.OK += sh.ok
		out.Errors += sh.errs
		if out.ErrorSample == "" {
			out.ErrorSample = sh.sample
		}
		out.Hist.Merge(sh.hist)
	}
	if ctx.Err() != nil {
		// Cut short: the measured time is what elapsed of it.
		out.Measured = max(0, min(time.Since(measureFrom), spec.Duration))
	}
	return out
}

func doOp(ctx context.Context, cli *clientv3.Client, ks keyspace, spec loadSpec, rng *rand.Rand) error {
	ctx, cancel := context.WithTimeout(ctx, spec.OpTimeout)
	defer cancel()
	k := ks.key(rng.IntN(ks.n))
	w := spec.Workload
	if w == WorkloadMixed {
		w = WorkloadPut
		if rng.IntN(2) == 0 {
			w = WorkloadRangeLinearizable
		}
	}
	var err error
	switch w {
	case WorkloadPut:
		_, err = cli.Put(ctx, k, ks.value)
	case WorkloadRangeLinearizable:
		_, err = cli.Get(ctx, k)
	case WorkloadRangeSerializable:
		_, err = cli.Get(ctx, k, clientv3.WithSerializable())
	case WorkloadTxn:
		_, err = cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(k), ">", -1)).
			Then(clientv3.OpPut(k, ks.value)).
			Else(clientv3.OpGet(k)).
			Commit()
	default:
		err = fmt.Errorf("unknown workload %q", spec.Workload)
	}
	return err
}

// latencyOf summarizes a microsecond histogram (render.Percentiles).
func latencyOf(h *hdrhistogram.Histogram) Latency {
	l := Latency{Count: h.TotalCount()}
	if l.Count == 0 {
		return l
	}
	l.Mean = time.Duration(h.Mean() * float64(time.Microsecond))
	ps := []float64{50, 90, 99, 99.9, 100}
	for _, q := range CDFQuantiles {
		ps = append(ps, q*100)
	}
	vs := render.Percentiles(h, time.Microsecond, ps...)
	l.P50, l.P90, l.P99, l.P999, l.Max = vs[0], vs[1], vs[2], vs[3], vs[4]
	for i, q := range CDFQuantiles {
		l.CDF = append(l.CDF, CDFPoint{Q: q, Latency: vs[5+i]})
	}
	return l
}
