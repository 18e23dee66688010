package bench

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Summary is what Summarize derives from a run's raw cells and trials.
type Summary struct {
	Load         []LoadSummary  `json:"load"`
	Availability []FaultSummary `json:"availability"`
	Quorum       []QuorumRow    `json:"quorum"`
	Ratios       []Ratio        `json:"ratios"`
}

// LoadSummary is one (server, workload, size, clients) over its rounds:
// the median of each figure over the rounds (errors are summed, peak RSS is
// the maximum).
type LoadSummary struct {
	Server     string        `json:"server"`
	Workload   string        `json:"workload"`
	Size       int           `json:"size"`
	Clients    int           `json:"clients"`
	Rounds     int           `json:"rounds"`
	Throughput float64       `json:"throughput"`
	P50        time.Duration `json:"p50_ns"`
	P90        time.Duration `json:"p90_ns"`
	P99        time.Duration `json:"p99_ns"`
	P999       time.Duration `json:"p999_ns"`
	Max        time.Duration `json:"max_ns"`
	Errors     int64         `json:"errors"`
	// CPU is the members' total CPU time per second of measured time.
	CPU float64 `json:"cpu_seconds_per_second"`
	// PeakRSS is the largest member peak RSS seen, in bytes.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// LoadGenCPU is the benchmark process's CPU time per measured second.
	LoadGenCPU float64 `json:"loadgen_cpu_seconds_per_second"`
	// NoiseCPU is the rest of the machine's CPU time (other processes'
	// and the hypervisor's steal, LoadCell.OtherCPU+StealCPU) per
	// measured second, the median over rounds.
	NoiseCPU float64 `json:"noise_cpu_seconds_per_second,omitempty"`
	// CDF is the latency distribution of the round with the median
	// throughput.
	CDF []CDFPoint `json:"cdf"`
	// Watchers, IdleWatchers and Leases are the cells' (LoadCell).
	Watchers     int `json:"watchers,omitempty"`
	IdleWatchers int `json:"idle_watchers,omitempty"`
	Leases       int `json:"leases,omitempty"`
	// Watch cells: the put rate offered, the events offered per second,
	// and the delivery checks summed over rounds (all 0 when every watcher
	// saw every acknowledged put exactly once).
	PutRate    float64 `json:"put_rate,omitempty"`
	EventRate  float64 `json:"event_rate,omitempty"`
	Missing    int64   `json:"missing,omitempty"`
	Duplicates int64   `json:"duplicates,omitempty"`
	// BeforeAckFraction is the median over rounds of the share of events
	// that arrived before their put's acknowledgement (latency 0);
	// SendP50 and SendP99 are the medians of the put-sent-to-event
	// latency quantiles.
	BeforeAckFraction float64       `json:"before_ack_fraction,omitempty"`
	SendP50           time.Duration `json:"send_p50_ns,omitempty"`
	SendP99           time.Duration `json:"send_p99_ns,omitempty"`
	// Memory cells: the median over rounds of the members' summed RSS
	// delta and of the largest member's, in bytes; Objects created.
	Objects        int   `json:"objects,omitempty"`
	RSSDelta       int64 `json:"rss_delta_bytes,omitempty"`
	MaxMemberDelta int64 `json:"max_member_rss_delta_bytes,omitempty"`
	AnonDelta      int64 `json:"rss_anon_delta_bytes,omitempty"`
}

// variant is what besides (workload, clients) tells cells apart.
type variant struct{ watchers, idle, leases int }

func variantOf(c LoadCell) variant { return variant{c.Watchers, c.IdleWatchers, c.Leases} }

// variantLabel is " 100 watchers", " 10000 idle watchers" or "".
func variantLabel(watchers, idle, leases int) string {
	var s string
	if watchers > 0 {
		s += fmt.Sprintf(" %d watchers", watchers)
	}
	if idle > 0 {
		s += fmt.Sprintf(" %d idle watchers", idle)
	}
	if leases > 0 {
		s += fmt.Sprintf(" %d leases", leases)
	}
	return s
}

