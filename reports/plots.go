package reports

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/reports/render"
)

// Plot files, relative to the run directory, in report order.
const (
	PlotLatencyRaw       = PlotsDir + "/latency-raw.png"
	PlotLatencyQuantiles = PlotsDir + "/latency-quantiles.png"
	PlotThroughput       = PlotsDir + "/throughput.png"
	PlotAvailability     = PlotsDir + "/availability.png"
)

const (
	// legendWidth is the legend column's width (render.Chart).
	legendWidth = 2.3 * vg.Inch
	// maxScatterPoints bounds each scatter series; larger series are
	// thinned evenly, and the legend says so.
	maxScatterPoints = 20000
)

// Colours of the outcomes: ok green, fail red, info orange; blue and
// grey for the other series.
func colOK() color.RGBA    { return render.Palette(2) }
func colFail() color.RGBA  { return render.Palette(3) }
func colInfo() color.RGBA  { return render.Palette(1) }
func colBlue() color.RGBA  { return render.Palette(0) }
func colOther() color.RGBA { return render.Palette(7) }

// opColour is the colour of ok operations of each name in the scatter.
func opColour(f string) color.RGBA {
	switch f {
	case history.FRead:
		return colBlue()
	case history.FWrite, history.FAdd:
		return colOK()
	case history.FCAS:
		return render.Palette(4)
	default:
		return colOther()
	}
}

// opGlyph is the shape of each operation name in the scatter.
func opGlyph(f string) draw.GlyphDrawer {
	switch f {
	case history.FRead:
		return draw.CircleGlyph{}
	case history.FCAS:
		return draw.BoxGlyph{}
	default:
		return draw.PyramidGlyph{}
	}
}

// faultColour is the band colour of fault name i, in sorted name order
// (cycled): translucent red, purple, brown, cyan, olive and grey.
func faultColour(i int) color.NRGBA {
	cs := []struct {
		palette int
		alpha   uint8
	}{{3, 0x30}, {4, 0x30}, {5, 0x30}, {9, 0x30}, {8, 0x40}, {7, 0x30}}
	c := cs[i%len(cs)]
	return alpha(render.Palette(c.palette), c.alpha)
}

// faultBands shades the fault windows over the whole height of the data
// area; with labels set it writes their names instead (added last, so
// the names stay readable over the data).
type faultBands struct {
	windows []FaultWindow
	colour  map[string]color.NRGBA
	labels  bool
	style   text.Style
}

var _ plot.Plotter = faultBands{}

func (fb faultBands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	lineH := fb.style.Rectangle("M").Max.Y * 1.2
	for i, w := range fb.windows {
		x0 := max(trX(w.Start.Seconds()), c.Min.X)
		x1 := min(trX(w.End.Seconds()), c.Max.X)
		if x1-x0 < 1.5 {
			x1 = x0 + 1.5
		}
		if !fb.labels {
			c.FillPolygon(fb.colour[w.Fault], []vg.Point{
				{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y},
			})
			continue
		}
		sty := fb.style
		col := fb.colour[w.Fault]
		sty.Color = color.NRGBA{R: col.R / 2, G: col.G / 2, B: col.B / 2, A: 0xff}
		y := c.Max.Y - lineH*vg.Length(1+i%3)
		c.FillText(sty, vg.Point{X: x0 + 2, Y: y}, w.Fault)
	}
}

// bandThumb is the legend entry of one fault name.
type bandThumb color.NRGBA

func (b bandThumb) Thumbnail(c *draw.Canvas) {
	col := color.NRGBA(b)
	col.A = min(0xff, col.A*2)
	c.FillPolygon(col, []vg.Point{
		{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y},
	})
}

// chart is a render.Chart over the run's time with the fault windows
// shaded.
type chart struct {
	*render.Chart
	bands faultBands
}

// newChart starts a plot over [0, d] seconds with the fault windows shaded.
func newChart(title, yLabel string, s Summary) *chart {
	c := render.NewChart(title, "time since start (s)", yLabel, legendWidth)
	p := c.Plot
	p.X.Min = 0
	p.X.Max = max(s.Duration.Seconds(), 0.001)

	names := make([]string, 0, len(s.Faults))
	for _, w := range s.Faults {
		if !slices.Contains(names, w.Fault) {
			names = append(names, w.Fault)
		}
	}
	slices.Sort(names)
	colours := make(map[string]color.NRGBA, len(names))
	for i, n := range names {
		colours[n] = faultColour(i)
	}
	bands := faultBands{windows: s.Faults, colour: colours, style: text.Style{
		Font: font.From(plot.DefaultFont, 10), Handler: p.TextHandler, XAlign: draw.XLeft, YAlign: draw.YBottom,
	}}
	p.Add(bands)
	return &chart{Chart: c, bands: bands}
}

