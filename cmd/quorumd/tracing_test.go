package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// otlpCollector is an OTLP/gRPC trace collector that keeps what it is sent,
// one line per span: service, instance, name, kind, trace and parent.
type otlpCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []string
}

func (c *otlpCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		attrs := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			attrs[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				var method string
				for _, kv := range sp.Attributes {
					if kv.Key == "rpc.method" {
						// etcd 3.6.16's otelgrpc (v0.59, semantic conventions
						// 1.17) gives the method's name, quorumd's (go.mod's)
						// the OpenTelemetry conventions since: service/method.
						m := kv.GetValue().GetStringValue()
						method = m[strings.LastIndex(m, "/")+1:]
					}
				}
				c.spans = append(c.spans, fmt.Sprintf("service=%s instance=%s span=%s kind=%s rpc.method=%s trace=%s parent=%s",
					attrs["service.name"], attrs["service.instance.id"], sp.Name, sp.Kind,
					method, hex.EncodeToString(sp.TraceId), hex.EncodeToString(sp.ParentSpanId)))
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *otlpCollector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(slices.Values(c.spans))
}

func startCollector(t *testing.T) (*otlpCollector, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &otlpCollector{}
	g := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(g, c)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return c, ln.Addr().String()
}

// --enable-distributed-tracing exports a server span per gRPC request to
// the OTLP collector at --distributed-tracing-address, under the service
// name and instance ID given, sampled by rate unless the caller's trace
// context decides (ParentBased): with rate 0, a request without a trace
// context makes no span and one with a sampled traceparent makes a child
// of it. Both servers send the same spans to the same kind of collector.
func TestDistributedTracingExportsTheSpansEtcdExports(t *testing.T) {
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	etcd := needEtcd(t)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	got := map[string][]string{}
	for _, rate := range []string{"1000000", "0"} {
		for _, srv := range []struct{ name, bin string }{{"etcd", etcd}, {"quorumd", quorumdBinary}} {
			t.Run(srv.name+"/rate="+rate, func(t *testing.T) {
				col, addr := startCollector(t)
				dir := t.TempDir()
				t.Run("member", func(t *testing.T) { // its cleanup stops the member, which flushes the spans
					cli := oneMember(t, srv.bin, dir, "traced", "v",
						"--enable-distributed-tracing", "--distributed-tracing-address="+addr,
						"--distributed-tracing-service-name=quorum-test", "--distributed-tracing-instance-id=m1",
						"--distributed-tracing-sampling-rate="+rate)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					tctx := metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+traceID+"-"+parentID+"-01")
					if _, err := cli.Get(tctx, "traced"); err != nil {
						t.Fatal(err)
					}
				})
				deadline := time.Now().Add(15 * time.Second)
				for !slices.ContainsFunc(col.got(), func(s string) bool { return strings.Contains(s, "KV/Range") }) && time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
				}
				var kv []string // the spans of the client's requests; trace IDs of sampled roots vary
				for _, s := range col.got() {
					if strings.Contains(s, "span=etcdserverpb.KV/") {
						if !strings.Contains(s, "trace="+traceID) {
							s = s[:strings.Index(s, " trace=")] + " trace=(new) parent=" + s[strings.Index(s, " parent=")+8:]
						}
						kv = append(kv, s)
					}
				}
				got[srv.name+"/"+rate] = slices.Compact(kv)
			})
		}
		e, q := got["etcd/"+rate], got["quorumd/"+rate]
		if strings.Join(e, "\n") != strings.Join(q, "\n") || len(q) == 0 {
			t.Errorf("rate %s: spans of KV requests:\nquorumd:\n%s\netcd:\n%s", rate, strings.Join(q, "\n"), strings.Join(e, "\n"))
		}
		t.Logf("rate %s: etcd's spans:\n%s", rate, strings.Join(e, "\n"))
	}
}
