package bench

import (
	"fmt"
	"html/template"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quorum-kv/quorum/internal/atomicfile"
	"github.com/quorum-kv/quorum/reports/render"
)

// Write writes res as dir/results.json, dir/plots/*.png and
// dir/report.html (dir must exist). Summary is written as given: Run sets
// it with Summarize.
func Write(dir string, res Results) error {
	res.Schema = Schema
	if err := WriteResults(dir, res); err != nil {
		return err
	}
	plots, err := writePlots(dir, res)
	if err != nil {
		return fmt.Errorf("write bench plots in %s: %w", dir, err)
	}
	page, err := renderReport(res, plots)
	if err != nil {
		return fmt.Errorf("write bench report in %s: %w", dir, err)
	}
	return atomicfile.Write(filepath.Join(dir, ReportFile), page)
}

// Rebuild rewrites a run directory's summary, plots and report from its
// results.json (the raw cells and trials).
func Rebuild(dir string) error {
	res, err := LoadResults(dir)
	if err != nil {
		return err
	}
	res.Summary = Summarize(res.Run.Servers, res.Load, res.Availability)
	return Write(dir, res)
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func fmtRate(x float64) string { return fmt.Sprintf("%.0f", x) }

func fmtMiB(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func fmtMiBf(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// perObject is b/n in bytes or KiB.
func perObject(b int64, n int) string {
	if n == 0 {
		return "-"
	}
	x := float64(b) / float64(n)
	if x < 10*1024 {
		return fmt.Sprintf("%.0f B", x)
	}
	return fmt.Sprintf("%.1f KiB", x/1024)
}

// fmtRatio is "median (min–max)".
func fmtRatio(r Ratio) string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", r.Median, r.Min, r.Max)
}

func fmtWindow(a FaultSummary) (median, mx string) {
	if a.WritableTrials == 0 {
		return "not writable", "—"
	}
	return fmtDur(a.Median), fmtDur(a.Max)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// noiseView is the report's line on the rest of the machine (NoiseLine).
type noiseView struct {
	Line  string
	Noisy bool
}

type htmlView struct {
	Res      Results
	Plots    []render.PlotFile
	Settings [][2]string
}

func renderReport(res Results, plots []render.PlotFile) ([]byte, error) {
	st := res.Run.Settings
	conns := "min(100, clients)"
	if st.Conns > 0 {
		conns = fmt.Sprint(st.Conns)
	}
	v := htmlView{Res: res, Plots: plots, Settings: [][2]string{
		{"sizes", fmt.Sprint(st.Sizes)}, {"workloads", strings.Join(st.Workloads, ", ")},
		{"clients", fmt.Sprint(st.Clients)}, {"connections", conns},
		{"measured per cell", st.Duration.String()}, {"warm-up per cell", st.Warmup.String()},
		{"key / value size", fmt.Sprintf("%d B / %d B", st.KeySize, st.ValueSize)}, {"key space", fmt.Sprint(st.KeySpace)},
		{"request timeout", st.OpTimeout.String()}, {"rounds", fmt.Sprint(st.Rounds)},
		{"faults", strings.Join(st.Faults, ", ")}, {"repetitions per fault and round", fmt.Sprint(st.FaultReps)},
		{"bounded wait (not writable)", st.FaultWait.String()},
		{"availability probes", fmt.Sprintf("one write every %v, round-robin over the members, %v timeout", st.ProbeInterval, st.ProbeTimeout)},
		{"election timeout", st.ElectionTimeout}, {"seed", fmt.Sprint(st.Seed)},
	}}
	if st.HeartbeatInterval != "" {
		v.Settings = append(v.Settings, [2]string{"heartbeat interval", st.HeartbeatInterval})
	}
	if st.SnapshotCount > 0 {
		v.Settings = append(v.Settings, [2]string{"snapshot count", fmt.Sprint(st.SnapshotCount)})
	}
	if len(st.ServerArgs) > 0 {
		v.Settings = append(v.Settings, [2]string{"server arguments (every member)", strings.Join(st.ServerArgs, " ")})
	}
	if len(st.Watchers) > 0 {
		v.Settings = append(v.Settings, [2]string{"watch: watchers", fmt.Sprint(st.Watchers)},
			[2]string{"watch: put rate", fmt.Sprintf("%d/s, at most %d events/s offered (0: no cap)", st.WatchPutRate, st.WatchEventRate)},
			[2]string{"watch connections (0: min(watchers, 10))", fmt.Sprint(st.WatchConns)},
			[2]string{"idle watchers per request-loop cell", fmt.Sprint(st.IdleWatchers)},
			[2]string{"memory cells: watchers / leases", fmt.Sprintf("%d / %d", st.MemoryWatchers, st.MemoryLeases)})
	}
	return render.Page("bench report", reportTemplate, template.FuncMap{
		"dur": fmtDur, "rate": fmtRate, "mib": fmtMiB, "ratio": fmtRatio, "yesno": yesNo,
		"win": func(a FaultSummary) string { m, _ := fmtWindow(a); return m },
		"winmax": func(a FaultSummary) string {
			_, m := fmtWindow(a)
			return m
		},
		"f2": func(x float64) string { return fmt.Sprintf("%.2f", x) },
		"plain": func(ls []LoadSummary) []LoadSummary {
			return filterLoad(ls, func(l LoadSummary) bool { return clientWorkload(l.Workload) })
		},
		"watchcells": func(ls []LoadSummary) []LoadSummary {
			return filterLoad(ls, func(l LoadSummary) bool { return l.Workload == WorkloadWatch })
		},
		"memcells": func(ls []LoadSummary) []LoadSummary {
			return filterLoad(ls, func(l LoadSummary) bool {
				return l.Workload == WorkloadWatchMemory || l.Workload == WorkloadLeaseMemory
			})
		},
		"mibf": fmtMiBf, "pct": func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) }, "perobj": perObject,
		"variant": func(r Ratio) string { return variantLabel(r.Watchers, r.IdleWatchers, r.Leases) },
		"noise": func() *noiseView {
			n := Noise(res.Load, res.Run.Machine.CPUs)
			if n.Cells == 0 {
				return nil
			}
			return &noiseView{Line: n.Line(), Noisy: n.Noisy > 0}
		},
	}, v)
}

func filterLoad(ls []LoadSummary, keep func(LoadSummary) bool) []LoadSummary {
	var out []LoadSummary
	for _, l := range ls {
		if keep(l) {
			out = append(out, l)
		}
	}
	return out
}

// reportTemplate is report.html's title, styles and body (render.Page).
const reportTemplate = `{{define "title"}}quorum bench {{.Res.Run.Start.Format "2006-01-02 15:04"}}{{end}}
{{define "style"}}.note { background: #fff8e1; border-left: 4px solid #e8a200; padding: 0.4em 0.8em; }
{{end}}
{{define "body"}}<h1>quorum bench</h1>
<p>{{range $i, $s := .Res.Run.Servers}}{{if $i}} vs {{end}}<b>{{$s.Label}}</b> <span class="muted">({{$s}})</span>{{end}}
· {{or .Res.Run.Backend "local"}} backend · started {{.Res.Run.Start.Format "2006-01-02 15:04:05 MST"}} · took {{dur .Res.Run.Elapsed}}</p>
<p class="note">Machine: {{.Res.Run.Machine.CPUs}} CPUs{{with .Res.Run.Machine.CPUModel}} ({{.}}){{end}}{{with .Res.Run.Machine.Kernel}}, Linux {{.}}{{end}}, {{.Res.Run.Machine.GoVersion}}.
Every member and the load generator share these CPUs (the "load generator CPU" column says how much the generator took), so absolute figures are this machine's; compare servers through the per-round ratios.</p>
{{with .Res.Errors}}<h2 class="bad">Errors</h2><ul>{{range .}}<li class="bad">{{.}}</li>{{end}}</ul>{{end}}

<h2>Configuration</h2>
<table>{{range .Settings}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
{{with .Res.Run.Command}}<h3>Reproduce</h3><pre>{{.}}</pre>{{end}}

{{if .Res.Summary.Load}}<h2>Throughput and latency</h2>
<p class="muted">Median over rounds. Latency of acknowledged requests; errors are counted separately. CPU: the members' user+system time per second (2.0 = two cores busy). Peak RSS: the largest member's VmHWM in the cell. Rest of the machine: other processes' CPU and the hypervisor's steal per second, which the cell measured too.</p>
{{with noise}}<p{{if .Noisy}} class="bad"{{end}}>{{.Line}}</p>{{end}}
<table>
<tr><th>server</th><th>workload</th><th>size</th><th>clients</th><th>idle watchers</th><th>req/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th><th>members CPU</th><th>peak RSS</th><th>load generator CPU</th><th>rest of the machine CPU</th></tr>
{{range plain .Res.Summary.Load}}<tr{{if .Errors}} class="bad"{{end}}><td>{{.Server}}</td><td>{{.Workload}}</td><td class="num">{{.Size}}</td><td class="num">{{.Clients}}</td><td class="num">{{.IdleWatchers}}</td><td class="num">{{rate .Throughput}}</td><td class="num">{{dur .P50}}</td><td class="num">{{dur .P90}}</td><td class="num">{{dur .P99}}</td><td class="num">{{dur .P999}}</td><td class="num">{{dur .Max}}</td><td class="num">{{.Errors}}</td><td class="num">{{f2 .CPU}}</td><td class="num">{{mib .PeakRSS}}</td><td class="num">{{f2 .LoadGenCPU}}</td><td class="num">{{f2 .NoiseCPU}}</td></tr>
{{end}}</table>
{{end}}

{{with watchcells .Res.Summary.Load}}<h2>Watch</h2>
<p class="muted">Median over rounds. Watchers of the whole key space under an open-loop put load; events/s summed over the watchers (received in the measured time); latency from the put's acknowledgement to the event's receipt. Missing / duplicates: summed over rounds, per watcher against the acknowledged puts.</p>
<table>
<tr><th>server</th><th>size</th><th>watchers</th><th>puts/s</th><th>events/s offered</th><th>events/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>before ack</th><th>put sent → event p50 / p99</th><th>missing</th><th>duplicates</th><th>put errors</th><th>members CPU</th><th>peak RSS</th><th>load generator CPU</th><th>rest of the machine CPU</th></tr>
{{range .}}<tr{{if or .Missing .Duplicates .Errors}} class="bad"{{end}}><td>{{.Server}}</td><td class="num">{{.Size}}</td><td class="num">{{.Watchers}}</td><td class="num">{{rate .PutRate}}</td><td class="num">{{rate .EventRate}}</td><td class="num">{{rate .Throughput}}</td><td class="num">{{dur .P50}}</td><td class="num">{{dur .P90}}</td><td class="num">{{dur .P99}}</td><td class="num">{{dur .P999}}</td><td class="num">{{dur .Max}}</td><td class="num">{{pct .BeforeAckFraction}}</td><td class="num">{{dur .SendP50}} / {{dur .SendP99}}</td><td class="num">{{.Missing}}</td><td class="num">{{.Duplicates}}</td><td class="num">{{.Errors}}</td><td class="num">{{f2 .CPU}}</td><td class="num">{{mib .PeakRSS}}</td><td class="num">{{f2 .LoadGenCPU}}</td><td class="num">{{f2 .NoiseCPU}}</td></tr>
{{end}}</table>
{{end}}

{{with memcells .Res.Summary.Load}}<h2>Memory</h2>
<p class="muted">Members' VmRSS at steady state after creating the objects minus before (median over rounds), summed over members and the largest member's.</p>
<table>
<tr><th>server</th><th>size</th><th>workload</th><th>objects</th><th>members' RSS delta</th><th>of it anonymous</th><th>largest member</th><th>per object (summed)</th><th>created/s</th><th>p99</th><th>errors</th></tr>
{{range .}}<tr{{if .Errors}} class="bad"{{end}}><td>{{.Server}}</td><td class="num">{{.Size}}</td><td>{{.Workload}}</td><td class="num">{{.Objects}}</td><td class="num">{{mibf .RSSDelta}}</td><td class="num">{{mibf .AnonDelta}}</td><td class="num">{{mibf .MaxMemberDelta}}</td><td class="num">{{perobj .RSSDelta .Objects}}</td><td class="num">{{rate .Throughput}}</td><td class="num">{{dur .P99}}</td><td class="num">{{.Errors}}</td></tr>
{{end}}</table>
{{end}}

{{if .Res.Summary.Ratios}}<h2>A/B ratios</h2>
<p class="muted">Each server against the first ({{(index .Res.Run.Servers 0).Label}}), measured in the same round one after the other: median (min–max) of the per-round ratios. Throughput above 1 is better; latency and unavailability below 1 are better.</p>
<table>
<tr><th>server / baseline</th><th>size</th><th>workload or fault</th><th>clients</th><th>metric</th><th>ratio</th><th>rounds</th></tr>
{{range .Res.Summary.Ratios}}<tr><td>{{.Server}} / {{.Baseline}}</td><td class="num">{{.Size}}</td><td>{{.Workload}}{{.Fault}}{{variant .}}{{if eq .Kind "idle-watchers"}} (with / without them){{end}}</td><td class="num">{{if .Clients}}{{.Clients}}{{end}}</td><td>{{.Metric}}</td><td class="num">{{ratio .}}</td><td class="num">{{len .PerRound}}</td></tr>
{{end}}</table>
{{end}}

{{if .Res.Summary.Availability}}<h2>Availability under faults</h2>
<p class="muted">Window: from the fault to the acknowledgement of the first write invoked after it (median and max over the writable trials). "Not writable": no write acknowledged within {{dur .Res.Run.Settings.FaultWait}}.</p>
<table>
<tr><th>server</th><th>size</th><th>fault</th><th>members lost</th><th>writable trials</th><th>median window</th><th>max window</th><th>predicted</th><th>did not recover after healing</th></tr>
{{range .Res.Summary.Availability}}<tr{{if ne .Writable .PredictedWritable}} class="bad"{{end}}><td>{{.Server}}</td><td class="num">{{.Size}}</td><td>{{.Fault}}</td><td class="num">{{.Lost}}</td><td class="num">{{.WritableTrials}}/{{.Trials}}</td><td class="num">{{win .}}</td><td class="num">{{winmax .}}</td><td>{{if .PredictedWritable}}writable{{else}}not writable{{end}}</td><td class="num{{if .NotRecovered}} bad{{end}}">{{.NotRecovered}}/{{.Trials}}</td></tr>
{{end}}</table>

<h3>Quorum table: measured beside predicted</h3>
<p class="muted">The etcd docs' table: quorum = members/2+1, failures tolerated = members − quorum. Measured: the most members lost with every trial still writable; "exact" when losing one more was tried and never writable. An even size split in halves loses quorum on both sides.</p>
<table>
<tr><th>server</th><th>members</th><th>quorum (predicted)</th><th>quorum (measured)</th><th>failures tolerated (predicted)</th><th>failures tolerated (measured)</th><th>exact</th><th>evidence</th></tr>
{{range .Res.Summary.Quorum}}<tr{{if not .Agrees}} class="bad"{{end}}><td>{{.Server}}</td><td class="num">{{.Members}}</td><td class="num">{{.PredictedQuorum}}</td><td class="num">{{.MeasuredQuorum}}</td><td class="num">{{.PredictedTolerated}}</td><td class="num">{{.MeasuredTolerated}}</td><td>{{yesno .Exact}}</td><td>{{.Evidence}}</td></tr>
{{end}}</table>
{{end}}

<h2>Plots</h2>
{{range .Plots}}<h3>{{.Title}}</h3>
<img src="{{.Path}}" alt="{{.Title}}">
{{else}}<p class="muted">Nothing was measured.</p>{{end}}
{{end}}
`

// FormatSummary is the terminal summary: the load table, the ratios, the
// availability and quorum tables, and where the report is.
func FormatSummary(res Results, dir string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	var plain, watch, mem []LoadSummary
	for _, l := range res.Summary.Load {
		switch {
		case l.Workload == WorkloadWatch:
			watch = append(watch, l)
		case !clientWorkload(l.Workload):
			mem = append(mem, l)
		default:
			plain = append(plain, l)
		}
	}
	if len(plain) > 0 {
		fmt.Fprintln(tw, "server\tworkload\tsize\tclients\tidle watchers\treq/s\tp50\tp99\tp99.9\tmax\terrors\tcpu/s\tpeak rss\tnoise cpu/s\t")
		for _, l := range plain {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%.2f\t%s\t%.2f\t\n", l.Server, l.Workload, l.Size, l.Clients, l.IdleWatchers,
				fmtRate(l.Throughput), fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.P999), fmtDur(l.Max), l.Errors, l.CPU, fmtMiB(l.PeakRSS), l.NoiseCPU)
		}
		fmt.Fprintln(tw)
	}
	if len(watch) > 0 {
		fmt.Fprintln(tw, "server\tsize\twatchers\tputs/s\tevents/s offered\tevents/s\tp50\tp99\tp99.9\tmax\tbefore ack\tsent p50\tsent p99\tmissing\tduplicates\tput errors\tcpu/s\tpeak rss\tnoise cpu/s\t")
		for _, l := range watch {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.0f%%\t%s\t%s\t%d\t%d\t%d\t%.2f\t%s\t%.2f\t\n", l.Server, l.Size, l.Watchers, l.PutRate, l.EventRate,
				fmtRate(l.Throughput), fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.P999), fmtDur(l.Max), 100*l.BeforeAckFraction, fmtDur(l.SendP50), fmtDur(l.SendP99),
				l.Missing, l.Duplicates, l.Errors, l.CPU, fmtMiB(l.PeakRSS), l.NoiseCPU)
		}
		fmt.Fprintln(tw)
	}
	if len(mem) > 0 {
		fmt.Fprintln(tw, "server\tsize\tworkload\tobjects\tmembers' rss delta\tof it anon\tlargest member\tper object\tcreated/s\tp99\terrors\t")
		for _, l := range mem {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", l.Server, l.Size, l.Workload, l.Objects, fmtMiBf(l.RSSDelta), fmtMiBf(l.AnonDelta),
				fmtMiBf(l.MaxMemberDelta), perObject(l.RSSDelta, l.Objects), fmtRate(l.Throughput), fmtDur(l.P99), l.Errors)
		}
		fmt.Fprintln(tw)
	}
	if len(res.Summary.Ratios) > 0 {
		fmt.Fprintln(tw, "ratio\tsize\tworkload/fault\tclients\tmetric\tmedian (min-max)\t")
		for _, r := range res.Summary.Ratios {
			clients := "-"
			if r.Clients > 0 {
				clients = fmt.Sprint(r.Clients)
			}
			name := r.Server + "/" + r.Baseline
			if r.Kind == "idle-watchers" {
				name = fmt.Sprintf("%s with/without %d idle watchers", r.Server, r.IdleWatchers)
			}
			idle := r.IdleWatchers
			if r.Kind == "idle-watchers" {
				idle = 0 // in the name
			}
			fmt.Fprintf(tw, "%s\t%d\t%s%s%s\t%s\t%s\t%s\t\n", name, r.Size, r.Workload, r.Fault, variantLabel(r.Watchers, idle, r.Leases), clients, r.Metric, fmtRatio(r))
		}
		fmt.Fprintln(tw)
	}
	if len(res.Summary.Availability) > 0 {
		fmt.Fprintln(tw, "server\tsize\tfault\tlost\twritable\tmedian\tmax\tpredicted\tnot recovered\t")
		for _, a := range res.Summary.Availability {
			m, x := fmtWindow(a)
			pred := "writable"
			if !a.PredictedWritable {
				pred = "not writable"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d/%d\t%s\t%s\t%s\t%d\t\n", a.Server, a.Size, a.Fault, a.Lost, a.WritableTrials, a.Trials, m, x, pred, a.NotRecovered)
		}
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "server\tmembers\tquorum pred\tquorum meas\ttolerated pred\ttolerated meas\texact\t")
		for _, q := range res.Summary.Quorum {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", q.Server, q.Members, q.PredictedQuorum, q.MeasuredQuorum, q.PredictedTolerated, q.MeasuredTolerated, yesNo(q.Exact))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if line := NoiseLine(res); line != "" {
		fmt.Fprintln(&b, line)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	if dir != "" {
		fmt.Fprintf(&b, "report: %s\n", filepath.Join(dir, ReportFile))
	}
	return b.String()
}