// FaultSummary is one (server, size, fault) over all its trials.
type FaultSummary struct {
	Server string `json:"server"`
	Size   int    `json:"size"`
	Fault  string `json:"fault"`
	Lost   int    `json:"lost"`
	Trials int    `json:"trials"`
	// WritableTrials counts trials with an acknowledged write within the
	// bounded wait; Writable is true when every trial was.
	WritableTrials int  `json:"writable_trials"`
	Writable       bool `json:"writable"`
	// Median and Max are over the writable trials' windows (0 when none).
	Median            time.Duration `json:"median_ns"`
	Max               time.Duration `json:"max_ns"`
	PredictedWritable bool          `json:"predicted_writable"`
	// NotRecovered counts trials after which the healed cluster did not
	// become healthy and writable again within RecoveryTimeout.
	NotRecovered int `json:"not_recovered"`
}

// Prediction is the etcd docs' quorum arithmetic for a cluster of Members.
type Prediction struct {
	Members int `json:"members"`
	// Quorum is Members/2+1.
	Quorum int `json:"quorum"`
	// Tolerated is the number of members that may fail: Members-Quorum.
	Tolerated int `json:"tolerated"`
	// Writable is whether the cluster stays writable with Lost members
	// gone (killed, or each cut off from the rest, or on the other side of
	// a split): Members-Lost >= Quorum.
	Lost     int  `json:"lost"`
	Writable bool `json:"writable"`
}

// Predict is the quorum prediction for members with lost of them gone.
func Predict(members, lost int) Prediction {
	q := members/2 + 1
	return Prediction{Members: members, Quorum: q, Tolerated: members - q, Lost: lost, Writable: members-lost >= q}
}

// QuorumRow is the etcd docs' table (members, quorum, failures tolerated)
// for one server and size, measured beside predicted.
type QuorumRow struct {
	Server             string `json:"server"`
	Members            int    `json:"members"`
	PredictedQuorum    int    `json:"predicted_quorum"`
	PredictedTolerated int    `json:"predicted_tolerated"`
	// MeasuredTolerated is the largest number of lost members with which
	// every trial stayed writable (0 when none did); MeasuredQuorum is
	// Members-MeasuredTolerated.
	MeasuredTolerated int `json:"measured_tolerated"`
	MeasuredQuorum    int `json:"measured_quorum"`
	// Exact: a fault losing MeasuredTolerated+1 members was tried and no
	// trial was writable, so the measurement is a bound on both sides.
	Exact bool `json:"exact"`
	// Agrees: measured equals predicted and Exact.
	Agrees   bool   `json:"agrees"`
	Evidence string `json:"evidence"`
}

// Ratio is Server's figure divided by Baseline's, per round (both measured
// in the same round, one after the other), with its spread.
type Ratio struct {
	Baseline string `json:"baseline"`
	Server   string `json:"server"`
	// Kind is "load" (Workload, Clients set), "availability" (Fault set)
	// or "idle-watchers" (one server with idle watchers open over without).
	Kind     string `json:"kind"`
	Workload string `json:"workload,omitempty"`
	Size     int    `json:"size"`
	Clients  int    `json:"clients,omitempty"`
	Fault    string `json:"fault,omitempty"`
	// Metric is throughput, p50, p99 (load) or unavailability (median
	// window of the round's trials).
	Metric string `json:"metric"`
	// Watchers, IdleWatchers, Leases: the cells' variant (LoadCell). In an
	// "idle-watchers" ratio Server = Baseline and the ratio is the cell
	// with IdleWatchers open over the same cell without (same round).
	Watchers     int       `json:"watchers,omitempty"`
	IdleWatchers int       `json:"idle_watchers,omitempty"`
	Leases       int       `json:"leases,omitempty"`
	PerRound     []float64 `json:"per_round"`
	Median       float64   `json:"median"`
	Min          float64   `json:"min"`
	Max          float64   `json:"max"`
}

// Spread returns the median, minimum and maximum of xs (NaN for none); the
// median of an even count is the mean of the middle two. xs is not changed.
func Spread(xs []float64) (median, lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		median = s[n/2]
	} else {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1]
}

func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	m, _, _ := Spread(xs)
	if math.IsNaN(m) {
		return 0
	}
	return time.Duration(m)
}

