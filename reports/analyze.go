package reports

import (
	"cmp"
	"slices"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/reports/render"
)

// Options configures Analyze.
type Options struct {
	// Bucket is the width of the timeline's time buckets. 0: BucketSize
	// of the run's duration.
	Bucket time.Duration
}

// Summary is what Analyze computes from a history: counts, latency
// quantiles, throughput and availability over time, and how long writes
// were unavailable after each fault. It is saved in results.json; all
// durations are nanoseconds in JSON.
//
// Final reads (history.FFinalRead), issued after the workload stopped, are
// counted in Ops but left out of Duration, Throughput and Timeline.
type Summary struct {
	// Error says why the history could not be analyzed (a malformed
	// history); the other fields are then empty except Bucket.
	Error string `json:"error,omitempty"`
	// Duration is the time of the last event that is not part of a final
	// read: the length of the workload and fault phase.
	Duration time.Duration `json:"duration_ns"`
	// Bucket is the width of the Timeline's buckets; always > 0.
	Bucket time.Duration `json:"bucket_ns"`
	// Total, OK, Fail and Info count client operations by outcome (Info
	// includes operations that never completed).
	Total int `json:"total"`
	OK    int `json:"ok"`
	Fail  int `json:"fail"`
	Info  int `json:"info"`
	// Throughput is ok operations (final reads excluded) per second of
	// Duration; 0 when Duration is 0.
	Throughput float64 `json:"ok_per_s"`
	// Ops holds one entry per operation name (F) and outcome that
	// occurred, sorted by F, then ok, fail, info.
	Ops []OpStats `json:"ops"`
	// Timeline covers [0, Duration) in buckets of Bucket, by completion
	// time; operations that never completed are not in it.
	Timeline []Bucket `json:"timeline"`
	// Faults holds one window per nemesis fault, in start order.
	Faults []FaultWindow `json:"faults"`
	// FaultStats aggregates Faults per fault name, sorted by name: the
	// "longest unavailability after a leader kill" figure.
	FaultStats []FaultStats `json:"fault_stats"`
}

// OpStats describes the operations with one name and one outcome.
type OpStats struct {
	F       string       `json:"f"`
	Outcome history.Type `json:"outcome"`
	Count   int          `json:"count"`
	// Latency holds the quantiles of completion minus invocation time;
	// nil for info operations, whose completion time is not a latency
	// (it is a timeout, or the history ended).
	Latency *Quantiles `json:"latency,omitempty"`
}

