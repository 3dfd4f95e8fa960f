// Package telemetry traces messages through a fleet with OpenTelemetry.
//
// One message is one trace. The sender starts it (span "send", one child
// "publish" per delivery) and carries the W3C trace context (traceparent,
// tracestate) in the NATS headers of each delivery; the receiving node
// takes it from the JetStream message's headers and adds its spans ("queue"
// for the time the message waited on the broker, "deliver" per delivery
// attempt, "run" for the method, "reply" per reply published, whose headers
// carry the context on), so the reply method on the sender lands in the same
// trace. A fan-out to N nodes is one trace with N branches.
//
// Guarantees:
//   - Tracing is off unless it is asked for (the otlp-endpoint setting or
//     the OTEL_* environment, see New). Off, a *Tracing is nil: every
//     method is a nil check, no header is read or written for it and no
//     span is made, so steward costs what it cost before tracing existed.
//   - A message without a trace context (hellos, error reports, messages
//     from a sender with tracing off) makes no spans: the node never starts
//     a trace of its own.
//   - Exporting is in the background and bounded; Shutdown flushes what is
//     buffered and is called when the node stops.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// The span names.
const (
	SpanSend    = "send"    // the sender: one per message
	SpanPublish = "publish" // the sender: one per delivery, child of send
	SpanQueue   = "queue"   // a node: from when the broker stored the message to when the node took it
	SpanDeliver = "deliver" // a node: one per delivery attempt
	SpanRun     = "run"     // a node: the method, child of deliver
	SpanReply   = "reply"   // a node: one per reply message published, child of deliver
)

// The attribute keys.
const (
	AttrNode    = attribute.Key("steward.node")
	AttrMethod  = attribute.Key("steward.method")
	AttrMsgID   = attribute.Key("steward.msg_id")
	AttrAttempt = attribute.Key("steward.attempt")
	AttrStatus  = attribute.Key("steward.status")
	AttrFrom    = attribute.Key("steward.from_node")
	AttrNodes   = attribute.Key("steward.nodes")
)

// instrumentation is the tracer's name.
const instrumentation = "github.com/stewardfleet/steward"

// Settings are steward's own tracing settings (the OTEL_* environment adds
// to them, see New).
type Settings struct {
	// Endpoint is the OTLP/HTTP endpoint traces are exported to, as
	// "host:port" or a URL ("http://host:4318"); empty: the OTEL_*
	// environment decides.
	Endpoint string
	// ServiceName names the exporting process when OTEL_SERVICE_NAME does
	// not (steward uses the node's name).
	ServiceName string
}

// Tracing makes a node's spans and carries trace context in NATS headers.
// A nil *Tracing is tracing off.
type Tracing struct {
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	shutdown func(context.Context) error
}

// Enabled reports whether the settings and the environment ask for
// tracing: an endpoint in s, OTEL_TRACES_EXPORTER=otlp, or an
// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT; OTEL_SDK_DISABLED=true and
// OTEL_TRACES_EXPORTER=none turn it off whatever else is set.
func Enabled(s Settings) bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch exp := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false
	case "otlp":
		return true
	}
	return s.Endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// New builds tracing from s and the standard OpenTelemetry environment
