package node_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
	"github.com/stewardfleet/steward/internal/telemetry"
)

// tracer is tracing that records spans in exp, as a node with an OTLP
// exporter would send them.
func tracer(t *testing.T, exp *tracetest.InMemoryExporter) *telemetry.Tracing {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return telemetry.NewWith(tp)
}

// startTraced runs a node of f with tracing tr (nil: as its config and
// environment decide), its logs at debug level also in the returned
// buffer, and waits until it is ready.
func (f *fleet) startTraced(cfg config.Config, tr *telemetry.Tracing) *running {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	r := &running{cfg: cfg, cancel: cancel, done: make(chan error, 1), stdout: &syncBuffer{}, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{f.t}, r.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		r.done <- node.Run(ctx, cfg, node.Options{Logger: log, Stdout: r.stdout, Version: "test", Ready: ready, Tracing: tr})
	}()
	select {
	case <-ready:
	case err := <-r.done:
		cancel()
		f.t.Fatalf("node %s stopped at start: %v", cfg.NodeName, err)
	case <-time.After(30 * time.Second):
		cancel()
		f.t.Fatalf("node %s not ready", cfg.NodeName)
	}
	f.mu.Lock()
	f.run[cfg.NodeName] = r
	f.mu.Unlock()
	return r
}

func tracedClient(t *testing.T, cfg config.Config, tr *telemetry.Tracing) *client.Client {
	t.Helper()
	c, err := client.ConnectTraced(natstest.Context(t, 10*time.Second), cfg, tr)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// spanSet is the spans of one test, looked up by name and node.
type spanSet []tracetest.SpanStub

func attr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// find returns the spans named name whose steward.node is node ("" for
// any).
func (ss spanSet) find(name, node string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range ss {
		if s.Name == name && (node == "" || attr(s, telemetry.AttrNode).AsString() == node) {
			out = append(out, s)
		}
	}
	return out
}

// one returns the one span named name of node.
func (ss spanSet) one(t *testing.T, name, node string) tracetest.SpanStub {
	t.Helper()
	found := ss.find(name, node)
	if len(found) != 1 {
		t.Fatalf("%d spans %q of node %q, want 1; spans: %s", len(found), name, node, ss)
	}
	return found[0]
}

func (ss spanSet) String() string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.Name + "(" + attr(s, telemetry.AttrNode).AsString() + ") ")
	}
	return b.String()
}

func childOf(t *testing.T, child, parent tracetest.SpanStub) {
	t.Helper()
	if child.Parent.SpanID() != parent.SpanContext.SpanID() || child.SpanContext.TraceID() != parent.SpanContext.TraceID() {
		t.Errorf("span %s (%s) is not a child of %s (%s)", child.Name, attr(child, telemetry.AttrNode).AsString(),
			parent.Name, attr(parent, telemetry.AttrNode).AsString())
	}
}

// waitSpans waits until exp holds a span named name of node.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, name, node string) spanSet {
	t.Helper()
	natstest.Eventually(t, 10*time.Second, "span "+name+" of "+node, func() bool {
		return len(spanSet(exp.GetSpans()).find(name, node)) > 0
	})
	return spanSet(exp.GetSpans())
}

// TestTraceAcrossNodes: one message central → ship1 is one trace: the
// sender's send and publish, ship1's queue wait, delivery, run and reply,
// and central's handling of the reply, each parented across the nodes
// through the messages' headers; the status record and ship1's log lines
// carry the trace ID.
func TestTraceAcrossNodes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	onCentral, onShip := tracer(t, exp), tracer(t, exp)
	f := newFleet(t)
	central := f.startTraced(f.config("central"), onCentral)
	ship := f.startTraced(f.config("ship1"), onShip)
	c := tracedClient(t, central.cfg, onCentral)

	ids := send(t, c, `{"toNode":"ship1","method":"REQPing"}`)
	recs := wait(t, c, ids, 20*time.Second)
	if len(recs) != 1 || recs[0].Status != status.Succeeded {
		t.Fatalf("want one succeeded delivery, got %s", describe(recs))
	}
	// A delivery's span ends at its ack: ship1's may end after central's
	// handling of the reply, or before.
	waitSpans(t, exp, telemetry.SpanDeliver, "central")
	spans := waitSpans(t, exp, telemetry.SpanDeliver, "ship1")

	send := spans.one(t, telemetry.SpanSend, "")
	traceID := send.SpanContext.TraceID()
	if send.Parent.IsValid() {
		t.Error("send is not the root of the trace")
	}
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %s of %s is in trace %s, not the message's %s", s.Name, attr(s, telemetry.AttrNode).AsString(), s.SpanContext.TraceID(), traceID)
		}
	}
	if got := attr(send, telemetry.AttrMsgID).AsString(); got != ids[0] {
		t.Errorf("send: steward.msg_id %q, want %q", got, ids[0])
	}
	publish := spans.one(t, telemetry.SpanPublish, "ship1")
	childOf(t, publish, send)
	queue := spans.one(t, telemetry.SpanQueue, "ship1")
	childOf(t, queue, publish)
	if queue.EndTime.Before(queue.StartTime) || queue.StartTime.Before(send.StartTime.Add(-time.Second)) {
		t.Errorf("queue span from %s to %s, the message sent at %s", queue.StartTime, queue.EndTime, send.StartTime)
	}
	deliver := spans.one(t, telemetry.SpanDeliver, "ship1")
	childOf(t, deliver, publish)
	run := spans.one(t, telemetry.SpanRun, "ship1")
	childOf(t, run, deliver)
	reply := spans.one(t, telemetry.SpanReply, "central") // the reply goes to central
	childOf(t, reply, deliver)
	replyDeliver := spans.one(t, telemetry.SpanDeliver, "central")
	childOf(t, replyDeliver, reply)
	replyRun := spans.one(t, telemetry.SpanRun, "central")
	childOf(t, replyRun, replyDeliver)

	for _, tc := range []struct {
		span   tracetest.SpanStub
		method string
	}{{deliver, "REQPing"}, {run, "REQPing"}, {replyDeliver, "REQPong"}, {replyRun, "REQPong"}} {
		if got := attr(tc.span, telemetry.AttrMethod).AsString(); got != tc.method {
			t.Errorf("%s: steward.method %q, want %q", tc.span.Name, got, tc.method)
		}
		if got := attr(tc.span, telemetry.AttrMsgID).AsString(); got != ids[0] {
			t.Errorf("%s: steward.msg_id %q, want %q", tc.span.Name, got, ids[0])
		}
		if got := attr(tc.span, telemetry.AttrAttempt).AsInt64(); got != 1 {
			t.Errorf("%s: steward.attempt %d, want 1", tc.span.Name, got)
		}
		if got := attr(tc.span, telemetry.AttrStatus).AsString(); got != string(status.Succeeded) {
			t.Errorf("%s: steward.status %q, want succeeded", tc.span.Name, got)
		}
		if tc.span.Status.Code == codes.Error {
			t.Errorf("%s: status error %q", tc.span.Name, tc.span.Status.Description)
		}
	}
	if recs[0].TraceID != traceID.String() {
		t.Errorf("status record: traceId %q, want %q", recs[0].TraceID, traceID)
	}
	if !strings.Contains(ship.logs.String(), "trace_id="+traceID.String()) {
		t.Errorf("no log line of ship1 carries trace_id=%s", traceID)
	}
	// The delivery on the broker carries the trace context.
	_, js := natstest.Connect(t, f.srv)
	s, err := js.Stream(t.Context(), stream.MessagesStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(t.Context(), stream.MessageSubject("ship1"))
	if err != nil {
		t.Fatal(err)
	}
	if tp := raw.Header.Get("traceparent"); !strings.Contains(tp, traceID.String()) {
		t.Errorf("delivery header traceparent %q, want one in trace %s", tp, traceID)
	}
}

