package reports

import (
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/checker/elle"
	"github.com/quorum-kv/quorum/checker/lease"
	"github.com/quorum-kv/quorum/checker/lock"
	"github.com/quorum-kv/quorum/checker/watch"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/reports/render"
)

// maxListed bounds the elements or keys listed inline in the report.
const maxListed = 50

// kv is one row of a two-column table.
type kv struct{ K, V string }

// opsRow is one row of the ops table.
type opsRow struct {
	F                     string
	OK, Fail, Info, Total int
}

// latencyRow is one row of the latency table.
type latencyRow struct {
	F, Outcome, Count        string
	P50, P90, P99, P999, Max string
	NoLatency                bool
}

// faultRow is one row of the unavailability table.
type faultRow struct {
	Fault, Targets, Start, End, Length, Unavailable, Gap, Note string
	Recovered                                                  bool
}

// listView is a possibly truncated list.
type listView struct {
	Items []string
	More  int
}

func list(xs []string) listView {
	if len(xs) <= maxListed {
		return listView{Items: xs}
	}
	return listView{Items: xs[:maxListed], More: len(xs) - maxListed}
}

// reportView is everything report.html shows, already formatted.
type reportView struct {
	Title        string
	Verdict      string
	VerdictClass string
	Reasons      []string
	Headline     []kv
	RunRows      []kv
	Workload     []kv
	Nemesis      []kv
	Command      string
	AnalysisErr  string
	Ops          []opsRow
	OpsTotal     opsRow
	Latency      []latencyRow
	Faults       []faultRow
	FaultStats   []kv
	Lin          *checker.LinearizabilityResult
	LinFailing   listView
	LinUnknown   listView
	LinLink      string
	Set          *checker.SetResult
	SetLost      listView
	SetUnexp     listView
	SetFailedPr  listView
	Final        *checker.FinalReadsResult
	Append       *elle.Result
	AppendText   []string
	Watch        *watch.Result
	WatchText    []string
	WatchRows    []watchRow
	Lock         *lock.Result
	LockText     []string
	Lease        *lease.Result
	LeaseText    []string
	FinalDisagr  listView
	FinalReads   []finalRow
	Plots        []render.PlotFile
}

type finalRow struct {
	Key, Node, Value, Rev, Elements string
	Missing                         listView
	Disagrees                       bool
}

// fmtDur formats a duration for people: 1.234s, 12.3ms, 850µs.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d >= time.Minute:
		return d.Round(time.Millisecond).String()
	case d >= time.Second:
		return fmt.Sprintf("%.3fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	}
}

// fmtAt formats a time since the run's start.
func fmtAt(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// flatten renders a Config as sorted key = value rows, nested objects as
// dotted keys, other values as compact JSON (strings unquoted).
func flatten(c Config) []kv {
	var rows []kv
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				rows = append(rows, kv{prefix, "{}"})
			}
			for k, sub := range x {
				name := k
				if prefix != "" {
					name = prefix + "." + k
				}
				walk(name, sub)
			}
		case Config:
			walk(prefix, map[string]any(x))
		case string:
			rows = append(rows, kv{prefix, x})
		case json.Number:
			rows = append(rows, kv{prefix, x.String()})
		default:
			b, err := json.Marshal(x)
			if err != nil {
				b = []byte(fmt.Sprint(x))
			}
			rows = append(rows, kv{prefix, string(b)})
		}
	}
	if len(c) > 0 {
		walk("", map[string]any(c))
	}
	slices.SortFunc(rows, func(a, b kv) int { return strings.Compare(a.K, b.K) })
	return rows
}