// Quantiles are latency quantiles from an HDR histogram of microsecond
// resolution and 3 significant digits: each quantile is exact to within
// 0.1% (below 2.048ms, to the microsecond), reported as the highest value
// equivalent to the recorded ones, clamped to [min, max] of the recorded
// latencies. Max is exact. Quantile q is the value of the ⌊q·n+0.5⌋-th
// smallest latency (at least the 1st, at most the n-th).
type Quantiles struct {
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

// Bucket is one time bucket of the timeline: the operations completing in
// [Start, Start+Summary.Bucket); the last bucket also holds completions at
// exactly Duration.
type Bucket struct {
	Start time.Duration `json:"start_ns"`
	OK    int           `json:"ok"`
	Fail  int           `json:"fail"`
	Info  int           `json:"info"`
	// OKPerSecond is OK divided by the bucket width in seconds.
	OKPerSecond float64 `json:"ok_per_s"`
	// Availability is OK / (OK + Fail + Info); nil when no operation
	// completed in the bucket.
	Availability *float64 `json:"availability,omitempty"`
	// Latency holds quantiles of the ok operations completing in the
	// bucket; nil when there are none.
	Latency *BucketLatency `json:"latency,omitempty"`
}

// BucketLatency are the latency quantiles of one bucket, computed as in
// Quantiles.
type BucketLatency struct {
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
}

// FaultWindow is one fault and how writes fared after it started. A write
// is an ok write, cas or add.
type FaultWindow struct {
	// Fault is the fault's name (e.g. "kill-leader"); Targets describes
	// what it hit.
	Fault   string `json:"fault"`
	Targets string `json:"targets,omitempty"`
	// Start is when the fault was injected; End when it was healed, or
	// Summary.Duration when Open.
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	// Open means the history ended with the fault still active.
	Open bool `json:"open,omitempty"`
	// HealFailed means healing the fault had an unknown outcome (info).
	HealFailed bool `json:"heal_failed,omitempty"`
	// Recovered means some write invoked at or after Start completed ok.
	Recovered bool `json:"recovered"`
	// Unavailable is the time from Start until the first ok completion of
	// a write invoked at or after Start; when not Recovered, the time from
	// Start to Summary.Duration.
	Unavailable time.Duration `json:"unavailable_ns"`
	// LongestGap is the longest interval within [Start, End] containing no
	// ok write completion (of any write, whenever invoked).
	LongestGap time.Duration `json:"longest_gap_ns"`
}

// FaultStats aggregates the windows of one fault name.
type FaultStats struct {
	Fault string `json:"fault"`
	Count int    `json:"count"`
	// MaxUnavailable and MaxGap are the largest Unavailable and
	// LongestGap over the fault's windows.
	MaxUnavailable time.Duration `json:"max_unavailable_ns"`
	MaxGap         time.Duration `json:"max_gap_ns"`
	// Unrecovered counts windows after which no write completed ok.
	Unrecovered int `json:"unrecovered,omitempty"`
}

// Worst returns the fault window with the longest Unavailable (the
// earliest among equals), and false when there are no faults.
func (s Summary) Worst() (FaultWindow, bool) {
	if len(s.Faults) == 0 {
		return FaultWindow{}, false
	}
	w := s.Faults[0]
	for _, f := range s.Faults[1:] {
		if f.Unavailable > w.Unavailable {
			w = f
		}
	}
	return w, true
}

// maxBuckets bounds the timeline of long runs.
const maxBuckets = 600

// BucketSize is the timeline bucket width for a run of duration d: 1s for
// runs from 10s to 10m; for shorter runs the largest of 10ms, 20ms, 50ms,
// 100ms, 200ms or 500ms giving at least 10 buckets (10ms at the least); for
// longer runs the smallest of 2s, 5s, 10s, 15s, 30s, 1m, ... 1h giving at
// most 600 buckets (beyond, d/600 rounded up to a minute).
func BucketSize(d time.Duration) time.Duration {
	niceSteps := [...]time.Duration{
		10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour,
	}
	switch {
	case d <= 0:
		return time.Second
	case d < 10*time.Second:
		b := niceSteps[0]
		for _, s := range niceSteps {
			if s > d/10 {
				break
			}
			b = s
		}
		return b
	case d <= 10*time.Minute:
		return time.Second
	}
	for _, s := range niceSteps {
		if s >= time.Second && (d+s-1)/s <= maxBuckets {
			return s
		}
	}
	per := (d + maxBuckets - 1) / maxBuckets
	return (per + time.Minute - 1) / time.Minute * time.Minute
}

// isWrite reports whether f names an operation that changes replicated
// state through a quorum: the register's, set's and watch workload's
// writes, a list-append transaction (some only read, but most append, and
// every one needs a quorum unless reads are serializable), the lease
// workload's grants, leased puts and revokes, and the lock workload's
// acquisitions, releases and increments. A keep-alive is not one (the
// leader answers it without the log).
func isWrite(f string) bool {
	switch f {
	case history.FWrite, history.FCAS, history.FAdd, history.FTxn, history.FDelete, history.FWriteTxn,
		history.FGrant, history.FLeasePut, history.FRevoke, history.FAcquire, history.FRelease, history.FIncr:
		return true
	}
	return false
}

// untimed reports whether f names an operation left out of the timeline
// and the latency plot: final reads and watches (a watch session lasts as
// long as the watcher is not cut; its duration is no latency).
func untimed(f string) bool {
	return f == history.FFinalRead || f == history.FFinalWatch || f == history.FWatch
}

// Analyze summarizes a history. It is a pure function of its arguments and
// does not modify events. A malformed history (see history.Operations)
// yields a Summary whose Error says why.
func Analyze(events []history.Event, opts Options) Summary {
	ops, faults, err := history.Operations(events)
	if err != nil {
		b := opts.Bucket
		if b <= 0 {
			b = BucketSize(0)
		}
		return Summary{Error: err.Error(), Bucket: b, Ops: []OpStats{}, Timeline: []Bucket{}, Faults: []FaultWindow{}, FaultStats: []FaultStats{}}
	}
	s := Summary{Duration: workloadDuration(events, ops)}
	s.Bucket = opts.Bucket
	if s.Bucket <= 0 {
		s.Bucket = BucketSize(s.Duration)
	}
	s.Ops = opStats(ops)
	for _, o := range s.Ops {
		s.Total += o.Count
		switch o.Outcome {
		case history.OK:
			s.OK += o.Count
		case history.Fail:
			s.Fail += o.Count
		default:
			s.Info += o.Count
		}
	}
	s.Timeline = timeline(ops, s.Duration, s.Bucket)
	okWorkload := 0
	for _, b := range s.Timeline {
		okWorkload += b.OK
	}
	if s.Duration > 0 {
		s.Throughput = float64(okWorkload) / s.Duration.Seconds()
	}
	s.Faults = faultWindows(ops, faults, s.Duration)
	s.FaultStats = faultStats(s.Faults)
	return s
}

// workloadDuration is the time of the last event outside final reads.
func workloadDuration(events []history.Event, ops []history.Op) time.Duration {
	final := make(map[int64]bool)
	for _, op := range ops {
		if op.F() == history.FFinalRead || op.F() == history.FFinalWatch {
			final[op.Invoke.Index] = true
			if op.Complete != nil {
				final[op.Complete.Index] = true
			}
		}
	}
	var d int64
	for _, e := range events {
		if !final[e.Index] && e.Time > d {
			d = e.Time
		}
	}
	return time.Duration(d)
}

// latencyOf returns an operation's latency, and false for an info or
// never-completed operation.
func latencyOf(op history.Op) (time.Duration, bool) {
	if op.Complete == nil || op.Complete.Type == history.Info {
		return 0, false
	}
	return time.Duration(op.Complete.Time - op.Invoke.Time), true
}

// outcomeRank orders outcomes ok, fail, info.
func outcomeRank(t history.Type) int {
	switch t {
	case history.OK:
		return 0
	case history.Fail:
		return 1
	default:
		return 2
	}
}

func opStats(ops []history.Op) []OpStats {
	type key struct {
		f string
		t history.Type
	}
	lat := make(map[key]*latencyHist)
	counts := make(map[key]int)
	for _, op := range ops {
		k := key{op.F(), op.Type()}
		counts[k]++
		if d, ok := latencyOf(op); ok {
			h := lat[k]
			if h == nil {
				h = newLatencyHist()
				lat[k] = h
			}
			h.record(d)
		}
	}
	out := make([]OpStats, 0, len(counts))
	for k, n := range counts {
		st := OpStats{F: k.f, Outcome: k.t, Count: n}
		if h := lat[k]; h != nil {
			q := h.percentiles(50, 90, 99, 99.9)
			st.Latency = &Quantiles{P50: q[0], P90: q[1], P99: q[2], P999: q[3], Max: h.max}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b OpStats) int {
		return cmp.Or(cmp.Compare(a.F, b.F), cmp.Compare(outcomeRank(a.Outcome), outcomeRank(b.Outcome)))
	})
	return out
}

func timeline(ops []history.Op, d, width time.Duration) []Bucket {
	n := int((d + width - 1) / width)
	if n == 0 {
		if d == 0 && len(ops) == 0 {
			return []Bucket{}
		}
		n = 1
	}
	buckets := make([]Bucket, n)
	okLat := make([][]time.Duration, n)
	for i := range buckets {
		buckets[i].Start = time.Duration(i) * width
	}
	for _, op := range ops {
		if op.Complete == nil || untimed(op.F()) {
			continue
		}
		i := min(int(time.Duration(op.Complete.Time)/width), n-1)
		switch op.Complete.Type {
		case history.OK:
			buckets[i].OK++
			okLat[i] = append(okLat[i], time.Duration(op.Complete.Time-op.Invoke.Time))
		case history.Fail:
			buckets[i].Fail++
		default:
			buckets[i].Info++
		}
	}
	h := newLatencyHist()
	for i := range buckets {
		b := &buckets[i]
		b.OKPerSecond = float64(b.OK) / width.Seconds()
		if all := b.OK + b.Fail + b.Info; all > 0 {
			a := float64(b.OK) / float64(all)
			b.Availability = &a
		}
		if len(okLat[i]) == 0 {
			continue
		}
		h.reset()
		for _, l := range okLat[i] {
			h.record(l)
		}
		q := h.percentiles(50, 95, 99)
		b.Latency = &BucketLatency{P50: q[0], P95: q[1], P99: q[2]}
	}
	return buckets
}

// okWrite is an ok write's invocation and completion times.
type okWrite struct{ invoke, complete time.Duration }

func faultWindows(ops []history.Op, faults []history.Fault, d time.Duration) []FaultWindow {
	var writes []okWrite
	for _, op := range ops {
		if isWrite(op.F()) && op.Type() == history.OK {
			writes = append(writes, okWrite{time.Duration(op.Invoke.Time), time.Duration(op.Complete.Time)})
		}
	}
	// Completions are in history order, hence sorted by time; sort
	// anyway so the contract does not depend on ops' order.
	slices.SortStableFunc(writes, func(a, b okWrite) int { return cmp.Compare(a.complete, b.complete) })

	out := make([]FaultWindow, 0, len(faults))
	for _, f := range faults {
		w := FaultWindow{Fault: f.Start.F, Start: time.Duration(f.Start.Time), End: d}
		if f.Start.Value != nil {
			w.Targets = *f.Start.Value
		}
		if f.End == nil {
			w.Open = true
		} else {
			w.End = time.Duration(f.End.Time)
			w.HealFailed = f.End.Type == history.Info
		}
		w.End = max(w.End, w.Start)

		first := sort.Search(len(writes), func(i int) bool { return writes[i].complete >= w.Start })
		w.Unavailable = max(d-w.Start, 0)
		for _, wr := range writes[first:] {
			if wr.invoke >= w.Start {
				w.Recovered = true
				w.Unavailable = wr.complete - w.Start
				break
			}
		}
		prev := w.Start
		for _, wr := range writes[first:] {
			if wr.complete > w.End {
				break
			}
			w.LongestGap = max(w.LongestGap, wr.complete-prev)
			prev = wr.complete
		}
		w.LongestGap = max(w.LongestGap, w.End-prev)
		out = append(out, w)
	}
	return out
}

func faultStats(windows []FaultWindow) []FaultStats {
	by := make(map[string]*FaultStats)
	var names []string
	for _, w := range windows {
		st := by[w.Fault]
		if st == nil {
			st = &FaultStats{Fault: w.Fault}
			by[w.Fault] = st
			names = append(names, w.Fault)
		}
		st.Count++
		st.MaxUnavailable = max(st.MaxUnavailable, w.Unavailable)
		st.MaxGap = max(st.MaxGap, w.LongestGap)
		if !w.Recovered {
			st.Unrecovered++
		}
	}
	slices.Sort(names)
	out := make([]FaultStats, 0, len(names))
	for _, n := range names {
		out = append(out, *by[n])
	}
	return out
}

// Histogram range: latencies are recorded in microseconds, from 1µs to one
// hour (longer ones are recorded as one hour), to 3 significant digits.
const (
	histMaxMicros = int64(time.Hour / time.Microsecond)
	histSigFigs   = 3
)

// latencyHist is an HDR histogram of latencies with their exact min and
// max.
type latencyHist struct {
	h        *hdrhistogram.Histogram
	min, max time.Duration
}

func newLatencyHist() *latencyHist {
	return &latencyHist{h: hdrhistogram.New(1, histMaxMicros, histSigFigs)}
}

func (l *latencyHist) reset() {
	l.h.Reset()
	l.min, l.max = 0, 0
}

func (l *latencyHist) record(d time.Duration) {
	d = max(d, 0)
	if l.h.TotalCount() == 0 || d < l.min {
		l.min = d
	}
	l.max = max(l.max, d)
	us := min(int64((d+time.Microsecond/2)/time.Microsecond), histMaxMicros)
	// In range by construction: RecordValue cannot fail.
	_ = l.h.RecordValue(us)
}

// percentiles returns the percentiles ps (0 < p < 100) as documented on
// Quantiles: read off the histogram (render.Percentiles), clamped to the
// exact min and max.
func (l *latencyHist) percentiles(ps ...float64) []time.Duration {
	vs := render.Percentiles(l.h, time.Microsecond, ps...)
	for i, v := range vs {
		vs[i] = min(max(v, l.min), l.max)
	}
	return vs
}
