package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	tracesdk "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.17.0"
)

// TracingConfig is etcd's distributed tracing (--enable-distributed-tracing
// and the --distributed-tracing-* flags): every gRPC request the member
// serves is a server span (otelgrpc's stats handler, as etcd's
// v3rpc.Server installs it), sampled at SamplingRatePerMillion unless the
// caller's trace context decides, exported in batches over OTLP/gRPC
// (plaintext) to Address, under ServiceName and, when set, InstanceID.
type TracingConfig struct {
	Address                string
	ServiceName            string
	InstanceID             string
	SamplingRatePerMillion int
}

// maxSamplingRatePerMillion is etcd's bound on the sampling rate.
const maxSamplingRatePerMillion = 1000000

func (tc *TracingConfig) validate() error {
	switch {
	case tc.SamplingRatePerMillion < 0:
		return errors.New("distributed tracing configurition is not valid: (tracing sampling rate must be positive)")
	case tc.SamplingRatePerMillion > maxSamplingRatePerMillion:
		return fmt.Errorf("distributed tracing configurition is not valid: (tracing sampling rate must be less than %d)", maxSamplingRatePerMillion)
	}
	return nil
}

// tracing is the member's span pipeline: etcd's embed newTracingExporter.
type tracing struct {
	exporter tracesdk.SpanExporter
	provider *tracesdk.TracerProvider
	opts     []otelgrpc.Option
}

func newTracing(ctx context.Context, tc *TracingConfig, lg *slog.Logger) (*tracing, error) {
	exporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(tc.Address))
	if err != nil {
		return nil, fmt.Errorf("distributed tracing exporter for %s (--distributed-tracing-address): %w", tc.Address, err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceNameKey.String(tc.ServiceName)))
	if err == nil && tc.InstanceID != "" {
		res, err = resource.Merge(res, resource.NewSchemaless(semconv.ServiceInstanceIDKey.String(tc.InstanceID)))
	}
	if err != nil {
		exporter.Shutdown(ctx)
		return nil, fmt.Errorf("distributed tracing resource: %w", err)
	}
	sampler := tracesdk.NeverSample()
	if tc.SamplingRatePerMillion > 0 {
		sampler = tracesdk.TraceIDRatioBased(float64(tc.SamplingRatePerMillion) / maxSamplingRatePerMillion)
	}
	provider := tracesdk.NewTracerProvider(
		tracesdk.WithBatcher(exporter),
		tracesdk.WithResource(res),
		tracesdk.WithSampler(tracesdk.ParentBased(sampler)),
	)
	lg.Debug("distributed tracing enabled", "address", tc.Address, "service-name", tc.ServiceName,
		"service-instance-id", tc.InstanceID, "sampling-rate", tc.SamplingRatePerMillion)
	lg.Info("distributed tracing setup enabled")
	return &tracing{exporter: exporter, provider: provider, opts: []otelgrpc.Option{
		otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		otelgrpc.WithTracerProvider(provider),
	}}, nil
}

// close flushes the spans not yet exported and stops the exporter.
func (t *tracing) close(ctx context.Context) {
	if t == nil {
		return
	}
	t.provider.Shutdown(ctx)
	t.exporter.Shutdown(ctx)
}
