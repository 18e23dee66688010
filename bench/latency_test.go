package bench

import (
	"encoding/json"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TestLatencyOfPinsTheResultsLayout pins the Latency that latencyOf reads
// off a fixed histogram, as it appears in results.json (quorum.bench/v1).
func TestLatencyOfPinsTheResultsLayout(t *testing.T) {
	h := hdrhistogram.New(histMin, histMax, histSigFigs)
	for i := int64(1); i <= 5000; i++ {
		// 1µs .. about 2.5s, denser at the low end.
		if err := h.RecordValue(i*i/10 + 1); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(latencyOf(h))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"count":5000,"mean_ns":833591223,"p50_ns":625151000,"p90_ns":2025471000,"p99_ns":2451455000,"p999_ns":2496511000,"max_ns":2500607000,"cdf":[{"q":0,"latency_ns":1000},{"q":0.01,"latency_ns":251000},{"q":0.05,"latency_ns":6251000},{"q":0.1,"latency_ns":25007000},{"q":0.2,"latency_ns":100031000},{"q":0.3,"latency_ns":225023000},{"q":0.4,"latency_ns":400127000},{"q":0.5,"latency_ns":625151000},{"q":0.6,"latency_ns":900095000},{"q":0.7,"latency_ns":1225727000},{"q":0.8,"latency_ns":1600511000},{"q":0.9,"latency_ns":2025471000},{"q":0.95,"latency_ns":2256895000},{"q":0.97,"latency_ns":2353151000},{"q":0.98,"latency_ns":2402303000},{"q":0.99,"latency_ns":2451455000},{"q":0.995,"latency_ns":2476031000},{"q":0.999,"latency_ns":2496511000},{"q":0.9995,"latency_ns":2498559000},{"q":0.9999,"latency_ns":2500607000},{"q":1,"latency_ns":2500607000}]}`
	if string(b) != want {
		t.Errorf("latencyOf:\n got %s\nwant %s", b, want)
	}
	empty, err := json.Marshal(latencyOf(hdrhistogram.New(histMin, histMax, histSigFigs)))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"count":0,"mean_ns":0,"p50_ns":0,"p90_ns":0,"p99_ns":0,"p999_ns":0,"max_ns":0,"cdf":null}`; string(empty) != want {
		t.Errorf("latencyOf of an empty histogram:\n got %s\nwant %s", empty, want)
	}
}