// TestTraceFanOut: a message to two nodes is one trace with two branches,
// one per delivery.
func TestTraceFanOut(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	onCentral := tracer(t, exp)
	f := newFleet(t)
	central := f.startTraced(f.config("central"), onCentral)
	f.startTraced(f.config("ship1"), tracer(t, exp))
	f.startTraced(f.config("ship2"), tracer(t, exp))
	c := tracedClient(t, central.cfg, onCentral)

	ids := send(t, c, `{"toNodes":["ship1","ship2"],"method":"REQPing"}`)
	for _, r := range wait(t, c, ids, 20*time.Second) {
		if r.Status != status.Succeeded {
			t.Fatalf("delivery to %s: %s", r.Node, r.Status)
		}
	}
	natstest.Eventually(t, 10*time.Second, "both replies handled in the trace", func() bool {
		return len(spanSet(exp.GetSpans()).find(telemetry.SpanDeliver, "central")) == 2
	})
	// Each ship's delivery span ends at its ack, which may come later.
	waitSpans(t, exp, telemetry.SpanDeliver, "ship1")
	spans := waitSpans(t, exp, telemetry.SpanDeliver, "ship2")
	send := spans.one(t, telemetry.SpanSend, "")
	for _, s := range spans {
		if s.SpanContext.TraceID() != send.SpanContext.TraceID() {
			t.Errorf("span %s of %s is in another trace", s.Name, attr(s, telemetry.AttrNode).AsString())
		}
	}
	for _, ship := range []string{"ship1", "ship2"} {
		publish := spans.one(t, telemetry.SpanPublish, ship)
		childOf(t, publish, send)
		deliver := spans.one(t, telemetry.SpanDeliver, ship)
		childOf(t, deliver, publish)
		childOf(t, spans.one(t, telemetry.SpanRun, ship), deliver)
	}
}

// TestTraceOff: with tracing off (the default) nothing is traced, not even
// through the global provider, and no delivery carries a traceparent.
func TestTraceOff(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"} {
		t.Setenv(k, "")
	}
	exp := tracetest.NewInMemoryExporter()
	global := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(global)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = global.Shutdown(context.Background()) })

	f := newFleet(t)
	central := f.startTraced(f.config("central"), nil)
	f.startTraced(f.config("ship1"), nil)
	c := tracedClient(t, central.cfg, nil)
	ids := send(t, c, `{"toNode":"ship1","method":"REQPing"}`)
	recs := waitAll(t, c, ids, 20*time.Second)
	for _, r := range recs {
		if r.TraceID != "" {
			t.Errorf("record %s carries traceId %q", r.Key(), r.TraceID)
		}
	}
	if spans := exp.GetSpans(); len(spans) != 0 {
		t.Errorf("%d spans with tracing off: %s", len(spans), spanSet(spans))
	}
	_, js := natstest.Connect(t, f.srv)
	s, err := js.Stream(t.Context(), stream.MessagesStream)
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{stream.MessageSubject("ship1"), stream.MessageSubject("central")} {
		raw, err := s.GetLastMsgForSubject(t.Context(), subject)
		if err != nil {
			t.Fatal(err)
		}
		for k := range raw.Header {
			if strings.EqualFold(k, "traceparent") || strings.EqualFold(k, "tracestate") {
				t.Errorf("%s: header %s with tracing off", subject, k)
			}
		}
	}
}
