package node

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/telemetry"
)

// A delivery that carries a trace context (its sender traces, see package
// telemetry) is traced on a node that traces too: "queue" is the time it
// waited on the broker (the first attempt only: from when the broker
// stored it to when this node took it, so the time the node was offline
// shows), "deliver" is this attempt, "run" the method, and "reply" each
// reply message, whose headers carry the trace on to the sender's node.

// traceDelivery starts the spans of delivery d, taken at the broker's
// stream message with headers h and metadata meta. It does nothing when
// tracing is off, or when the message carries no trace context.
func (n *Node) traceDelivery(ctx context.Context, d *delivery, h nats.Header, meta *jetstream.MsgMetadata) {
	if !n.tracing.On() {
		return
	}
	parent := n.tracing.Extract(ctx, h)
	if !trace.SpanContextFromContext(parent).IsValid() {
		return
	}
	m := d.msg
	attrs := trace.WithAttributes(telemetry.AttrNode.String(n.cfg.NodeName), telemetry.AttrMethod.String(m.Method),
		telemetry.AttrMsgID.String(m.ID), telemetry.AttrFrom.String(m.FromNode), telemetry.AttrAttempt.Int64(int64(meta.NumDelivered)))
	taken := time.Now()
	if meta.NumDelivered == 1 && !meta.Timestamp.IsZero() {
		_, wait := n.tracing.Start(parent, telemetry.SpanQueue, attrs,
			trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(meta.Timestamp))
		wait.End(trace.WithTimestamp(taken))
	}
	_, d.span = n.tracing.Start(parent, telemetry.SpanDeliver, attrs,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(taken))
	d.log = d.log.With("trace_id", d.traceID)
}

// endDelivery ends d's span with how the attempt ended: the delivery's
// status, or "retry" when it comes again, "adopted" when the attempt in
// hand took it over.
func endDelivery(d *delivery, disp consumer.Disposition, adopted bool) {
	if d.span == nil {
		return
	}
	st := d.outcome
	switch {
	case adopted:
		st = "adopted"
	case disp.Retry():
		st = "retry"
	case st == "":
		st = "done"
	}
	d.span.SetAttributes(telemetry.AttrStatus.String(st))
	if d.outcome != "" && !status.Status(d.outcome).Success() {
		text := d.outcome
		if d.record.Error != "" {
			text += ": " + d.record.Error
		}
		telemetry.Fail(d.span, text)
	}
	d.span.End()
}

// executeTraced is execute inside a "run" span when d is traced.
func (n *Node) executeTraced(ctx context.Context, d *delivery, spec methods.Spec) (*ledger.Outcome, bool) {
	if d.span == nil {
		return n.execute(ctx, d, spec)
	}
	ctx, span := n.tracing.Start(trace.ContextWithSpan(ctx, d.span), telemetry.SpanRun,
		trace.WithAttributes(telemetry.AttrNode.String(n.cfg.NodeName), telemetry.AttrMethod.String(spec.Name),
			telemetry.AttrMsgID.String(d.msg.ID), telemetry.AttrAttempt.Int64(int64(d.run))))
	o, interrupted := n.execute(ctx, d, spec)
	switch {
	case interrupted:
		span.SetAttributes(telemetry.AttrStatus.String("interrupted"))
	case o != nil:
		span.SetAttributes(telemetry.AttrStatus.String(o.Status))
		if o.Status != string(status.Succeeded) {
			text := o.Status
			if o.Error != "" {
				text += ": " + o.Error
			}
			telemetry.Fail(span, text)
		}
	}
	span.End()
	return o, interrupted
}

// publishAnswer publishes m, a reply to d's request (or a part of one), as
// publish does; when d is traced, inside a "reply" span whose context m's
// headers carry.
func (n *Node) publishAnswer(ctx context.Context, d *delivery, m *message.Message, deliveryID string, ttl time.Duration) (jetstream.PubAckFuture, error) {
	if d.span == nil {
		return n.publish(ctx, m, deliveryID, ttl)
	}
	ctx, span := n.tracing.Start(trace.ContextWithSpan(ctx, d.span), telemetry.SpanReply,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(telemetry.AttrNode.String(m.ToNode), telemetry.AttrMethod.String(m.Method),
			telemetry.AttrMsgID.String(m.ID), telemetry.AttrStatus.String(m.Reply.Status)))
	h := nats.Header{}
	n.tracing.Inject(ctx, h)
	f, err := n.publishWith(ctx, m, deliveryID, ttl, h)
	telemetry.End(span, err)
	return f, err
}
