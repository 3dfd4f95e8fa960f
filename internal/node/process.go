package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// delivery is one message in the hands of this node.
type delivery struct {
	key     string // ledger key and Nats-Msg-Id
	msg     *message.Message
	meta    *jetstream.MsgMetadata
	tracked bool // has a status record (operator requests)
	log     *slog.Logger
	// record is the status record as this node last wrote it.
	record status.Record
	// outcome is the final status, once there is one.
	outcome string
	// mu orders status writes: a delayed "running" never lands after the
	// terminal state. It guards record, statusWrites and finished.
	mu sync.Mutex
	// statusWrites are the intermediate status writes in flight; finish
	// checks them while it waits for the terminal one.
	statusWrites []*status.Write
	finished     bool
	runningTimer *time.Timer
}

// runningDelay is how long a method runs before its status says running.
// A method that ends sooner goes straight from pending (or delivered) to
// its terminal state, with deliveredAt and startedAt still recorded: that
// saves a status write for every quick method.
const runningDelay = 100 * time.Millisecond

// deliveryKey names a delivery for the ledger and for deduplication.
func deliveryKey(m *message.Message, node string) string {
	if m.Reply != nil {
		return m.Reply.DeliveryID + ".reply." + strconv.Itoa(m.Reply.Chunk)
	}
	return message.DeliveryID(m.ID, node)
}

// handle is the consumer handler: it takes one delivery to its end.
func (n *Node) handle(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) consumer.Disposition {
	d, disp := n.process(ctx, msg, meta)
	if n.onDone != nil && d != nil && d.outcome != "" && !disp.Retry() {
		n.onDone(Done{Key: d.key, Msg: d.msg, Status: d.outcome})
	}
	return disp
}

// process takes one delivery to its end. It returns the delivery (nil when
// the message could not be read) and what to do with the message.
func (n *Node) process(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) (*delivery, consumer.Disposition) {
	m, err := message.DecodeWire(msg.Data())
	if err == nil {
		err = n.check(m)
	}
	if err != nil {
		return nil, n.refuseRaw(ctx, msg, meta, err)
	}
	d := &delivery{
		key:     deliveryKey(m, n.cfg.NodeName),
		msg:     m,
		meta:    meta,
		tracked: !m.Event && m.Reply == nil,
	}
	d.log = n.log.With("method", m.Method, "msg_id", m.ID, "from", m.FromNode, "attempt", meta.NumDelivered)
	d.record = status.Record{
		ID: m.ID, Node: n.cfg.NodeName, FromNode: m.FromNode, Method: m.Method,
		SentAt: m.SentAt, Deadline: m.Deadline, Attempt: meta.NumDelivered,
	}

	if entry, seen := n.ledger.Get(d.key); seen {
		// The method already ran: never again. Finish what a crash or a
		// lost ack left undone.
		d.log.Debug("delivery already executed; finishing it", "state", entry.State)
		if entry.State == ledger.Finished {
			return d, consumer.Ack()
		}
		return d, n.finish(ctx, d, entry.Outcome)
	}
	// Only a first delivery can be late: a redelivery was delivered in time
	// before (a later first delivery would have been refused, not retried).
	if meta.NumDelivered == 1 && d.tracked && !m.Deadline.IsZero() && time.Now().After(m.Deadline) {
		return d, n.refuse(ctx, d, status.DeliveryTimedOut, string(status.DeliveryTimedOut),
			fmt.Sprintf("the node took the message after its delivery deadline %s", m.Deadline.Format(time.RFC3339)))
	}
	if retries := m.RetriesOr(n.cfg.DefaultMessageRetries); meta.NumDelivered > uint64(retries)+1 {
		return d, n.refuse(ctx, d, status.Undeliverable, string(status.Undeliverable),
			fmt.Sprintf("delivery %d exceeds the message's %d retries; a node that crashes or stops while handling it spends one each time", meta.NumDelivered, retries))
	}
	spec, err := n.methods.Lookup(m.Method)
	if err != nil {
		return d, n.refuse(ctx, d, status.Rejected, codeOf(err), err.Error())
	}
	outcome, interrupted := n.execute(ctx, d, spec)
	if interrupted {
		d.log.Info("method interrupted by the node stopping; it runs again after restart")
		return d, consumer.Nak(0)
	}
	// The outcome is on disk before anything leaves the node: from here
	// on, a redelivery finishes the delivery instead of running it again.
	if err := n.ledger.Complete(d.key, meta.NumDelivered, n.expiry(m), outcome); err != nil {
		d.log.Error("cannot record the outcome; a lost ack could make the method run again", "error", err)
	}
	return d, n.finish(ctx, d, outcome)
}

