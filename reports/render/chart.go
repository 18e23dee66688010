// Package render holds what the test report (package reports) and the
// benchmark report (package bench) have in common: the look of their
// charts (Chart, Palette, LogAxisY), the skeleton and stylesheet of their
// HTML pages (Page) and the latency percentiles read off an HdrHistogram
// (Percentiles). It knows nothing of histories, verdicts or benchmark
// cells: each report builds its own figures and tables on top of it, and
// the arrows point down, from reports and bench to here.
package render

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/quorum-kv/quorum/internal/atomicfile"
)

// Image geometry of every chart: the data area on the left, the legend in
// a column on the right so it never hides data.
const (
	Width  = 11 * vg.Inch
	Height = 4.6 * vg.Inch
)

// PlotFile is one written chart, as a report lists it.
type PlotFile struct {
	Path  string // relative to the run directory, slash-separated
	Title string
}

// Chart is a plot under construction with its own legend, drawn in a
// column of width LegendWidth right of the plot. Add data to Plot and
// entries to Legend, then call PNG or WritePNG.
type Chart struct {
	Plot        *plot.Plot
	Legend      plot.Legend
	LegendWidth vg.Length
}

// NewChart starts a chart in the reports' look: a 15pt title, 12pt axis
// labels, 11pt tick labels, a light grey grid, and an 11pt legend at the
// top left of its column.
func NewChart(title, xLabel, yLabel string, legendWidth vg.Length) *Chart {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 15
	p.Title.Padding = 6
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = 12
		a.Tick.Label.Font.Size = 11
	}
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 0xdd}
	grid.Horizontal.Color = color.Gray{Y: 0xdd}
	p.Add(grid)
	legend := plot.NewLegend()
	legend.Top = true
	legend.Left = true
	legend.TextStyle.Font.Size = 11
	legend.Padding = 3
	return &Chart{Plot: p, Legend: legend, LegendWidth: legendWidth}
}

// PNG renders the chart as a Width x Height PNG.
func (c *Chart) PNG() ([]byte, error) {
	cw, err := draw.NewFormattedCanvas(Width, Height, "png")
	if err != nil {
		return nil, err
	}
	dc := draw.New(cw)
	c.Plot.Draw(draw.Crop(dc, 0, -c.LegendWidth, 0, 0))
	c.Legend.Draw(draw.Crop(dc, Width-c.LegendWidth+8, -4, 0, -30))
	var buf bytes.Buffer
	if _, err := cw.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WritePNG renders the chart and replaces the file at path with it
// atomically.
func (c *Chart) WritePNG(path string) error {
	b, err := c.PNG()
	if err != nil {
		return fmt.Errorf("render %s: %w", path, err)
	}
	return atomicfile.Write(path, b)
}

// Palette is the colour of series i, cycling through matplotlib's tab10:
// 0 blue, 1 orange, 2 green, 3 red, 4 purple, 5 brown, 6 pink, 7 grey,
// 8 olive, 9 cyan.
func Palette(i int) color.RGBA {
	cs := [...]color.RGBA{
		{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
		{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
		{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
	}
	return cs[i%len(cs)]
}

// Millis is a latency in milliseconds, the charts' latency unit, at least
// 1µs so it shows on a log axis.
func Millis(d time.Duration) float64 { return math.Max(float64(d)/float64(time.Millisecond), 0.001) }

// LogAxisY sets p's y axis to a log scale over [lo, hi], widened to whole
// decades (a non-positive lo becomes 0.1).
func LogAxisY(p *plot.Plot, lo, hi float64) {
	if !(lo > 0) || math.IsInf(lo, 0) {
		lo = 0.1
	}
	if !(hi > lo) {
		hi = lo * 10
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min = math.Pow10(int(math.Floor(math.Log10(lo))))
	p.Y.Max = math.Pow10(int(math.Ceil(math.Log10(hi))))
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min * 10
	}
}