// verdictReasons explains the verdict in a few lines.
func verdictReasons(r checker.Result) []string {
	var out []string
	if r.Reason != "" {
		out = append(out, r.Reason)
	}
	if r.Logs != nil && r.Logs.Verdict == checker.Invalid {
		out = append(out, r.Logs.String())
	}
	if l := r.Linearizability; l != nil {
		switch l.Verdict {
		case checker.Valid:
			out = append(out, fmt.Sprintf("linearizable: %d keys, %d operations checked", l.Keys, l.Operations))
		case checker.Invalid:
			out = append(out, fmt.Sprintf("not linearizable: %d of %d keys fail (%s)", len(l.FailingKeys), l.Keys, joinSome(l.FailingKeys)))
		case checker.Unknown:
			if len(l.UnknownKeys) > 0 {
				out = append(out, fmt.Sprintf("linearizability of %d of %d keys not decided within the check time limit (%s)", len(l.UnknownKeys), l.Keys, joinSome(l.UnknownKeys)))
			} else {
				out = append(out, "linearizability: no operation with a known outcome was checked")
			}
		}
	}
	if s := r.Set; s != nil {
		switch s.Verdict {
		case checker.Valid:
			out = append(out, fmt.Sprintf("set: all %d acknowledged adds present in %d final reads, nothing unexpected", s.Acknowledged, s.FinalReads))
		case checker.Invalid:
			out = append(out, fmt.Sprintf("set: %d acknowledged adds lost, %d unexpected elements, %d failed adds present", len(s.Lost), len(s.Unexpected), len(s.FailedPresent)))
		case checker.Unknown:
			out = append(out, "set: no add was acknowledged, or a key with adds has no ok final read")
		}
	}
	if a := r.Append; a != nil {
		out = append(out, AppendLines(a)[0])
		if a.Reason != "" {
			out = append(out, "append: "+a.Reason)
		}
	}
	if l := r.Lease; l != nil {
		out = append(out, LeaseLines(l)[0])
		if l.Reason != "" {
			out = append(out, "lease: "+l.Reason)
		}
	}
	if l := r.Lock; l != nil {
		out = append(out, LockLines(l)[0])
		if l.Reason != "" {
			out = append(out, "lock: "+l.Reason)
		}
	}
	if w := r.Watch; w != nil {
		out = append(out, WatchLines(w)[0])
		if w.Reason != "" {
			out = append(out, "watch: "+w.Reason)
		}
	}
	if f := r.FinalReads; f != nil {
		switch f.Verdict {
		case checker.Valid:
			out = append(out, fmt.Sprintf("final reads: %d member reads agree", len(f.Reads)))
		case checker.Invalid:
			out = append(out, fmt.Sprintf("final reads: members disagree on %d keys (%s)", len(f.Disagreements), joinSome(f.Disagreements)))
		case checker.Unknown:
			out = append(out, "final reads: no final read completed ok")
		}
	}
	return out
}

// joinSome joins the first few strings of xs.
func joinSome(xs []string) string {
	const n = 5
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(", … %d more", len(xs)-n)
}

func strOrNull(p *string) string {
	if p == nil {
		return "(absent)"
	}
	return *p
}