// check validates a message that came from the broker.
func (n *Node) check(m *message.Message) error {
	if m.ID == "" {
		return fmt.Errorf("the message has no id (was it published without steward?): %w", message.ErrFieldValue)
	}
	if m.FromNode == "" {
		return fmt.Errorf("the message has no fromNode: %w", message.ErrFieldValue)
	}
	if err := message.Validate(m, n.methods.All()); err != nil {
		return err
	}
	if m.ToNode != n.cfg.NodeName {
		return fmt.Errorf("the message is for %q, not this node: %w", m.ToNode, message.ErrFieldValue)
	}
	return nil
}

// expiry is when the ledger may forget a delivery: after the broker has
// dropped the message, so it cannot come again.
func (n *Node) expiry(m *message.Message) time.Time {
	base := m.Deadline
	if base.IsZero() {
		base = time.Now()
	}
	return base.Add(m.MethodTimeoutDuration() + 24*time.Hour)
}

// execute runs the method. interrupted is true when the node is stopping:
// the outcome then does not count and the message runs again later.
func (n *Node) execute(ctx context.Context, d *delivery, spec methods.Spec) (o *ledger.Outcome, interrupted bool) {
	m := d.msg
	d.record.DeliveredAt = time.Now().UTC()
	if spec.Kind == methods.Command {
		// A delivery that must wait for a free slot is "delivered" while it
		// waits; one that starts at once goes straight to "running" (with
		// its deliveredAt), which saves a status write per message.
		select {
		case n.slots <- struct{}{}:
		default:
			if d.tracked {
				d.mu.Lock()
				d.record.Status = status.Delivered
				d.statusWrites = append(d.statusWrites, n.putStatus(ctx, d))
				d.mu.Unlock()
			}
			select {
			case n.slots <- struct{}{}:
			case <-ctx.Done():
				return nil, true
			}
		}
		defer func() { <-n.slots }()
	}
	timeout := m.MethodTimeoutDuration()
	if timeout <= 0 {
		timeout = spec.DefaultTimeout
	}
	started := time.Now().UTC()
	if d.tracked {
		d.mu.Lock()
		d.record.Status, d.record.StartedAt = status.Running, started
		d.runningTimer = time.AfterFunc(runningDelay, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if !d.finished {
				d.statusWrites = append(d.statusWrites, n.putStatus(ctx, d))
			}
		})
		d.mu.Unlock()
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := &methods.Request{Msg: m, Attempt: d.meta.NumDelivered, Env: n.env, Log: d.log}
	var res *methods.Result
	var err error
	if m.Reply != nil && m.Reply.Chunks > 1 {
		res, err = n.runChunk(runCtx, d, spec, req)
	} else {
		res, err = runSafely(runCtx, spec, req)
	}
	if ctx.Err() != nil {
		return nil, true
	}
	if res == nil {
		res = &methods.Result{}
	}
	o = &ledger.Outcome{
		Status: string(status.Succeeded), ExitCode: res.ExitCode, Output: res.Output, Stderr: res.Stderr,
		StartedAt: started, FinishedAt: time.Now().UTC(),
	}
	switch {
	case err == nil:
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		o.Status = string(status.ExecutionTimedOut)
		o.Error = fmt.Sprintf("the method ran longer than its methodTimeout of %s and was stopped", timeout)
		o.ErrorCode = string(status.ExecutionTimedOut)
	default:
		o.Status = string(status.Failed)
		o.Error = err.Error()
		o.ErrorCode = codeOf(err)
		if res.ExitCode != nil && *res.ExitCode != 0 {
			o.ErrorCode = "exit_status"
		}
	}
	return o, false
}