type loadKey struct {
	server, workload string
	size, clients    int
	v                variant
}

type faultKey struct {
	server string
	size   int
	fault  string
}

// Summarize derives the Summary from the raw cells and trials; servers
// gives the report order and the baseline (the first). It is pure.
func Summarize(servers []Server, cells []LoadCell, trials []FaultTrial) Summary {
	var s Summary
	order := func(label string) int {
		return slices.IndexFunc(servers, func(x Server) bool { return x.Label == label })
	}
	byLoad := map[loadKey][]LoadCell{}
	var loadKeys []loadKey
	for _, c := range cells {
		k := loadKey{c.Server, c.Workload, c.Size, c.Clients, variantOf(c)}
		if _, ok := byLoad[k]; !ok {
			loadKeys = append(loadKeys, k)
		}
		byLoad[k] = append(byLoad[k], c)
	}
	slices.SortStableFunc(loadKeys, func(a, b loadKey) int {
		return cmp.Or(cmp.Compare(a.size, b.size), cmp.Compare(a.workload, b.workload),
			cmp.Compare(a.clients, b.clients), cmp.Compare(a.v.watchers, b.v.watchers), cmp.Compare(a.v.idle, b.v.idle),
			cmp.Compare(a.v.leases, b.v.leases), cmp.Compare(order(a.server), order(b.server)))
	})
	for _, k := range loadKeys {
		s.Load = append(s.Load, summarizeLoad(k, byLoad[k]))
	}

	byFault := map[faultKey][]FaultTrial{}
	var faultKeys []faultKey
	for _, t := range trials {
		k := faultKey{t.Server, t.Size, t.Fault}
		if _, ok := byFault[k]; !ok {
			faultKeys = append(faultKeys, k)
		}
		byFault[k] = append(byFault[k], t)
	}
	slices.SortStableFunc(faultKeys, func(a, b faultKey) int {
		return cmp.Or(cmp.Compare(a.size, b.size), cmp.Compare(faultOrder(a.fault), faultOrder(b.fault)),
			cmp.Compare(order(a.server), order(b.server)))
	})
	for _, k := range faultKeys {
		s.Availability = append(s.Availability, summarizeFault(k, byFault[k]))
	}
	s.Quorum = QuorumTable(s.Availability)
	if len(servers) > 1 {
		s.Ratios = ratios(servers, cells, trials)
	}
	s.Ratios = append(s.Ratios, idleWatcherRatios(cells)...)
	return s
}