// addFaultLegend appends the fault names to the legend and puts their
// labels over the data; call it after adding the data.
func (c *chart) addFaultLegend() {
	names := make([]string, 0, len(c.bands.colour))
	for n := range c.bands.colour {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c.Legend.Add("fault: "+n, bandThumb(c.bands.colour[n]))
	}
	labels := c.bands
	labels.labels = true
	c.Plot.Add(labels)
}

// seconds converts a history time to the plots' x unit.
func seconds(ns int64) float64 { return time.Duration(ns).Seconds() }

// thin returns at most maxScatterPoints of pts, evenly spaced, and whether
// it dropped any.
func thin(pts plotter.XYs) (plotter.XYs, bool) {
	if len(pts) <= maxScatterPoints {
		return pts, false
	}
	out := make(plotter.XYs, 0, maxScatterPoints)
	for i := range maxScatterPoints {
		out = append(out, pts[i*len(pts)/maxScatterPoints])
	}
	return out, true
}

// latencyRawChart plots every client operation (final reads excluded) at
// its invocation time: ok and fail at their latency, coloured by name and
// red for failures, info at its timeout (or at the end of the history when
// it never completed) as orange crosses.
func latencyRawChart(s Summary, ops []history.Op) (*chart, error) {
	c := newChart("Latency of every operation", "latency (ms, log scale)", s)
	type series struct {
		f   string
		out history.Type
		pts plotter.XYs
	}
	var all []*series
	find := func(f string, out history.Type) *series {
		if out == history.Info {
			f = ""
		}
		for _, sr := range all {
			if sr.f == f && sr.out == out {
				return sr
			}
		}
		sr := &series{f: f, out: out}
		all = append(all, sr)
		return sr
	}
	lo, hi := math.Inf(1), 0.0
	for _, op := range ops {
		if untimed(op.F()) {
			continue
		}
		end := int64(s.Duration)
		if op.Complete != nil {
			end = op.Complete.Time
		}
		y := render.Millis(time.Duration(end - op.Invoke.Time))
		lo, hi = math.Min(lo, y), math.Max(hi, y)
		sr := find(op.F(), op.Type())
		sr.pts = append(sr.pts, plotter.XY{X: seconds(op.Invoke.Time), Y: y})
	}
	slices.SortFunc(all, func(a, b *series) int {
		if r := outcomeRank(a.out) - outcomeRank(b.out); r != 0 {
			return r
		}
		if a.f < b.f {
			return -1
		}
		if a.f > b.f {
			return 1
		}
		return 0
	})
	render.LogAxisY(c.Plot, lo, hi)
	for _, sr := range all {
		pts, thinned := thin(sr.pts)
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("scatter %s %s: %w", sr.f, sr.out, err)
		}
		name := sr.f + " " + string(sr.out)
		switch sr.out {
		case history.OK:
			sc.GlyphStyle = draw.GlyphStyle{Shape: opGlyph(sr.f), Radius: 1.8, Color: alpha(opColour(sr.f), 0xa0)}
		case history.Fail:
			sc.GlyphStyle = draw.GlyphStyle{Shape: opGlyph(sr.f), Radius: 2.2, Color: alpha(colFail(), 0xc0)}
		default:
			sc.GlyphStyle = draw.GlyphStyle{Shape: draw.CrossGlyph{}, Radius: 3, Color: colInfo()}
			name = "info (at timeout/end)"
		}
		if thinned {
			name += fmt.Sprintf(" (%d of %d)", len(pts), len(sr.pts))
		}
		c.Plot.Add(sc)
		c.Legend.Add(name, thumbGlyph{sc.GlyphStyle})
	}
	c.addFaultLegend()
	return c, nil
}

// thumbGlyph is a legend thumbnail drawing a glyph a little larger.
type thumbGlyph struct{ sty draw.GlyphStyle }

func (t thumbGlyph) Thumbnail(c *draw.Canvas) {
	sty := t.sty
	sty.Radius = max(sty.Radius, 3)
	c.DrawGlyph(sty, c.Center())
}

func alpha(c color.RGBA, a uint8) color.NRGBA {
	return color.NRGBA{R: c.R, G: c.G, B: c.B, A: a}
}