// runSafely runs a handler, turning a panic into an error: one bad method
// must not take the node down.
func runSafely(ctx context.Context, spec methods.Spec, req *methods.Request) (res *methods.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("method %s panicked: %v", spec.Name, p)
		}
	}()
	return spec.Handler(ctx, req)
}

// finish stores the outcome (terminal status, reply, error report), and
// acknowledges the message once all of it is stored. If any of it cannot
// be stored, the message is left for redelivery and finish runs again
// then, from the ledger, without running the method.
func (n *Node) finish(ctx context.Context, d *delivery, o *ledger.Outcome) consumer.Disposition {
	m := d.msg
	if o == nil {
		o = &ledger.Outcome{Status: string(status.Failed), Error: "outcome lost", ErrorCode: string(message.CodeInternal)}
	}
	st := status.Status(o.Status)
	d.outcome = o.Status
	var futures []jetstream.PubAckFuture
	var writes, pendingWrites []*status.Write
	if d.tracked {
		// The reply goes first: it is what the sender waits for.
		if spec, err := n.methods.Lookup(m.Method); err == nil && spec.Kind == methods.Command {
			fs, err := n.publishReply(ctx, d, o)
			if err != nil {
				d.log.Warn("reply not sent; the message will be redelivered", "error", err)
				return consumer.Nak(m.ACKTimeoutDuration())
			}
			futures = append(futures, fs...)
		}
		d.mu.Lock()
		d.finished = true
		if d.runningTimer != nil {
			d.runningTimer.Stop()
		}
		d.record.Status = st
		d.record.ExitCode, d.record.Error, d.record.ErrorCode = o.ExitCode, o.Error, o.ErrorCode
		d.record.StartedAt, d.record.FinishedAt = o.StartedAt, o.FinishedAt
		d.record.SetOutput(o.Output)
		d.record.SetStderr(o.Stderr)
		writes = append(writes, n.putStatus(ctx, d))
		pendingWrites = d.statusWrites
		d.mu.Unlock()
	}
	if !st.Success() {
		n.logOutcome(d, o)
		if f := n.report(ctx, d, o); f != nil {
			futures = append(futures, f)
		}
	}
	var errs []error
	for _, w := range writes {
		errs = append(errs, w.Wait(ctx))
	}
	for _, w := range pendingWrites {
		if err := w.Wait(ctx); err != nil {
			d.log.Warn("intermediate status not stored", "error", err)
		}
	}
	if err := stream.Await(ctx, futures...); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return consumer.Nak(0)
		}
		d.log.Warn("outcome not stored yet; the message will be redelivered", "error", err)
		return consumer.Nak(m.ACKTimeoutDuration())
	}
	if err := n.ledger.Finish(d.key); err != nil {
		d.log.Warn("ledger", "error", err)
	}
	n.auditProcessed(d, o)
	if st.Success() {
		d.log.Debug("done", "status", st)
	}
	return consumer.Ack()
}

// refuse ends a delivery without running it (rejected, undeliverable,
// delivery_timed_out): terminal status, error report, audit line, term.
func (n *Node) refuse(ctx context.Context, d *delivery, st status.Status, code, text string) consumer.Disposition {
	now := time.Now().UTC()
	o := &ledger.Outcome{Status: string(st), Error: text, ErrorCode: code, FinishedAt: now}
	d.outcome = o.Status
	n.logOutcome(d, o)
	var errs []error
	if d.tracked {
		d.record.Status, d.record.Error, d.record.ErrorCode, d.record.FinishedAt = st, text, code, now
		errs = append(errs, n.putStatus(ctx, d).Wait(ctx))
	}
	if f := n.report(ctx, d, o); f != nil {
		errs = append(errs, stream.Await(ctx, f))
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Warn("refusal not stored yet; the message will be redelivered", "error", err)
		return consumer.Nak(d.msg.ACKTimeoutDuration())
	}
	n.auditProcessed(d, o)
	return consumer.Term(string(st) + ": " + text)
}