// buildView formats res for the template; linLink is the relative link to
// the linearizability visualization, empty when the file does not exist.
func buildView(res Results, plots []render.PlotFile, linLink string) reportView {
	v := reportView{
		Title:        res.Run.Name,
		Verdict:      strings.ToUpper(res.Check.Verdict.String()),
		VerdictClass: res.Check.Verdict.String(),
		Reasons:      verdictReasons(res.Check),
		Workload:     flatten(res.Run.Workload),
		Nemesis:      flatten(res.Run.Nemesis),
		Command:      res.Run.Command,
		AnalysisErr:  res.Summary.Error,
		Plots:        plots,
		LinLink:      linLink,
	}
	if h := res.HashKV; h != nil && h.Outcome() != HashKVDiffer {
		// A mismatch is already in Check.Reason (ApplyHashKV).
		v.Reasons = append(v.Reasons, h.Line())
	}
	if v.Title == "" {
		v.Title = "quorum test"
	}
	s := res.Summary
	v.Headline = []kv{
		{"workload", res.Check.Workload},
		{"operations", fmt.Sprintf("%d (%d ok, %d fail, %d info)", s.Total, s.OK, s.Fail, s.Info)},
		{"run length", fmtDur(s.Duration)},
		{"throughput", fmt.Sprintf("%.1f ok ops/s", s.Throughput)},
		{"check time", fmtDur(res.CheckDuration)},
	}
	if w, ok := s.Worst(); ok {
		v.Headline = append(v.Headline, kv{"worst unavailability", fmt.Sprintf("%s after %s at %s", worstText(w), w.Fault, fmtAt(w.Start))})
	}
	r := res.Run
	v.RunRows = []kv{{"test", r.Name}}
	if !r.Start.IsZero() {
		v.RunRows = append(v.RunRows, kv{"start", r.Start.Format(time.RFC3339)})
	}
	v.RunRows = append(v.RunRows,
		kv{"duration", fmtDur(r.Duration)},
		kv{"backend", r.Backend},
		kv{"server binary", r.ServerBinary},
		kv{"cluster size", fmt.Sprint(r.ClusterSize)},
		kv{"seed", fmt.Sprint(r.Seed)},
		kv{"check time limit", checkLimit(r.CheckTimeLimit)},
	)

	byF := map[string]*opsRow{}
	var fs []string
	for _, o := range s.Ops {
		row := byF[o.F]
		if row == nil {
			row = &opsRow{F: o.F}
			byF[o.F] = row
			fs = append(fs, o.F)
		}
		switch o.Outcome {
		case history.OK:
			row.OK += o.Count
		case history.Fail:
			row.Fail += o.Count
		default:
			row.Info += o.Count
		}
		row.Total += o.Count
		lr := latencyRow{F: o.F, Outcome: string(o.Outcome), Count: fmt.Sprint(o.Count)}
		if q := o.Latency; q != nil {
			lr.P50, lr.P90, lr.P99, lr.P999, lr.Max = fmtDur(q.P50), fmtDur(q.P90), fmtDur(q.P99), fmtDur(q.P999), fmtDur(q.Max)
		} else {
			lr.NoLatency = true
		}
		v.Latency = append(v.Latency, lr)
	}
	for _, f := range fs {
		row := *byF[f]
		v.Ops = append(v.Ops, row)
	}
	v.OpsTotal = opsRow{F: "total", OK: s.OK, Fail: s.Fail, Info: s.Info, Total: s.Total}

	for _, w := range s.Faults {
		fr := faultRow{
			Fault: w.Fault, Targets: w.Targets, Start: fmtAt(w.Start), End: fmtAt(w.End),
			Length: fmtDur(w.End - w.Start), Unavailable: worstText(w), Gap: fmtDur(w.LongestGap), Recovered: w.Recovered,
		}
		var notes []string
		if w.Open {
			notes = append(notes, "still active at the end")
		}
		if w.HealFailed {
			notes = append(notes, "healing failed")
		}
		fr.Note = strings.Join(notes, "; ")
		v.Faults = append(v.Faults, fr)
	}
	for _, st := range s.FaultStats {
		val := fmt.Sprintf("%d× — longest unavailability %s, longest gap without ok writes %s", st.Count, fmtDur(st.MaxUnavailable), fmtDur(st.MaxGap))
		if st.Unrecovered > 0 {
			val += fmt.Sprintf(" (%d never recovered)", st.Unrecovered)
		}
		v.FaultStats = append(v.FaultStats, kv{st.Fault, val})
	}

	if l := res.Check.Linearizability; l != nil {
		v.Lin = l
		v.LinFailing = list(l.FailingKeys)
		v.LinUnknown = list(l.UnknownKeys)
	}
	if st := res.Check.Set; st != nil {
		v.Set = st
		v.SetLost = list(st.Lost)
		v.SetUnexp = list(st.Unexpected)
		v.SetFailedPr = list(st.FailedPresent)
	}
	if a := res.Check.Append; a != nil {
		v.Append = a
		v.AppendText = AppendLines(a)
	}
	if w := res.Check.Watch; w != nil {
		v.Watch = w
		v.WatchText = WatchLines(w)
		for _, wr := range w.Watchers {
			v.WatchRows = append(v.WatchRows, watchRow{wr, SpecText(wr.Spec), revsText(wr.WrongRevisions)})
		}
	}
	if l := res.Check.Lease; l != nil {
		v.Lease = l
		v.LeaseText = LeaseLines(l)
	}
	if l := res.Check.Lock; l != nil {
		v.Lock = l
		v.LockText = LockLines(l)
	}
	if f := res.Check.FinalReads; f != nil {
		v.Final = f
		v.FinalDisagr = list(f.Disagreements)
		for _, rd := range f.Reads {
			row := finalRow{Key: rd.Key, Node: rd.Node, Value: strOrNull(rd.Value), Missing: list(rd.Missing), Disagrees: slices.Contains(f.Disagreements, rd.Key)}
			if rd.Revision != 0 {
				row.Rev = fmt.Sprint(rd.Revision)
			}
			if rd.Elements != nil {
				row.Elements = fmt.Sprint(*rd.Elements)
				row.Value = ""
			}
			v.FinalReads = append(v.FinalReads, row)
		}
	}
	return v
}

