package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/quorum-kv/quorum/reports/render"
)

// The plots share the test report's look (render.Chart): 11x4.6 in PNGs,
// a light grid, the legend in a column right of the data, here a wider
// one for the "server workload clients" names.
const legendWidth = 2.6 * vg.Inch

// dashes is the line style of server i: solid for the baseline.
func dashes(i int) []vg.Length {
	ds := [][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)}, {vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}}
	return ds[i%len(ds)]
}

func glyph(i int) draw.GlyphDrawer {
	gs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{}}
	return gs[i%len(gs)]
}

// addLine adds a line with points to the chart and the legend.
func addLine(c *render.Chart, name string, pts plotter.XYs, col color.Color, dash []vg.Length, g draw.GlyphDrawer) error {
	if len(pts) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color, l.Width, l.Dashes = col, vg.Points(1.6), dash
	s.Color, s.Shape, s.Radius = col, g, vg.Points(3)
	c.Plot.Add(l, s)
	c.Legend.Add(name, l, s)
	return nil
}

// sizeAxis makes x the cluster sizes, with a tick at each.
func sizeAxis(p *plot.Plot, sizes []int) {
	var ticks []plot.Tick
	for _, s := range sizes {
		ticks = append(ticks, plot.Tick{Value: float64(s), Label: fmt.Sprint(s)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	if len(sizes) > 0 {
		p.X.Min = float64(slices.Min(sizes)) - 0.5
		p.X.Max = float64(slices.Max(sizes)) + 0.5
	}
}

func serverIndex(servers []Server, label string) int {
	return max(0, slices.IndexFunc(servers, func(s Server) bool { return s.Label == label }))
}

// writePlots draws every plot of res into dir/plots.
func writePlots(dir string, res Results) ([]render.PlotFile, error) {
	if err := os.MkdirAll(filepath.Join(dir, PlotsDir), 0o755); err != nil {
		return nil, fmt.Errorf("create plots directory: %w", err)
	}
	var files []render.PlotFile
	save := func(name, title string, c *render.Chart) error {
		if err := c.WritePNG(filepath.Join(dir, PlotsDir, name)); err != nil {
			return err
		}
		files = append(files, render.PlotFile{Path: PlotsDir + "/" + name, Title: title})
		return nil
	}
	st, sum, servers := res.Run.Settings, res.Summary, res.Run.Servers
	// The plots are of the request-loop cells without idle watchers; the
	// watch and memory cells are in the report's tables.
	sum.Load = slices.DeleteFunc(slices.Clone(sum.Load), func(l LoadSummary) bool {
		return l.Watchers > 0 || l.IdleWatchers > 0 || l.Leases > 0 || !clientWorkload(l.Workload)
	})
	if len(sum.Load) > 0 {
		c, err := throughputChart(st, sum, servers)
		if err != nil {
			return nil, err
		}
		if err := save("throughput.png", "Throughput vs cluster size", c); err != nil {
			return nil, err
		}
		for _, w := range st.Workloads {
			for _, cl := range st.Clients {
				c, err := latencyChart(st, sum, servers, w, cl)
				if err != nil {
					return nil, err
				}
				if c != nil {
					if err := save(fmt.Sprintf("latency-%s-c%d.png", w, cl), fmt.Sprintf("Latency quantiles vs cluster size: %s, %d clients", w, cl), c); err != nil {
						return nil, err
					}
				}
				c, err = cdfChart(sum, servers, w, cl)
				if err != nil {
					return nil, err
				}
				if c != nil {
					if err := save(fmt.Sprintf("cdf-%s-c%d.png", w, cl), fmt.Sprintf("Latency CDF per cluster size: %s, %d clients", w, cl), c); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if len(sum.Availability) > 0 {
		c, err := unavailabilityChart(st, sum, servers)
		if err != nil {
			return nil, err
		}
		if err := save("unavailability.png", "Write unavailability window per fault and cluster size", c); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func throughputChart(st Settings, sum Summary, servers []Server) (*render.Chart, error) {
	c := render.NewChart("Throughput vs cluster size (median over rounds)", "cluster size (members)", "requests/s (log scale)", legendWidth)
	sizeAxis(c.Plot, st.Sizes)
	lo, hi := math.Inf(1), 0.0
	i := 0
	for _, w := range st.Workloads {
		for _, cl := range st.Clients {
			for si, srv := range servers {
				var pts plotter.XYs
				for _, l := range sum.Load {
					if l.Server == srv.Label && l.Workload == w && l.Clients == cl && l.Throughput > 0 {
						pts = append(pts, plotter.XY{X: float64(l.Size), Y: l.Throughput})
						lo, hi = min(lo, l.Throughput), max(hi, l.Throughput)
					}
				}
				name := fmt.Sprintf("%s %s %dc", srv.Label, w, cl)
				if err := addLine(c, name, pts, render.Palette(i), dashes(si), glyph(si)); err != nil {
					return nil, err
				}
			}
			i++
		}
	}
	render.LogAxisY(c.Plot, lo, hi)
	return c, nil
}

func latencyChart(st Settings, sum Summary, servers []Server, w string, clients int) (*render.Chart, error) {
	c := render.NewChart(fmt.Sprintf("Latency vs cluster size: %s, %d clients", w, clients), "cluster size (members)", "latency (ms, log scale)", legendWidth)
	sizeAxis(c.Plot, st.Sizes)
	qs := []struct {
		name string
		of   func(LoadSummary) time.Duration
	}{
		{"p50", func(l LoadSummary) time.Duration { return l.P50 }},
		{"p90", func(l LoadSummary) time.Duration { return l.P90 }},
		{"p99", func(l LoadSummary) time.Duration { return l.P99 }},
		{"p99.9", func(l LoadSummary) time.Duration { return l.P999 }},
		{"max", func(l LoadSummary) time.Duration { return l.Max }},
	}
	lo, hi := math.Inf(1), 0.0
	any := false
	for si, srv := range servers {
		for qi, q := range qs {
			var pts plotter.XYs
			for _, l := range sum.Load {
				if l.Server == srv.Label && l.Workload == w && l.Clients == clients && l.Throughput > 0 {
					y := render.Millis(q.of(l))
					pts = append(pts, plotter.XY{X: float64(l.Size), Y: y})
					lo, hi = min(lo, y), max(hi, y)
				}
			}
			any = any || len(pts) > 0
			if err := addLine(c, srv.Label+" "+q.name, pts, render.Palette(qi), dashes(si), glyph(si)); err != nil {
				return nil, err
			}
		}
	}
	if !any {
		return nil, nil
	}
	render.LogAxisY(c.Plot, lo, hi)
	return c, nil
}

func cdfChart(sum Summary, servers []Server, w string, clients int) (*render.Chart, error) {
	c := render.NewChart(fmt.Sprintf("Latency CDF: %s, %d clients", w, clients), "latency (ms, log scale)", "fraction of requests", legendWidth)
	c.Plot.X.Scale = plot.LogScale{}
	c.Plot.X.Tick.Marker = plot.LogTicks{Prec: -1}
	c.Plot.Y.Min, c.Plot.Y.Max = 0, 1
	lo, hi := math.Inf(1), 0.0
	sizes := []int{}
	for _, l := range sum.Load {
		if !slices.Contains(sizes, l.Size) {
			sizes = append(sizes, l.Size)
		}
	}
	any := false
	for _, l := range sum.Load {
		if l.Workload != w || l.Clients != clients || len(l.CDF) == 0 {
			continue
		}
		var pts plotter.XYs
		for _, p := range l.CDF {
			x := render.Millis(p.Latency)
			pts = append(pts, plotter.XY{X: x, Y: p.Q})
			lo, hi = min(lo, x), max(hi, x)
		}
		si := serverIndex(servers, l.Server)
		if err := addLine(c, fmt.Sprintf("%s %d members", l.Server, l.Size), pts, render.Palette(slices.Index(sizes, l.Size)), dashes(si), glyph(si)); err != nil {
			return nil, err
		}
		any = true
	}
	if !any {
		return nil, nil
	}
	c.Plot.X.Min = math.Pow10(int(math.Floor(math.Log10(lo))))
	c.Plot.X.Max = math.Pow10(int(math.Ceil(math.Log10(hi))))
	return c, nil
}

func unavailabilityChart(st Settings, sum Summary, servers []Server) (*render.Chart, error) {
	c := render.NewChart("Write unavailability after each fault (median line, max as hollow marks)", "cluster size (members)", "seconds until a write is acknowledged", legendWidth)
	sizeAxis(c.Plot, st.Sizes)
	wait := st.FaultWait.Seconds()
	c.Plot.Y.Min, c.Plot.Y.Max = 0, wait*1.08
	cap := plotter.NewFunction(func(float64) float64 { return wait })
	cap.Color, cap.Dashes, cap.Width = color.RGBA{0xc5, 0x22, 0x1f, 0xff}, []vg.Length{vg.Points(2), vg.Points(3)}, vg.Points(1)
	c.Plot.Add(cap)
	c.Legend.Add(fmt.Sprintf("bound %gs: not writable", wait), cap)
	for si, srv := range servers {
		for fi, f := range st.Faults {
			var med, mx plotter.XYs
			for _, a := range sum.Availability {
				if a.Server != srv.Label || a.Fault != f {
					continue
				}
				y, ymax := wait, wait
				if a.WritableTrials > 0 {
					y, ymax = a.Median.Seconds(), a.Max.Seconds()
				}
				med = append(med, plotter.XY{X: float64(a.Size), Y: y})
				mx = append(mx, plotter.XY{X: float64(a.Size), Y: ymax})
			}
			if len(med) == 0 {
				continue
			}
			if err := addLine(c, srv.Label+" "+f, med, render.Palette(fi), dashes(si), glyph(si)); err != nil {
				return nil, err
			}
			s, err := plotter.NewScatter(mx)
			if err != nil {
				return nil, err
			}
			s.Color, s.Shape, s.Radius = render.Palette(fi), draw.RingGlyph{}, vg.Points(4)
			c.Plot.Add(s)
		}
	}
	return c, nil
}