func summarizeLoad(k loadKey, cs []LoadCell) LoadSummary {
	ls := LoadSummary{Server: k.server, Workload: k.workload, Size: k.size, Clients: k.clients, Rounds: len(cs),
		Watchers: k.v.watchers, IdleWatchers: k.v.idle, Leases: k.v.leases}
	var tp, cpu, gen, rss, rssMax, anon []float64
	var early []float64
	var s50, s99 []time.Duration
	for _, c := range cs {
		if w := c.Watch; w != nil {
			ls.PutRate, ls.EventRate = w.PutRate, w.EventRate
			ls.Missing += w.Missing
			ls.Duplicates += w.Duplicates
			if c.OK > 0 {
				early = append(early, float64(w.BeforeAck)/float64(c.OK))
			}
			s50, s99 = append(s50, w.FromSend.P50), append(s99, w.FromSend.P99)
		}
		if m := c.Memory; m != nil {
			ls.Objects = m.Objects
			rss = append(rss, float64(m.RSSDelta))
			rssMax = append(rssMax, float64(m.MaxMemberDelta))
			anon = append(anon, float64(m.AnonDelta))
		}
	}
	if len(early) > 0 {
		ls.BeforeAckFraction, _, _ = Spread(early)
	}
	ls.SendP50, ls.SendP99 = medianDur(s50), medianDur(s99)
	if len(rss) > 0 {
		a, _, _ := Spread(rss)
		b, _, _ := Spread(rssMax)
		c, _, _ := Spread(anon)
		ls.RSSDelta, ls.MaxMemberDelta, ls.AnonDelta = int64(a), int64(b), int64(c)
	}
	var p50, p90, p99, p999, mx []time.Duration
	var noise []float64
	for _, c := range cs {
		tp = append(tp, c.Throughput)
		p50 = append(p50, c.Latency.P50)
		p90 = append(p90, c.Latency.P90)
		p99 = append(p99, c.Latency.P99)
		p999 = append(p999, c.Latency.P999)
		mx = append(mx, c.Latency.Max)
		ls.Errors += c.Errors
		var total time.Duration
		for _, m := range c.Members {
			total += m.CPU
			ls.PeakRSS = max(ls.PeakRSS, m.PeakRSS)
		}
		if c.Measured > 0 {
			cpu = append(cpu, total.Seconds()/c.Measured.Seconds())
			gen = append(gen, c.LoadGenCPU.Seconds()/c.Measured.Seconds())
			if c.RestMeasured {
				noise = append(noise, (c.OtherCPU+c.StealCPU).Seconds()/c.Measured.Seconds())
			}
		}
	}
	ls.Throughput, _, _ = Spread(tp)
	ls.P50, ls.P90, ls.P99, ls.P999, ls.Max = medianDur(p50), medianDur(p90), medianDur(p99), medianDur(p999), medianDur(mx)
	if len(cpu) > 0 {
		ls.CPU, _, _ = Spread(cpu)
		ls.LoadGenCPU, _, _ = Spread(gen)
	}
	if len(noise) > 0 {
		ls.NoiseCPU, _, _ = Spread(noise)
	}
	// The CDF of the round closest to the median throughput.
	best := 0
	for i, c := range cs {
		if math.Abs(c.Throughput-ls.Throughput) < math.Abs(cs[best].Throughput-ls.Throughput) {
			best = i
		}
	}
	ls.CDF = cs[best].Latency.CDF
	return ls
}

func summarizeFault(k faultKey, ts []FaultTrial) FaultSummary {
	fs := FaultSummary{Server: k.server, Size: k.size, Fault: k.fault, Trials: len(ts)}
	var ws []time.Duration
	for _, t := range ts {
		fs.Lost = t.Lost
		if !t.Recovered {
			fs.NotRecovered++
		}
		if t.Writable {
			fs.WritableTrials++
			ws = append(ws, t.Window)
			fs.Max = max(fs.Max, t.Window)
		}
	}
	fs.Writable = fs.WritableTrials == fs.Trials
	fs.Median = medianDur(ws)
	fs.PredictedWritable = Predict(k.size, fs.Lost).Writable
	return fs
}

// QuorumTable measures the quorum table from fault summaries: for each
// (server, size) in the order given, the largest number of lost members
// with which the cluster stayed writable in every trial.
func QuorumTable(fs []FaultSummary) []QuorumRow {
	type key struct {
		server string
		size   int
	}
	var keys []key
	group := map[key][]FaultSummary{}
	for _, f := range fs {
		k := key{f.Server, f.Size}
		if _, ok := group[k]; !ok {
			keys = append(keys, k)
		}
		group[k] = append(group[k], f)
	}
	var rows []QuorumRow
	for _, k := range keys {
		p := Predict(k.size, 0)
		r := QuorumRow{Server: k.server, Members: k.size, PredictedQuorum: p.Quorum, PredictedTolerated: p.Tolerated}
		var ev []string
		for _, f := range group[k] {
			if f.Writable {
				r.MeasuredTolerated = max(r.MeasuredTolerated, f.Lost)
			}
			verdict := "writable"
			switch {
			case f.WritableTrials == 0:
				verdict = "not writable"
			case !f.Writable:
				verdict = fmt.Sprintf("writable in %d/%d", f.WritableTrials, f.Trials)
			}
			ev = append(ev, fmt.Sprintf("%s (-%d): %s", f.Fault, f.Lost, verdict))
		}
		for _, f := range group[k] {
			if f.Lost == r.MeasuredTolerated+1 && f.WritableTrials == 0 {
				r.Exact = true
			}
		}
		r.MeasuredQuorum = k.size - r.MeasuredTolerated
		r.Agrees = r.Exact && r.MeasuredTolerated == r.PredictedTolerated
		r.Evidence = strings.Join(ev, "; ")
		rows = append(rows, r)
	}
	return rows
}

