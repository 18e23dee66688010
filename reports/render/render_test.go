package render

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func TestChartIsAnElevenByFourPointSixInchPNG(t *testing.T) {
	for _, legend := range []vg.Length{2.3 * vg.Inch, 2.6 * vg.Inch} {
		c := NewChart("title", "x", "latency (ms, log scale)", legend)
		l, err := plotter.NewLine(plotter.XYs{{X: 1, Y: 0.5}, {X: 2, Y: 30}, {X: 3, Y: 700}})
		if err != nil {
			t.Fatal(err)
		}
		c.Plot.Add(l)
		c.Legend.Add("series", l)
		LogAxisY(c.Plot, 0.5, 700)
		path := filepath.Join(t.TempDir(), "c.png")
		if err := c.WritePNG(path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		// 11 x 4.6 in at gonum's 96 dpi.
		if got := img.Bounds().Size(); got.X != 1056 || got.Y != 442 {
			t.Errorf("legend %v: image is %dx%d, want 1056x442", legend, got.X, got.Y)
		}
	}
}

func TestLogAxisYWidensToWholeDecades(t *testing.T) {
	tests := []struct{ lo, hi, wantMin, wantMax float64 }{
		{0.5, 700, 0.1, 1000},
		{3, 3, 1, 100},    // hi not above lo: one decade up
		{0, 50, 0.1, 100}, // non-positive lo
		{10, 100, 10, 100},
	}
	for _, tt := range tests {
		c := NewChart("", "", "", vg.Inch)
		LogAxisY(c.Plot, tt.lo, tt.hi)
		if c.Plot.Y.Min != tt.wantMin || c.Plot.Y.Max != tt.wantMax {
			t.Errorf("LogAxisY(%v, %v): [%v, %v], want [%v, %v]", tt.lo, tt.hi, c.Plot.Y.Min, c.Plot.Y.Max, tt.wantMin, tt.wantMax)
		}
	}
}

func TestPercentilesReadMinAndMaxAtTheEnds(t *testing.T) {
	h := hdrhistogram.New(1, 60_000_000, 3)
	for v := int64(1); v <= 1000; v++ {
		if err := h.RecordValue(v * 3); err != nil {
			t.Fatal(err)
		}
	}
	got := Percentiles(h, time.Microsecond, 0, 50, 99.9, 100)
	want := []time.Duration{
		time.Duration(h.Min()) * time.Microsecond,
		time.Duration(h.ValueAtQuantile(50)) * time.Microsecond,
		time.Duration(h.ValueAtQuantile(99.9)) * time.Microsecond,
		time.Duration(h.Max()) * time.Microsecond,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("percentile %d: %v, want %v", i, got[i], want[i])
		}
	}
	if got[0] != 3*time.Microsecond || got[1] != 1500*time.Microsecond {
		t.Errorf("min %v, p50 %v: want 3µs and 1.5ms (exact below 2048µs)", got[0], got[1])
	}
}

func TestPercentilesOfAnEmptyHistogramAreZero(t *testing.T) {
	got := Percentiles(hdrhistogram.New(1, 1000, 3), time.Microsecond, 0, 50, 100)
	if len(got) != 3 || got[0] != 0 || got[1] != 0 || got[2] != 0 {
		t.Errorf("Percentiles of an empty histogram: %v, want three zeros", got)
	}
}

func TestPagePutsTitleStyleAndBodyInTheSkeleton(t *testing.T) {
	defs := `{{define "title"}}{{.}} and co{{end}}
{{define "style"}}.extra { color: red; }
{{end}}
{{define "body"}}<p>{{up .}}</p>
{{end}}`
	page, err := Page("test page", defs, map[string]any{"up": strings.ToUpper}, "<x>")
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, want := range []string{
		"<!DOCTYPE html>\n", "<title>&lt;x&gt; and co</title>",
		"img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0 1em; }\n.extra { color: red; }\n</style>",
		"<body>\n<p>&lt;X&gt;</p>\n</body>\n</html>\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page does not contain %q:\n%s", want, s)
		}
	}
}

func TestPageWithoutStyleAndErrorsNameThePage(t *testing.T) {
	page, err := Page("p", `{{define "title"}}t{{end}}{{define "body"}}b{{end}}`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "1em; }\n</style>") {
		t.Errorf("page without a style template:\n%s", page)
	}
	if _, err := Page("bench report", `{{define "title"}}{{end`, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "parse bench report template: ") {
		t.Errorf("parse error: %v", err)
	}
	if _, err := Page("bench report", `{{define "title"}}{{end}}{{define "body"}}{{.Missing}}{{end}}`, nil, 1); err == nil || !strings.HasPrefix(err.Error(), "render bench report: ") {
		t.Errorf("execute error: %v", err)
	}
}