func checkLimit(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return fmtDur(d)
}

// worstText is a window's unavailability, saying when writes never came back.
func worstText(w FaultWindow) string {
	if !w.Recovered {
		return fmtDur(w.Unavailable) + " (no ok write after it)"
	}
	return fmtDur(w.Unavailable)
}

// renderReport renders report.html.
func renderReport(v reportView) ([]byte, error) {
	return render.Page("report", reportTemplate, template.FuncMap{"secs": secs}, v)
}

// reportTemplate is report.html's title, styles and body (render.Page).
const reportTemplate = `{{define "title"}}{{.Title}}: {{.Verdict}}{{end}}
{{define "style"}}.verdict { font-size: 3em; font-weight: 800; letter-spacing: 0.05em; padding: 0.25em 0.6em; border-radius: 8px; color: #fff; display: inline-block; }
.verdict.valid { background: #1e8e3e; }
.verdict.invalid { background: #c5221f; }
.verdict.unknown { background: #e8a200; color: #222; }
.reasons { font-size: 1.1em; margin: 0.6em 0 0.2em; padding-left: 1.2em; }
tr.total td { font-weight: bold; }
.cols { display: flex; flex-wrap: wrap; gap: 2em; }
{{end}}
{{define "body"}}<header>
<h1>{{.Title}}</h1>
<div id="verdict" class="verdict {{.VerdictClass}}">{{.Verdict}}</div>
{{with .Reasons}}<ul class="reasons">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p>{{range $i, $r := .Headline}}{{if $i}} · {{end}}<b>{{$r.K}}</b> {{$r.V}}{{end}}</p>
{{with .AnalysisErr}}<p class="bad">The history could not be analyzed: {{.}}</p>{{end}}
</header>

<h2>Configuration</h2>
<div class="cols">
<div><h3>Run</h3>
<table>{{range .RunRows}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table></div>
<div><h3>Workload</h3>
{{if .Workload}}<table>{{range .Workload}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table>{{else}}<p class="muted">not recorded</p>{{end}}</div>
<div><h3>Nemesis</h3>
{{if .Nemesis}}<table>{{range .Nemesis}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table>{{else}}<p class="muted">not recorded</p>{{end}}</div>
</div>
<h3>Reproduce</h3>
{{if .Command}}<pre>{{.Command}}</pre>{{else}}<p class="muted">The command line was not recorded.</p>{{end}}

<h2>Operations</h2>
<table>
<tr><th>operation</th><th>ok</th><th>fail</th><th>info</th><th>total</th></tr>
{{range .Ops}}<tr><td>{{.F}}</td><td class="num">{{.OK}}</td><td class="num">{{.Fail}}</td><td class="num">{{.Info}}</td><td class="num">{{.Total}}</td></tr>
{{end}}<tr class="total"><td>{{.OpsTotal.F}}</td><td class="num">{{.OpsTotal.OK}}</td><td class="num">{{.OpsTotal.Fail}}</td><td class="num">{{.OpsTotal.Info}}</td><td class="num">{{.OpsTotal.Total}}</td></tr>
</table>
<p class="muted">info: outcome unknown (timeout, lost connection, or still in flight at the end); such writes may have been applied.</p>

<h3>Latency</h3>
<table>
<tr><th>operation</th><th>outcome</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
{{range .Latency}}<tr><td>{{.F}}</td><td>{{.Outcome}}</td><td class="num">{{.Count}}</td>{{if .NoLatency}}<td colspan="5" class="muted">no completion time (outcome unknown)</td>{{else}}<td class="num">{{.P50}}</td><td class="num">{{.P90}}</td><td class="num">{{.P99}}</td><td class="num">{{.P999}}</td><td class="num">{{.Max}}</td>{{end}}</tr>
{{end}}</table>

<h2>Unavailability per fault</h2>
{{if .Faults}}
{{with .FaultStats}}<table>{{range .}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table>{{end}}
<table>
<tr><th>fault</th><th>targets</th><th>start</th><th>end</th><th>length</th><th>until first ok write</th><th>longest gap without ok writes</th><th>note</th></tr>
{{range .Faults}}<tr{{if not .Recovered}} class="bad"{{end}}><td>{{.Fault}}</td><td>{{.Targets}}</td><td class="num">{{.Start}}</td><td class="num">{{.End}}</td><td class="num">{{.Length}}</td><td class="num">{{.Unavailable}}</td><td class="num">{{.Gap}}</td><td>{{.Note}}</td></tr>
{{end}}</table>
<p class="muted">"Until first ok write": from the fault's start to the first ok write, cas or add invoked after it. "Longest gap": the longest time during the fault with no ok write completing.</p>
{{else}}<p class="muted">No faults were injected.</p>{{end}}

<h2>Checks</h2>
{{with .Lin}}<h3>Linearizability: {{.Verdict}}</h3>
<table>
<tr><th>keys checked</th><td class="num">{{.Keys}}</td></tr>
<tr><th>operations checked</th><td class="num">{{.Operations}}</td></tr>
<tr><th>search time</th><td class="num">{{.Duration}}</td></tr>
{{if .FailingKeys}}<tr class="bad"><th>failing keys</th><td>{{range $.LinFailing.Items}}{{.}} {{end}}{{with $.LinFailing.More}}… and {{.}} more{{end}}</td></tr>{{end}}
{{if .UnknownKeys}}<tr><th>undecided keys</th><td>{{range $.LinUnknown.Items}}{{.}} {{end}}{{with $.LinUnknown.More}}… and {{.}} more{{end}}</td></tr>{{end}}
</table>
{{if $.LinLink}}<p><a href="{{$.LinLink}}">Visualization of the failing keys (linearizability.html)</a></p>{{else if .VisualizationError}}<p class="muted">No visualization: {{.VisualizationError}}</p>{{end}}
{{end}}
{{with .Set}}<h3>Set: {{.Verdict}}</h3>
<table>
<tr><th>adds attempted</th><td class="num">{{.Attempted}}</td></tr>
<tr><th>adds acknowledged</th><td class="num">{{.Acknowledged}}</td></tr>
<tr><th>final reads compared</th><td class="num">{{.FinalReads}}</td></tr>
<tr{{if .Lost}} class="bad"{{end}}><th>lost (acknowledged, missing)</th><td>{{len .Lost}}{{if .Lost}}: {{range $.SetLost.Items}}{{.}} {{end}}{{with $.SetLost.More}}… and {{.}} more{{end}}{{end}}</td></tr>
<tr{{if .Unexpected}} class="bad"{{end}}><th>unexpected (never added)</th><td>{{len .Unexpected}}{{if .Unexpected}}: {{range $.SetUnexp.Items}}{{.}} {{end}}{{with $.SetUnexp.More}}… and {{.}} more{{end}}{{end}}</td></tr>
<tr{{if .FailedPresent}} class="bad"{{end}}><th>failed adds present</th><td>{{len .FailedPresent}}{{if .FailedPresent}}: {{range $.SetFailedPr.Items}}{{.}} {{end}}{{with $.SetFailedPr.More}}… and {{.}} more{{end}}{{end}}</td></tr>
<tr><th>recovered (info adds found)</th><td class="num">{{len .Recovered}}</td></tr>
</table>
{{end}}
{{with .Append}}<h3>List-append transactions (Elle): {{.Verdict}}</h3>
<pre{{if .Anomalies}} class="bad"{{end}}>{{range $.AppendText}}{{.}}
{{end}}</pre>
{{end}}
{{with .Watch}}<h3>Watches: {{.Verdict}}</h3>
<pre{{if .Anomalies}} class="bad"{{end}}>{{range $.WatchText}}{{.}}
{{end}}</pre>
<table><tr><th>watcher</th><th>member</th><th>watch</th><th>from</th><th>sessions</th><th>cuts</th><th>events</th><th>progress</th><th>anomalies</th><th>revisions wrong</th></tr>
{{range $.WatchRows}}<tr{{if .Anomalies}} class="bad"{{end}}><td class="num">{{.Watcher}}</td><td>{{.Node}}</td><td>{{.Text}}</td><td class="num">{{.Spec.StartRev}}</td><td class="num">{{.Sessions}}</td><td class="num">{{.Cuts}}</td><td class="num">{{.Events}}</td><td class="num">{{.Progress}}</td><td class="num">{{.Anomalies}}</td><td>{{.Wrong}}</td></tr>
{{end}}</table>
{{end}}
{{with .Lock}}<h3>Lock: {{.Verdict}}</h3>
<pre{{if eq .Verdict.String "invalid"}} class="bad"{{end}}>{{range $.LockText}}{{.}}
{{end}}</pre>
{{if .Overlaps}}<table><tr><th>lock</th><th>first holder</th><th>its lease</th><th>held</th><th>second holder</th><th>its lease</th><th>granted</th><th>faults meanwhile</th></tr>
{{range .Overlaps}}<tr{{if not .Fenced}} class="bad"{{end}}><td>{{.Lock}}</td><td>process {{.First.Process}} on {{.First.Node}}</td><td>{{.First.Lease}} ({{.First.TTL}} s)</td><td>{{secs .First.From}}–{{secs .First.To}}</td><td>process {{.Second.Process}} on {{.Second.Node}}</td><td>{{.Second.Lease}}</td><td>{{secs .Second.From}}</td><td>{{range .Faults}}{{.F}} {{.Targets}} {{secs .From}}–{{secs .To}} {{end}}</td></tr>
{{end}}</table>{{end}}
{{end}}
{{with .Lease}}<h3>Leases: {{.Verdict}}</h3>
<pre{{if .Anomalies}} class="bad"{{end}}>{{range $.LeaseText}}{{.}}
{{end}}</pre>
{{end}}
{{with .Final}}<h3>Final reads: {{.Verdict}}</h3>
{{if .Disagreements}}<p class="bad">Members disagree on {{len .Disagreements}} keys: {{range $.FinalDisagr.Items}}{{.}} {{end}}{{with $.FinalDisagr.More}}… and {{.}} more{{end}}</p>{{else}}<p>All members agree.</p>{{end}}
{{if .NotOK}}<p class="muted">{{.NotOK}} final reads failed or have an unknown outcome.</p>{{end}}
{{if $.FinalReads}}<table>
<tr><th>key</th><th>member</th><th>value</th><th>revision</th><th>elements</th><th>missing</th></tr>
{{range $.FinalReads}}<tr{{if .Disagrees}} class="bad"{{end}}><td>{{.Key}}</td><td>{{.Node}}</td><td>{{.Value}}</td><td class="num">{{.Rev}}</td><td class="num">{{.Elements}}</td><td>{{range .Missing.Items}}{{.}} {{end}}{{with .Missing.More}}… and {{.}} more{{end}}</td></tr>
{{end}}</table>{{end}}
{{end}}
{{if not (or .Lin .Set .Append .Watch .Lock .Lease .Final)}}<p class="muted">No sub-check ran.</p>{{end}}

<h2>Plots</h2>
<p class="muted">Shaded bands are fault intervals, labelled with the fault's name.</p>
{{range .Plots}}<h3>{{.Title}}</h3>
<img src="{{.Path}}" alt="{{.Title}}">
{{end}}
{{end}}
`

// watchRow is one watcher in the report's table.
type watchRow struct {
	watch.WatcherResult
	Text  string // SpecText
	Wrong string // the revisions it got wrong
}
