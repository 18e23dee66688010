package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// mixinNotYet lists what etcd's mixin (server/testdata/mixin) queries that
// quorumd cannot export yet, each with the reason. A listed query that a
// member DOES answer fails the test: strike it from the list when the
// feature lands.
var mixinNotYet = map[string]string{}

// scrapeGenerated are names the mixin uses that no target exports:
// Prometheus makes them when it scrapes.
var scrapeGenerated = map[string]bool{"up": true}

// mixinQuery is one metric selector found in the mixin: a metric name and
// its label matchers.
type mixinQuery struct {
	name string
	// equal are the label="value" matchers with literal values (no
	// dashboard variable or jsonnet format); labels every label name
	// matched on, however.
	equal  map[string]string
	labels []string
}

// key is how the query appears in mixinNotYet: the name and its literal
// matchers, sorted.
func (q mixinQuery) key() string {
	if len(q.equal) == 0 {
		return q.name
	}
	var ms []string
	for l, v := range q.equal {
		ms = append(ms, fmt.Sprintf("%s=%q", l, v))
	}
	sort.Strings(ms)
	return q.name + "{" + strings.Join(ms, ",") + "}"
}

var (
	// A selector: a metric name and, optionally, its braces. Jsonnet's
	// format directives (%(x)s, %s) inside the braces are matched too.
	selectorRE = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^{}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	// A metric name the mixin's metrics can have: etcd's own, gRPC's, the
	// process and Go collectors', Prometheus's up.
	metricNameRE = regexp.MustCompile(`^(etcd_|grpc_server_|process_|go_|up$)`)
	// PromQL strings inside the libsonnet: '...' and |||...||| blocks.
	exprRE = regexp.MustCompile(`(?s)\|\|\|(.*?)\|\|\||'((?:[^'\\]|\\.)*)'`)
)

