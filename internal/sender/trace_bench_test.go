package sender_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/telemetry"
)

// BenchmarkSendTraced is BenchmarkSend with tracing on (spans recorded and
// dropped), for comparison.
func BenchmarkSendTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	benchSend(b, newEnv(b, func(o *sender.Options) { o.Tracing = telemetry.NewWith(tp) }))
}
