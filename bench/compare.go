package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Change is one figure of a baseline run beside the same figure of a new
// run.
type Change struct {
	// Key names the cell or fault: "quorumd put 3 members 1000 clients".
	Key string
	// Metric is throughput, p50, p99, unavailability or writable.
	Metric string
	// Base and New are the figures (req/s, or seconds for latencies and
	// windows; 1 or 0 for writable).
	Base, New float64
	// Delta is (New-Base)/Base: the relative change.
	Delta float64
	// Worse: the figure got worse by more than the threshold (throughput
	// down, latency or unavailability up, writable lost). Better: the
	// reverse. Neither: within the threshold.
	Worse, Better bool
	// Noisy: in either run the cell lost more than NoisyShare of the
	// machine to the rest of it (LoadSummary.NoiseCPU), so the change may
	// be the neighbours'.
	Noisy bool
}

// Comparison is Compare's verdict.
type Comparison struct {
	Threshold float64
	Changes   []Change
	// Regressions counts the Changes that are Worse.
	Regressions int
	// Unmatched names baseline figures with no counterpart in the new run
	// (and the reverse), which are not compared.
	Unmatched []string
	// NoisyRegressions counts the Regressions in Noisy cells; BaseNoise
	// and NewNoise are the runs' NoiseLine (empty when unmeasured).
	NoisyRegressions    int
	BaseNoise, NewNoise string
}

// ParseThreshold reads "10%" or "0.1" as 0.1.
func ParseThreshold(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	x, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil || x < 0 || math.IsInf(x, 0) {
		return 0, fmt.Errorf("threshold %q: want a percentage like 10%% or a fraction like 0.1", s)
	}
	if pct {
		x /= 100
	}
	return x, nil
}