// (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER, OTEL_BSP_*): spans are batched and exported over
// OTLP/HTTP. It returns nil, tracing off, when Enabled says no. An endpoint
// in s wins over the environment's.
func New(ctx context.Context, s Settings) (*Tracing, error) {
	if !Enabled(s) {
		return nil, nil
	}
	if exp := strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER")); exp != "" && exp != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: steward exports otlp (or none): %w", exp, ErrSettings)
	}
	if p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		if p != "" && p != "http/protobuf" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: steward exports http/protobuf: %w", p, ErrSettings)
		}
	} else if p != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=%s: steward exports http/protobuf: %w", p, ErrSettings)
	}
	var opts []otlptracehttp.Option
	if s.Endpoint != "" {
		o, err := endpointOptions(s.Endpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o...)
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	attrs := []attribute.KeyValue{semconv.ServiceName("steward")}
	if s.ServiceName != "" {
		attrs[0] = semconv.ServiceName(s.ServiceName)
	}
	// The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) wins.
	res, err := sdkresource.Merge(sdkresource.NewSchemaless(attrs...), sdkresource.Environment())
	if err != nil {
		res = sdkresource.NewSchemaless(attrs...)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{tracer: tp.Tracer(instrumentation), prop: propagator(), shutdown: tp.Shutdown}, nil
}

// endpointOptions turns the endpoint setting into exporter options:
// "host:port" and "http://host:port" export in plain HTTP, "https://…"
// over TLS; a URL with a path posts to that path.
func endpointOptions(endpoint string) ([]otlptracehttp.Option, error) {
	if !strings.Contains(endpoint, "://") {
		return []otlptracehttp.Option{otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure()}, nil
	}
	scheme, rest, _ := strings.Cut(endpoint, "://")
	if scheme != "http" && scheme != "https" || rest == "" {
		return nil, fmt.Errorf("otlp-endpoint %q: want host:port or an http(s) URL: %w", endpoint, ErrSettings)
	}
	if _, path, ok := strings.Cut(rest, "/"); ok && path != "" {
		return []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}, nil
	}
	// A URL without a path: the standard traces path under it.
	return []otlptracehttp.Option{otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/") + "/v1/traces")}, nil
}

// ErrSettings: the tracing settings or environment cannot be used.
var ErrSettings = errors.New("tracing settings")

// NewWith is tracing with the given provider, which its caller shuts down
// (tests give one that records spans in memory).
func NewWith(tp trace.TracerProvider) *Tracing {
	return &Tracing{tracer: tp.Tracer(instrumentation), prop: propagator(), shutdown: func(context.Context) error { return nil }}
}

func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// On reports whether tracing is on.
func (t *Tracing) On() bool { return t != nil }

// Shutdown flushes buffered spans and stops exporting. Nil-safe.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Start starts a span, a child of the span in ctx. Call only when On.
func (t *Tracing) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, name, opts...)
}

// Inject writes ctx's trace context into h. Nil-safe: off, h is untouched.
func (t *Tracing) Inject(ctx context.Context, h nats.Header) {
	if t == nil {
		return
	}
	t.prop.Inject(ctx, headerCarrier(h))
}

// Extract returns ctx with the trace context h carries, if any. Nil-safe:
// off, ctx is returned as it is and h is not read.
func (t *Tracing) Extract(ctx context.Context, h nats.Header) context.Context {
	if t == nil || len(h) == 0 {
		return ctx
	}
	return t.prop.Extract(ctx, headerCarrier(h))
}

// End ends span (nil: nothing), recording err as its error.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Fail marks span (nil: nothing) as failed with text, without ending it.
func Fail(span trace.Span, text string) {
	if span == nil {
		return
	}
	span.RecordError(errors.New(text))
	span.SetStatus(codes.Error, text)
}

// TraceID is the ID of the trace the span in ctx belongs to ("" when none).
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// HeaderTraceID is the trace ID in h's traceparent ("" when there is none
// or it is malformed). It reads one header and needs no tracing: a node
// with tracing off still keeps the trace ID its sender recorded.
func HeaderTraceID(h nats.Header) string {
	if len(h) == 0 {
		return ""
	}
	v := h.Get(traceparent)
	// version "-" trace-id (32 hex) "-" parent-id (16 hex) "-" flags
	if len(v) < 55 || v[2] != '-' || v[35] != '-' {
		return ""
	}
	id, err := trace.TraceIDFromHex(v[3:35])
	if err != nil {
		return ""
	}
	return id.String()
}

const traceparent = "traceparent"

// headerCarrier is a propagation.TextMapCarrier over NATS headers. NATS
// header names are case-sensitive: the W3C names are written as the
// propagator gives them (lower case).
type headerCarrier nats.Header

var _ propagation.TextMapCarrier = headerCarrier(nil)

func (c headerCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[key] = []string{value} }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
