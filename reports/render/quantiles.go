package render

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Percentiles reads the percentiles ps (0 to 100) off h, whose values are
// counts of unit: percentile 0 is h.Min(), 100 is h.Max(), and any p
// between is h.ValueAtQuantile(p), the highest value equivalent to the
// ⌊p/100·n+0.5⌋-th smallest recorded one (at least the 1st). All are 0
// when h is empty. The returned slice is the caller's, one value per p.
func Percentiles(h *hdrhistogram.Histogram, unit time.Duration, ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if h.TotalCount() == 0 {
		return out
	}
	for i, p := range ps {
		var v int64
		switch p {
		case 0:
			v = h.Min()
		case 100:
			v = h.Max()
		default:
			v = h.ValueAtQuantile(p)
		}
		out[i] = time.Duration(v) * unit
	}
	return out
}