// mixinQueries parses every PromQL expression of the mixin's alerts and
// dashboards. Config keys (etcd_selector, etcd_instance_labels, …, the
// names in %(…)s) are not metrics and are dropped.
func mixinQueries(t *testing.T) []mixinQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "mixin", "*", "*.libsonnet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no mixin files under testdata/mixin: %v", err)
	}
	cfg, err := os.ReadFile(filepath.Join("testdata", "mixin", "config.libsonnet"))
	if err != nil {
		t.Fatal(err)
	}
	configKeys := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*([a-zA-Z_0-9]+):`).FindAllStringSubmatch(string(cfg), -1) {
		configKeys[m[1]] = true
	}
	seen := map[string]bool{}
	var qs []mixinQuery
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exprRE.FindAllStringSubmatch(string(b), -1) {
			expr := e[1] + e[2]
			// %(name)s directives name config keys, not metrics.
			expr = regexp.MustCompile(`%\([a-zA-Z_0-9]+\)s`).ReplaceAllString(expr, "%s")
			for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
				name := m[1]
				if !metricNameRE.MatchString(name) || configKeys[name] {
					continue
				}
				q := mixinQuery{name: name, equal: map[string]string{}}
				for _, mm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
					l, op, v := mm[1], mm[2], mm[3]
					if l == "s" { // %s="$cluster": the cluster label, by config
						continue
					}
					q.labels = append(q.labels, l)
					if op == "=" && !strings.ContainsAny(v, "$%") {
						q.equal[l] = v
					}
				}
				if !seen[q.key()+strings.Join(q.labels, ",")] {
					seen[q.key()+strings.Join(q.labels, ",")] = true
					qs = append(qs, q)
				}
			}
		}
	}
	return qs
}

func TestMixinQueriesParse(t *testing.T) {
	qs := mixinQueries(t)
	names := map[string]bool{}
	for _, q := range qs {
		names[q.name] = true
		t.Logf("%s (labels %v)", q.key(), q.labels)
	}
	// The parse must find what etcd's alerts are made of.
	for _, want := range []string{"etcd_server_has_leader", "grpc_server_handled_total", "etcd_disk_wal_fsync_duration_seconds_bucket",
		"etcd_network_peer_round_trip_time_seconds_bucket", "etcd_server_quota_backend_bytes", "up", "process_resident_memory_bytes"} {
		if !names[want] {
			t.Errorf("mixin parse misses %s", want)
		}
	}
	for n := range names {
		if strings.HasPrefix(n, "etcd_instance") || strings.HasPrefix(n, "etcd_selector") {
			t.Errorf("config key %s taken for a metric", n)
		}
	}
}

// scrape fetches url and parses the exposition.
func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// answers reports whether the scraped families answer q: a family of that
// name (for name_bucket, _sum or _count, a histogram or summary family
// without the suffix) carrying every label q matches on, with a series
// that has q's literal label values.
func answers(fams map[string]*dto.MetricFamily, q mixinQuery) bool {
	f := fams[q.name]
	if f == nil {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(q.name, suf)
			if g := fams[base]; ok && g != nil && (g.GetType() == dto.MetricType_HISTOGRAM || suf != "_bucket" && g.GetType() == dto.MetricType_SUMMARY) {
				f = g
			}
		}
	}
	if f == nil {
		return false
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for _, l := range q.labels {
			if _, found := have[l]; !found {
				ok = false
			}
		}
		for l, v := range q.equal {
			if have[l] != v {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestMixinMetricsExist runs a 3-member cluster with --metrics extensive,
// does a little of everything, and requires every metric etcd's alerts and
// dashboards (contrib/mixin) query to be exported by every member with the
// labels the queries match on; the only exceptions are mixinNotYet's.
func TestMixinMetricsExist(t *testing.T) {
	qs := mixinQueries(t)
	tc := startCluster(t, 3, "--metrics", "extensive")
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	for i := range 10 {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("k1"), ">", 0)).Then(clientv3.OpPut("k1", "w"), clientv3.OpGet("k2")).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "k9"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, ""); err == nil { // an empty key: a failed RPC, code InvalidArgument
		t.Fatal("empty key accepted")
	}
	t.Logf("%d queries in the mixin", len(qs))
	for _, n := range tc.Nodes() {
		// The series carry real values, not just their zero.
		mustHaveValues := []string{"etcd_network_peer_round_trip_time_seconds", "etcd_network_peer_sent_bytes_total",
			"etcd_network_peer_received_bytes_total", "etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds",
			"etcd_mvcc_put_total", "etcd_mvcc_db_total_size_in_bytes", "etcd_server_quota_backend_bytes", "etcd_server_apply_duration_seconds"}
		var missing, present []string
		// The first round-trip probe may find a peer still starting; wait
		// for a later one rather than fail.
		deadline := time.Now().Add(15 * time.Second)
		for {
			fams, err := scrape(ctx, n.ClientURL()+"/metrics")
			if err != nil {
				t.Fatalf("%s: %v", n.Name(), err)
			}
			missing, present = nil, nil
			for _, q := range qs {
				if scrapeGenerated[q.name] {
					continue
				}
				_, allowed := mixinNotYet[q.key()]
				switch ok := answers(fams, q); {
				case !ok && !allowed:
					missing = append(missing, q.key()+" (labels "+strings.Join(q.labels, ",")+"): not exported")
				case ok && allowed:
					present = append(present, q.key())
				}
			}
			for _, name := range mustHaveValues {
				if v := total(fams[name]); v <= 0 {
					missing = append(missing, fmt.Sprintf("%s: %v, not the member's real value", name, v))
				}
			}
			if len(missing) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		slices.Sort(missing)
		for _, m := range missing {
			t.Errorf("%s: what etcd's mixin queries: %s", n.Name(), m)
		}
		for _, p := range present {
			t.Errorf("%s exports %s now: strike it from mixinNotYet (%s)", n.Name(), p, mixinNotYet[p])
		}
	}
	// Every allowed query must still be one the mixin makes.
	keys := map[string]bool{}
	for _, q := range qs {
		keys[q.key()] = true
	}
	for k := range mixinNotYet {
		if !keys[k] {
			t.Errorf("mixinNotYet lists %s, which the mixin no longer queries", k)
		}
	}
}

// total sums a family's series: counter and gauge values, histogram counts.
func total(f *dto.MetricFamily) float64 {
	var v float64
	for _, m := range f.GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return v
}

// TestMetricsListenerServesMetricsAndHealth: --listen-metrics-urls serves
// the member's own registry on /metrics, and /health, /livez, /readyz, as
// etcd's metrics listeners do.
func TestMetricsListenerServesMetricsAndHealth(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := "http://" + l.Addr().String()
	l.Close()
	tc := startCluster(t, 1, "--listen-metrics-urls", metricsURL)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := tc.Nodes()[0]
	if _, err := tc.client(n.ClientURL()).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	viaMetrics, err := scrape(ctx, metricsURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	viaClient, err := scrape(ctx, n.ClientURL()+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for name := range viaClient {
		if viaMetrics[name] == nil {
			t.Errorf("%s on the client URL but not on --listen-metrics-urls", name)
		}
	}
	if f := viaMetrics["etcd_mvcc_put_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() < 1 {
		t.Errorf("etcd_mvcc_put_total on the metrics listener = %v, want the member's count", f)
	}
	for path, want := range map[string]string{"/health": `"health":"true"`, "/livez": "ok", "/readyz": "ok"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s on the metrics listener = %d %q, want %q", path, resp.StatusCode, b, want)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL+"/v3/kv/range", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the metrics listener serves %s (%d); it serves only metrics and health", req.URL.Path, resp.StatusCode)
		}
	}
}
