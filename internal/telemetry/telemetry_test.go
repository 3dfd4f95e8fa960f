package telemetry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/stewardfleet/steward/internal/telemetry"
)

func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Setenv(k, "")
	}
}

// TestEnabled: off unless the setting or the environment asks; the
// environment can always turn it off.
func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint string
		env      map[string]string
		want     bool
	}{
		{"default", "", nil, false},
		{"setting", "127.0.0.1:4318", nil, true},
		{"otlp endpoint", "", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, true},
		{"traces endpoint", "", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces"}, true},
		{"exporter otlp", "", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"exporter none", "127.0.0.1:4318", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false},
		{"sdk disabled", "127.0.0.1:4318", map[string]string{"OTEL_SDK_DISABLED": "true"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if got := telemetry.Enabled(telemetry.Settings{Endpoint: tc.endpoint}); got != tc.want {
				t.Errorf("Enabled = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestNew: off is a nil *Tracing whose methods do nothing; bad settings
// are errors; good ones build an exporter (nothing is sent until a span
// ends).
func TestNew(t *testing.T) {
	clearEnv(t)
	tr, err := telemetry.New(t.Context(), telemetry.Settings{})
	if err != nil || tr != nil || tr.On() {
		t.Fatalf("off: %v %v", tr, err)
	}
	h := nats.Header{}
	tr.Inject(t.Context(), h)
	if len(h) != 0 || tr.Extract(t.Context(), nats.Header{"traceparent": {"x"}}) != t.Context() || tr.Shutdown(t.Context()) != nil {
		t.Error("a nil Tracing did something")
	}
	for _, bad := range []string{"ftp://x:1", "http://"} {
		if _, err := telemetry.New(t.Context(), telemetry.Settings{Endpoint: bad}); !errors.Is(err, telemetry.ErrSettings) {
			t.Errorf("endpoint %q: %v, want ErrSettings", bad, err)
		}
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	if _, err := telemetry.New(t.Context(), telemetry.Settings{}); !errors.Is(err, telemetry.ErrSettings) {
		t.Errorf("grpc: %v, want ErrSettings", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	for _, good := range []string{"127.0.0.1:4318", "http://127.0.0.1:4318", "https://collector.example/otlp/v1/traces"} {
		tr, err := telemetry.New(t.Context(), telemetry.Settings{Endpoint: good, ServiceName: "ship1"})
		if err != nil || !tr.On() {
			t.Errorf("endpoint %q: %v", good, err)
			continue
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown with nothing to export: %v", err)
		}
	}
}

// TestHeaders: the trace context goes into NATS headers under the W3C
// names and comes out as the same span context; HeaderTraceID reads the
// trace ID without tracing.
func TestHeaders(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := telemetry.NewWith(tp)
	ctx, span := tr.Start(t.Context(), telemetry.SpanSend)
	h := nats.Header{}
	tr.Inject(ctx, h)
	if h.Get("traceparent") == "" {
		t.Fatalf("no traceparent in %v", h)
	}
	got := trace.SpanContextFromContext(tr.Extract(context.Background(), h))
	if !got.IsRemote() || got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("extracted %v, want the span %v", got, span.SpanContext())
	}
	if id := telemetry.HeaderTraceID(h); id != span.SpanContext().TraceID().String() || id != telemetry.TraceID(ctx) {
		t.Errorf("HeaderTraceID %q, want %s", id, span.SpanContext().TraceID())
	}
	for _, bad := range []string{"", "00-xyz", "00-00000000000000000000000000000000-0000000000000001-01"} {
		if id := telemetry.HeaderTraceID(nats.Header{"traceparent": {bad}}); id != "" {
			t.Errorf("traceparent %q: trace ID %q", bad, id)
		}
	}
	telemetry.End(span, errors.New("boom"))
	telemetry.End(nil, nil) // nil-safe
	if spans := exp.GetSpans(); len(spans) != 1 || spans[0].Status.Description != "boom" {
		t.Errorf("ended spans %+v", spans)
	}
}