// ratios computes every non-baseline server's per-round ratios to the
// baseline (servers[0]).
func ratios(servers []Server, cells []LoadCell, trials []FaultTrial) []Ratio {
	base := servers[0].Label
	type cellKey struct {
		server, workload string
		size, clients    int
		v                variant
		round            int
	}
	byCell := map[cellKey]LoadCell{}
	for _, c := range cells {
		byCell[cellKey{c.Server, c.Workload, c.Size, c.Clients, variantOf(c), c.Round}] = c
	}
	metrics := []struct {
		name string
		of   func(LoadCell) float64
	}{
		{"throughput", func(c LoadCell) float64 { return c.Throughput }},
		{"p50", func(c LoadCell) float64 { return float64(c.Latency.P50) }},
		{"p99", func(c LoadCell) float64 { return float64(c.Latency.P99) }},
		{"rss_delta", func(c LoadCell) float64 {
			if c.Memory == nil {
				return 0
			}
			return float64(c.Memory.RSSDelta)
		}},
	}
	var out []Ratio
	seen := map[string]bool{}
	for _, c := range cells {
		if c.Server == base {
			continue
		}
		id := fmt.Sprint(c.Server, c.Workload, c.Size, c.Clients, variantOf(c))
		if seen[id] {
			continue
		}
		seen[id] = true
		for _, m := range metrics {
			r := Ratio{Baseline: base, Server: c.Server, Kind: "load", Workload: c.Workload, Size: c.Size, Clients: c.Clients, Metric: m.name,
				Watchers: c.Watchers, IdleWatchers: c.IdleWatchers, Leases: c.Leases}
			for _, o := range cells {
				if o.Server != c.Server || o.Workload != c.Workload || o.Size != c.Size || o.Clients != c.Clients || variantOf(o) != variantOf(c) {
					continue
				}
				b, ok := byCell[cellKey{base, o.Workload, o.Size, o.Clients, variantOf(o), o.Round}]
				if !ok || m.of(b) == 0 || m.of(o) == 0 || o.OK == 0 || b.OK == 0 {
					continue
				}
				r.PerRound = append(r.PerRound, m.of(o)/m.of(b))
			}
			if len(r.PerRound) > 0 {
				r.Median, r.Min, r.Max = Spread(r.PerRound)
				out = append(out, r)
			}
		}
	}
	// Availability: the median window of each round's writable trials.
	type roundKey struct {
		server string
		size   int
		fault  string
		round  int
	}
	windows := map[roundKey][]time.Duration{}
	var order []roundKey
	for _, t := range trials {
		k := roundKey{t.Server, t.Size, t.Fault, t.Round}
		if _, ok := windows[k]; !ok {
			order = append(order, k)
			windows[k] = nil
		}
		if t.Writable {
			windows[k] = append(windows[k], t.Window)
		}
	}
	byFault := map[string]int{} // index into out
	for _, k := range order {
		if k.server == base {
			continue
		}
		bk := k
		bk.server = base
		bw, ok := windows[bk]
		if !ok || len(bw) == 0 || len(windows[k]) == 0 {
			continue
		}
		id := fmt.Sprint(k.server, k.size, k.fault)
		i, ok := byFault[id]
		if !ok {
			out = append(out, Ratio{Baseline: base, Server: k.server, Kind: "availability", Size: k.size, Fault: k.fault, Metric: "unavailability"})
			i = len(out) - 1
			byFault[id] = i
		}
		if b := medianDur(bw); b > 0 {
			out[i].PerRound = append(out[i].PerRound, float64(medianDur(windows[k]))/float64(b))
		}
	}
	for i := range out {
		out[i].Median, out[i].Min, out[i].Max = Spread(out[i].PerRound)
	}
	return slices.DeleteFunc(out, func(r Ratio) bool { return len(r.PerRound) == 0 })
}