// Compare puts every summarized figure of base beside the same figure of
// next (matched by server label, workload, size and clients, or size and
// fault; when each run has a single server their labels need not match)
// and flags those that moved beyond threshold (a fraction: 0.1 = 10%). It
// is pure.
func Compare(base, next Results, threshold float64) Comparison {
	cmp := Comparison{Threshold: threshold, BaseNoise: NoiseLine(base), NewNoise: NoiseLine(next)}
	noisyCell := func(l LoadSummary, cpus int) bool { return cpus > 0 && noisy(l.NoiseCPU/float64(cpus)) }
	rename := func(label string) string { return label }
	if len(base.Run.Servers) == 1 && len(next.Run.Servers) == 1 {
		from, to := next.Run.Servers[0].Label, base.Run.Servers[0].Label
		rename = func(label string) string {
			if label == from {
				return to
			}
			return label
		}
	}
	type key struct {
		server, workload, fault string
		size, clients           int
		v                       variant
	}
	newLoad := map[key]LoadSummary{}
	for _, l := range next.Summary.Load {
		newLoad[key{server: rename(l.Server), workload: l.Workload, size: l.Size, clients: l.Clients, v: variant{l.Watchers, l.IdleWatchers, l.Leases}}] = l
	}
	newFault := map[key]FaultSummary{}
	for _, f := range next.Summary.Availability {
		newFault[key{server: rename(f.Server), fault: f.Fault, size: f.Size}] = f
	}
	matched := map[key]bool{}
	add := func(k, metric string, b, n float64, higherIsBetter, isNoisy bool) {
		c := Change{Key: k, Metric: metric, Base: b, New: n, Noisy: isNoisy}
		if b != 0 {
			c.Delta = (n - b) / b
		} else if n != 0 {
			c.Delta = math.Inf(1)
		}
		up, down := c.Delta > threshold, c.Delta < -threshold
		if higherIsBetter {
			c.Worse, c.Better = down, up
		} else {
			c.Worse, c.Better = up, down
		}
		if c.Worse {
			cmp.Regressions++
			if c.Noisy {
				cmp.NoisyRegressions++
			}
		}
		cmp.Changes = append(cmp.Changes, c)
	}
	for _, b := range base.Summary.Load {
		k := key{server: b.Server, workload: b.Workload, size: b.Size, clients: b.Clients, v: variant{b.Watchers, b.IdleWatchers, b.Leases}}
		name := fmt.Sprintf("%s %s %d members %d clients", b.Server, b.Workload, b.Size, b.Clients)
		if b.Clients == 0 {
			name = fmt.Sprintf("%s %s %d members", b.Server, b.Workload, b.Size)
		}
		name += variantLabel(b.Watchers, b.IdleWatchers, b.Leases)
		n, ok := newLoad[k]
		if !ok {
			cmp.Unmatched = append(cmp.Unmatched, "only in baseline: "+name)
			continue
		}
		matched[k] = true
		nz := noisyCell(b, base.Run.Machine.CPUs) || noisyCell(n, next.Run.Machine.CPUs)
		add(name, "throughput", b.Throughput, n.Throughput, true, nz)
		add(name, "p50", b.P50.Seconds(), n.P50.Seconds(), false, nz)
		add(name, "p99", b.P99.Seconds(), n.P99.Seconds(), false, nz)
		if b.RSSDelta > 0 && n.RSSDelta > 0 {
			add(name, "rss_delta", float64(b.RSSDelta), float64(n.RSSDelta), false, nz)
		}
	}
	for _, b := range base.Summary.Availability {
		k := key{server: b.Server, fault: b.Fault, size: b.Size}
		name := fmt.Sprintf("%s %s %d members", b.Server, b.Fault, b.Size)
		n, ok := newFault[k]
		if !ok {
			cmp.Unmatched = append(cmp.Unmatched, "only in baseline: "+name)
			continue
		}
		matched[k] = true
		bw, nw := b.WritableTrials > 0, n.WritableTrials > 0
		switch {
		case bw && nw:
			add(name, "unavailability", b.Median.Seconds(), n.Median.Seconds(), false, false)
		case bw != nw:
			c := Change{Key: name, Metric: "writable", Base: b2f(bw), New: b2f(nw), Delta: b2f(nw) - b2f(bw), Worse: bw, Better: nw}
			if c.Worse {
				cmp.Regressions++
			}
			cmp.Changes = append(cmp.Changes, c)
		}
	}
	for k, l := range newLoad {
		if !matched[k] {
			cmp.Unmatched = append(cmp.Unmatched, fmt.Sprintf("only in new: %s %s %d members %d clients%s", l.Server, l.Workload, l.Size, l.Clients,
				variantLabel(l.Watchers, l.IdleWatchers, l.Leases)))
		}
	}
	for k, f := range newFault {
		if !matched[k] {
			cmp.Unmatched = append(cmp.Unmatched, fmt.Sprintf("only in new: %s %s %d members", f.Server, f.Fault, f.Size))
		}
	}
	return cmp
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Format is the side-by-side table, one line per figure, and a verdict
// line.
func (c Comparison) Format() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmetric\tbaseline\tnew\tchange\t")
	for _, ch := range c.Changes {
		verdict := ""
		switch {
		case ch.Worse:
			verdict = "  WORSE"
		case ch.Better:
			verdict = "  better"
		}
		if ch.Noisy && (ch.Worse || ch.Better) {
			verdict += " (noisy)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%+.1f%%%s\t\n", ch.Key, ch.Metric, fmtFigure(ch.Metric, ch.Base), fmtFigure(ch.Metric, ch.New), 100*ch.Delta, verdict)
	}
	tw.Flush()
	for _, u := range c.Unmatched {
		fmt.Fprintf(&b, "not compared: %s\n", u)
	}
	for _, n := range []struct{ run, line string }{{"baseline", c.BaseNoise}, {"new", c.NewNoise}} {
		if n.line != "" {
			fmt.Fprintf(&b, "%s: %s\n", n.run, strings.ReplaceAll(n.line, "\n", "\n"+n.run+": "))
		}
	}
	if c.Regressions > 0 {
		fmt.Fprintf(&b, "%d figure(s) worse by more than %.0f%%", c.Regressions, 100*c.Threshold)
		if c.NoisyRegressions > 0 {
			fmt.Fprintf(&b, "; %d of them in cells where the rest of the machine took more than %.0f%% of it (noisy): rerun those on a quiet machine before believing them",
				c.NoisyRegressions, 100*NoisyShare)
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "no figure worse by more than %.0f%% (%d compared)\n", 100*c.Threshold, len(c.Changes))
	}
	return b.String()
}

func fmtFigure(metric string, x float64) string {
	switch metric {
	case "throughput":
		return fmt.Sprintf("%.0f/s", x)
	case "unavailability":
		return fmt.Sprintf("%.3fs", x)
	case "rss_delta":
		return fmt.Sprintf("%.1f MiB", x/(1<<20))
	case "writable":
		if x == 1 {
			return "writable"
		}
		return "not writable"
	default:
		return fmt.Sprintf("%.3fms", x*1000)
	}
}