// addRuns adds a line through the points of each bucket that has a value,
// broken where buckets have none; only the first run gets a legend entry.
func (c *chart) addRuns(name string, col color.Color, dashes []vg.Length, s Summary, value func(Bucket) (float64, bool)) error {
	var runs []plotter.XYs
	var cur plotter.XYs
	for _, b := range s.Timeline {
		v, ok := value(b)
		if !ok {
			if len(cur) > 0 {
				runs = append(runs, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, plotter.XY{X: (b.Start + s.Bucket/2).Seconds(), Y: v})
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	style := draw.LineStyle{Color: col, Width: vg.Points(1.8), Dashes: dashes}
	glyph := draw.GlyphStyle{Shape: draw.CircleGlyph{}, Radius: 1.6, Color: col}
	for i, r := range runs {
		l, pts, err := plotter.NewLinePoints(r)
		if err != nil {
			return fmt.Errorf("line %s: %w", name, err)
		}
		l.LineStyle = style
		pts.GlyphStyle = glyph
		c.Plot.Add(l, pts)
		if i == 0 {
			c.Legend.Add(name, l, pts)
		}
	}
	if len(runs) == 0 {
		c.Legend.Add(name+" (no data)", &plotter.Line{LineStyle: style})
	}
	return nil
}

func latencyQuantilesChart(s Summary) (*chart, error) {
	c := newChart(fmt.Sprintf("Latency quantiles of ok operations per %v", s.Bucket), "latency (ms, log scale)", s)
	lo, hi := math.Inf(1), 0.0
	for _, b := range s.Timeline {
		if b.Latency != nil {
			lo = math.Min(lo, render.Millis(b.Latency.P50))
			hi = math.Max(hi, render.Millis(b.Latency.P99))
		}
	}
	render.LogAxisY(c.Plot, lo, hi)
	qs := []struct {
		name string
		col  color.Color
		get  func(*BucketLatency) time.Duration
	}{
		{"p50", colBlue(), func(l *BucketLatency) time.Duration { return l.P50 }},
		{"p95", colInfo(), func(l *BucketLatency) time.Duration { return l.P95 }},
		{"p99", colFail(), func(l *BucketLatency) time.Duration { return l.P99 }},
	}
	for _, q := range qs {
		err := c.addRuns(q.name, q.col, nil, s, func(b Bucket) (float64, bool) {
			if b.Latency == nil {
				return 0, false
			}
			return render.Millis(q.get(b.Latency)), true
		})
		if err != nil {
			return nil, err
		}
	}
	c.addFaultLegend()
	return c, nil
}

func throughputChart(s Summary) (*chart, error) {
	c := newChart(fmt.Sprintf("Throughput by outcome per %v", s.Bucket), "operations completed per second", s)
	c.Plot.Y.Min = 0
	top := 1.0
	for _, b := range s.Timeline {
		top = math.Max(top, float64(max(b.OK, b.Fail, b.Info))/s.Bucket.Seconds())
	}
	c.Plot.Y.Max = top * 1.2 // room for the fault labels
	lines := []struct {
		name   string
		col    color.Color
		dashes []vg.Length
		get    func(Bucket) int
	}{
		{"ok", colOK(), nil, func(b Bucket) int { return b.OK }},
		{"fail", colFail(), nil, func(b Bucket) int { return b.Fail }},
		{"info", colInfo(), []vg.Length{vg.Points(4), vg.Points(2)}, func(b Bucket) int { return b.Info }},
	}
	for _, l := range lines {
		err := c.addRuns(l.name, l.col, l.dashes, s, func(b Bucket) (float64, bool) {
			return float64(l.get(b)) / s.Bucket.Seconds(), true
		})
		if err != nil {
			return nil, err
		}
	}
	c.addFaultLegend()
	return c, nil
}

func availabilityChart(s Summary) (*chart, error) {
	c := newChart(fmt.Sprintf("Availability per %v: ok / completed operations", s.Bucket), "availability (%)", s)
	c.Plot.Y.Min = 0
	c.Plot.Y.Max = 112 // room for the fault labels
	var ticks plot.ConstantTicks
	for v := 0; v <= 100; v += 10 {
		tk := plot.Tick{Value: float64(v)}
		if v%20 == 0 {
			tk.Label = fmt.Sprint(v)
		}
		ticks = append(ticks, tk)
	}
	c.Plot.Y.Tick.Marker = ticks
	err := c.addRuns("availability", colBlue(), nil, s, func(b Bucket) (float64, bool) {
		if b.Availability == nil {
			return 0, false
		}
		return *b.Availability * 100, true
	})
	if err != nil {
		return nil, err
	}
	c.addFaultLegend()
	return c, nil
}

// writePlots renders the four plots into dir/plots and returns them in
// report order.
func writePlots(dir string, s Summary, ops []history.Op) ([]render.PlotFile, error) {
	type job struct {
		path, title string
		build       func() (*chart, error)
	}
	jobs := []job{
		{PlotLatencyRaw, "Latency of every operation", func() (*chart, error) { return latencyRawChart(s, ops) }},
		{PlotLatencyQuantiles, "Latency quantiles over time", func() (*chart, error) { return latencyQuantilesChart(s) }},
		{PlotThroughput, "Throughput over time", func() (*chart, error) { return throughputChart(s) }},
		{PlotAvailability, "Availability over time", func() (*chart, error) { return availabilityChart(s) }},
	}
	var out []render.PlotFile
	for _, j := range jobs {
		c, err := j.build()
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", j.path, err)
		}
		if err := c.WritePNG(filepath.Join(dir, filepath.FromSlash(j.path))); err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		out = append(out, render.PlotFile{Path: j.path, Title: j.title})
	}
	return out, nil
}