// refuseRaw refuses a message that did not decode or validate. Where its
// Nats-Msg-Id names a delivery to this node, that delivery gets a rejected
// status, so the sender learns why.
func (n *Node) refuseRaw(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) consumer.Disposition {
	deliveryID := msg.Headers().Get(jetstream.MsgIDHeader)
	text := fmt.Sprintf("message on %s (stream sequence %d) refused: %v", msg.Subject(), meta.Sequence.Stream, cause)
	n.log.Warn("message refused", "subject", msg.Subject(), "delivery", deliveryID, "error", cause)
	var errs []error
	if id, node, ok := message.SplitDeliveryID(deliveryID); ok && node == n.cfg.NodeName {
		now := time.Now().UTC()
		rec := &status.Record{ID: id, Node: node, Status: status.Rejected, Error: cause.Error(),
			ErrorCode: string(message.CodeOf(cause)), Attempt: meta.NumDelivered, FinishedAt: now, UpdatedAt: now}
		errs = append(errs, n.status.Put(ctx, rec))
	}
	if f := n.reportError(ctx, "raw."+strconv.FormatUint(meta.Sequence.Stream, 10), text); f != nil {
		errs = append(errs, stream.Await(ctx, f))
	}
	if err := errors.Join(errs...); err != nil && ctx.Err() == nil {
		return consumer.Nak(n.cfg.DefaultMessageTimeout)
	}
	_ = n.audit.Write(audit.Record{Event: audit.Refused, DeliveryID: deliveryID, Status: string(status.Rejected),
		Attempt: meta.NumDelivered, Error: text})
	return consumer.Term("rejected: " + cause.Error())
}

// report sends the outcome of a delivery that did not succeed to central's
// error log. Events are only logged: a failing error log must not report
// its own failures in a loop.
func (n *Node) report(ctx context.Context, d *delivery, o *ledger.Outcome) jetstream.PubAckFuture {
	if d.msg.Event {
		return nil
	}
	return n.reportError(ctx, d.key, describe(d, o))
}

// putStatus writes the delivery's record as it stands.
func (n *Node) putStatus(ctx context.Context, d *delivery) *status.Write {
	d.record.UpdatedAt = time.Now().UTC()
	rec := d.record
	return n.status.PutAsync(ctx, &rec)
}

func (n *Node) auditProcessed(d *delivery, o *ledger.Outcome) {
	m := d.msg
	if m.Reply != nil && len(m.Data) > 0 {
		// The reply's data is the request's output: the request's own
		// audit line on the other node recreates it; keep this line small.
		m = m.Clone()
		m.Data = nil
	}
	if err := n.audit.Write(audit.Record{
		Event: audit.Processed, DeliveryID: d.key, Status: o.Status, Attempt: d.meta.NumDelivered,
		ExitCode: o.ExitCode, Error: o.Error, Message: m,
	}); err != nil {
		d.log.Warn("audit log", "error", err)
	}
}

func (n *Node) logOutcome(d *delivery, o *ledger.Outcome) {
	d.log.Warn("delivery did not succeed", "status", o.Status, "error", o.Error)
}

// describe is the one-line error report sent to central.
func describe(d *delivery, o *ledger.Outcome) string {
	m := d.msg
	s := fmt.Sprintf("%s: %s from %s (message %s, delivery %d): %s", o.Status, m.Method, m.FromNode, m.ID, d.meta.NumDelivered, o.Error)
	if len(o.Stderr) > 0 {
		s += "; stderr: " + firstLine(o.Stderr, 200)
	}
	return s
}

func firstLine(b []byte, limit int) string {
	for i, c := range b {
		if c == '\n' {
			b = b[:i]
			break
		}
	}
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}

func codeOf(err error) string {
	switch {
	case errors.Is(err, methods.ErrUnknownMethod):
		return string(message.CodeUnknownMethod)
	case errors.Is(err, methods.ErrMethodDisabled):
		return "method_disabled"
	case errors.Is(err, methods.ErrBadArgs):
		return "bad_args"
	}
	return string(message.CodeOf(err))
}