// idleWatcherRatios is, for every cell run with idle watchers open, its
// throughput and p99 over the same server's same cell without them in the
// same round: the cost of holding watchers.
func idleWatcherRatios(cells []LoadCell) []Ratio {
	type key struct {
		server, workload     string
		size, clients, round int
	}
	without := map[key]LoadCell{}
	for _, c := range cells {
		if c.IdleWatchers == 0 && c.Watchers == 0 && c.Leases == 0 && c.OK > 0 {
			without[key{c.Server, c.Workload, c.Size, c.Clients, c.Round}] = c
		}
	}
	var out []Ratio
	index := map[string]int{}
	for _, c := range cells {
		if c.IdleWatchers == 0 || c.OK == 0 {
			continue
		}
		b, ok := without[key{c.Server, c.Workload, c.Size, c.Clients, c.Round}]
		if !ok {
			continue
		}
		for _, m := range []struct {
			name   string
			of, bf float64
		}{
			{"throughput", c.Throughput, b.Throughput},
			{"p99", float64(c.Latency.P99), float64(b.Latency.P99)},
		} {
			if m.bf == 0 {
				continue
			}
			id := fmt.Sprint(c.Server, c.Workload, c.Size, c.Clients, c.IdleWatchers, m.name)
			i, ok := index[id]
			if !ok {
				out = append(out, Ratio{Baseline: c.Server, Server: c.Server, Kind: "idle-watchers", Workload: c.Workload,
					Size: c.Size, Clients: c.Clients, IdleWatchers: c.IdleWatchers, Metric: m.name})
				i = len(out) - 1
				index[id] = i
			}
			out[i].PerRound = append(out[i].PerRound, m.of/m.bf)
		}
	}
	for i := range out {
		out[i].Median, out[i].Min, out[i].Max = Spread(out[i].PerRound)
	}
	return out
}

// NoisyShare is the share of the machine's CPUs above which the rest of
// the machine is said to have disturbed a cell (Noise).
const NoisyShare = 0.10

// noisy reports whether share (of the machine's CPUs) is over NoisyShare.
func noisy(share float64) bool { return share > NoisyShare }

// NoiseSummary is how much of the machine the rest of it took during a
// run's measured cells: shares of the machine's CPUs used by other
// processes and the hypervisor (LoadCell.OtherCPU+StealCPU over the
// measured time).
type NoiseSummary struct {
	// CPUs is the machine's.
	CPUs int
	// Cells is the number of cells measured; 0 means no measurement.
	Cells         int
	Median, Worst float64
	WorstCell     LoadCell
	// Noisy counts the cells over NoisyShare.
	Noisy int
}

// Noise summarizes cells on a machine of cpus CPUs.
func Noise(cells []LoadCell, cpus int) NoiseSummary {
	n := NoiseSummary{CPUs: cpus}
	var shares []float64
	for _, c := range cells {
		if !c.RestMeasured || c.Measured <= 0 || cpus <= 0 {
			continue
		}
		share := (c.OtherCPU + c.StealCPU).Seconds() / (c.Measured.Seconds() * float64(cpus))
		shares = append(shares, share)
		if noisy(share) {
			n.Noisy++
		}
		if len(shares) == 1 || share > n.Worst {
			n.Worst, n.WorstCell = share, c
		}
	}
	n.Cells = len(shares)
	if n.Cells > 0 {
		n.Median, _, _ = Spread(shares)
	}
	return n
}

// NoiseLine says in one line how much the rest of the machine took, with
// a second line of warning when it was over NoisyShare in any cell; empty
// when unmeasured.
func NoiseLine(res Results) string {
	return Noise(res.Load, res.Run.Machine.CPUs).Line()
}

// Line is NoiseLine of the summarized run.
func (n NoiseSummary) Line() string {
	if n.Cells == 0 {
		return ""
	}
	c := n.WorstCell
	line := fmt.Sprintf("rest of the machine (other processes, hypervisor steal): median %.0f%% of the %d CPUs per cell, at most %.0f%% (%s, %s, round %d)",
		100*n.Median, n.CPUs, 100*n.Worst, c.Server, c.Workload, c.Round)
	if n.Noisy > 0 {
		line += fmt.Sprintf("\nwarning: in %d of %d cells the rest of the machine took more than %.0f%% of it; those cells measured the neighbours too: rerun on a quiet machine before trusting their ratios",
			n.Noisy, n.Cells, 100*NoisyShare)
	}
	return line
}
