package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/deadline"
	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
	"github.com/stewardfleet/steward/internal/telemetry"
)

// A delivery goes through these steps on a node (process):
//
//	decode ─ bad ──────────────────────────────────────► rejected (term)
//	in hand already? ─ yes ─► adopted by the running one (no second run)
//	ledger: finished ─────────────────────────────────► ack
//	ledger: completed / refused ─► finish again from the ledger (no run)
//	claim before the deadline ─ lost ─► refused (central records
//	                                    delivery_timed_out)
//	unknown or disabled method ───────────────────────► rejected
//	runs so far > retries ────────────────────────────► undeliverable
//	ledger: started (run n) ─► run ─► ledger: completed ─► finish
//	finish: reply, terminal status, error report stored ─► ledger:
//	        finished ─► ack
//
// Every state after "claim" is written by this node alone; every step is
// recorded in the ledger before the next one can be seen outside the node.

// delivery is one message in the hands of this node.
type delivery struct {
	key   string // ledger key and Nats-Msg-Id
	msg   *message.Message
	lease *consumer.Lease
	// tracked deliveries (operator requests) have a status record and a
	// deadline; events and replies do not.
	tracked bool
	// ledgered deliveries are recorded in the ledger; idempotent events
	// (hellos) are not: running one twice is harmless.
	ledgered bool
	spec     methods.Spec
	run      int // this run's number, from the ledger
	log      *slog.Logger
	// traceID is the trace the message's sender recorded ("" when none);
	// span is this attempt's span (nil: not traced here, see trace.go).
	traceID string
	span    trace.Span
	// record is the status record as this node last wrote it.
	record status.Record
	// outcome is the final status, once there is one.
	outcome string
	// policy is the node policy's decision on the delivery, for the audit
	// line ("" without a policy).
	policy string
	// numbered is how many lines of streamed output earlier runs of a
	// streaming method numbered; streamed is the number of the line after
	// the last, once it streamed (its final reply's Seq).
	numbered, streamed uint64
	// priorAppend is where an earlier run of the delivery was about to
	// append to a file (nil: none), from the ledger.
	priorAppend *int64
	// streamGated is set on a streamed reply part (or final) cleared to
	// be applied in order (streamGate).
	streamGated bool
	// replyRan is set on a reply whose reply method ran on the whole
	// output (the last chunk to arrive, or the only one).
	replyRan bool
	// mu orders status writes: a delayed "running" never lands after the
	// terminal state. It guards record, statusWrites and finished.
	mu           sync.Mutex
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
	if m.Reply.Part() {
		return partKey(m.Reply.DeliveryID, m.Reply.Seq)
	}
	if m.Reply != nil {
		return m.Reply.DeliveryID + ".reply." + strconv.Itoa(m.Reply.Chunk)
	}
	return message.DeliveryID(m.ID, node)
}

// inflight is the node's registry of the deliveries in its hands.
type inflight struct {
	mu sync.Mutex
	m  map[string]*delivery
}

// enter registers d and returns nil. If a delivery with the same key is
// already in hand and d is the same stream message (the broker sent it
// again: a link cut longer than AckWait, a recreated consumer), that one
// adopts d's lease and enter returns it. If d is another stream message
// (a copy: replayed, or published again), enter returns the one in hand
// and d's lease stays d's.
func (r *inflight) enter(d *delivery) (inHand *delivery, adopted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.m[d.key]; ok {
		if cur.lease.Meta().Sequence.Stream != d.lease.Meta().Sequence.Stream {
			return cur, false
		}
		if cur.lease.Adopt(d.lease) {
			return cur, true
		}
	}
	r.m[d.key] = d
	return nil, false
}

// leave removes d; the caller settles its lease after.
func (r *inflight) leave(d *delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[d.key] == d {
		delete(r.m, d.key)
	}
}

// handle is the consumer handler: it takes one delivery to its end.
func (n *Node) handle(ctx context.Context, l *consumer.Lease) consumer.Disposition {
	msg, meta := l.Msg(), l.Meta()
	m, err := message.DecodeWire(msg.Data())
	verified := false
	if err == nil {
		verified, err = n.check(m)
	}
	if err != nil {
		disp := n.refuseRaw(ctx, msg, meta, m, verified, err)
		n.settled(disp)
		return disp
	}
	spec, lookupErr := n.methods.Lookup(m.Method)
	d := &delivery{
		key:      deliveryKey(m, n.cfg.NodeName),
		msg:      m,
		lease:    l,
		tracked:  !m.Event && m.Reply == nil,
		ledgered: lookupErr != nil || !spec.Idempotent,
	}
	d.log = n.log.With("method", m.Method, "msg_id", m.ID, "from", m.FromNode, "delivery", meta.NumDelivered)
	d.traceID = telemetry.HeaderTraceID(msg.Headers())
	n.traceDelivery(ctx, d, msg.Headers(), meta)
	if inHand, adopted := n.inflight.enter(d); adopted {
		d.log.Info("the broker sent a delivery again while this node still has it; the one in hand keeps it")
		endDelivery(d, consumer.Adopted(), true)
		return consumer.Adopted()
	} else if inHand != nil {
		disp := n.drop(ctx, d, message.CodeReplayed, fmt.Sprintf(
			"message %s came again as stream message %d while this node has it in hand (stream message %d); a replay, or a sender publishing it again: not run",
			m.ID, meta.Sequence.Stream, inHand.lease.Meta().Sequence.Stream))
		n.settled(disp)
		endDelivery(d, disp, false)
		return disp
	}
	d.record = status.Record{
		ID: m.ID, Node: n.cfg.NodeName, FromNode: m.FromNode, Method: m.Method,
		SentAt: m.SentAt, Deadline: m.Deadline, TraceID: d.traceID,
	}
	disp := n.process(ctx, d)
	endDelivery(d, disp, false)
	n.inflight.leave(d)
	n.settled(disp)
	if n.onDone != nil && d.outcome != "" && !disp.Retry() {
		n.onDone(Done{Key: d.key, Msg: m, Status: d.outcome, Attempts: meta.NumDelivered})
	}
	return disp
}

// settled notes that the queue moved on (for the ack floor).
func (n *Node) settled(disp consumer.Disposition) {
	if q := n.queue.Load(); q != nil && !disp.Retry() {
		q.settled.Store(true)
	}
}

// process takes one delivery to its end and says what to do with the
// message (see the steps above).
func (n *Node) process(ctx context.Context, d *delivery) consumer.Disposition {
	m := d.msg
	var entry ledger.Entry
	if d.ledgered {
		entry, _ = n.ledger.Get(d.key)
	}
	if m.Reply != nil && n.keys != nil && entry.State == "" {
		// A node that checks signatures takes a reply only to a request
		// it sent, from the node it sent it to.
		why, err := n.solicited(ctx, m)
		if err != nil {
			d.log.Warn("cannot read the request to check the reply answers it; it comes again", "error", err)
			return consumer.Nak(m.ACKTimeoutDuration())
		}
		if why != "" {
			return n.drop(ctx, d, message.CodeUnsolicited, fmt.Sprintf(
				"a reply from %s to %s (%s) that answers no request this node sent: %s; not run",
				m.FromNode, m.Reply.DeliveryID, m.Reply.Method, why))
		}
	}
	seq := d.lease.Meta().Sequence.Stream
	switch {
	case entry.State == ledger.Finished && d.tracked && entry.Seq != 0 && entry.Seq != seq:
		return n.drop(ctx, d, message.CodeReplayed, fmt.Sprintf(
			"message %s came again as stream message %d after its delivery (stream message %d) ended here as %s; a replay, or a sender publishing it again: not run, its status is left as it is",
			m.ID, seq, entry.Seq, entry.FinalStatus))
	case entry.State == ledger.Finished:
		d.outcome = entry.FinalStatus
		return consumer.Ack()
	case entry.State == "" && d.tracked && n.now().After(m.LedgerExpiry(n.now())):
		return n.drop(ctx, d, message.CodeReplayed, fmt.Sprintf(
			"message %s arrived after %s, when this node's ledger may have forgotten it (its deadline was %s): it can only be a replay; not run",
			m.ID, m.LedgerExpiry(n.now()).UTC().Format(time.RFC3339), m.Deadline.UTC().Format(time.RFC3339)))
	}
	switch entry.State {
	case ledger.Completed, ledger.Refused:
		d.log.Info("the delivery already ended on this node; finishing it without running it", "state", entry.State)
		d.replyRan = entry.Outcome != nil && entry.Outcome.ReplyRan
		if spec, err := n.methods.Lookup(m.Method); err == nil && spec.Streams {
			d.streamed = entry.Lines + 1
		}
		return n.finish(ctx, d, entry.Outcome, true)
	}
	rerun := entry.State == ledger.Started
	if d.tracked && !rerun && entry.State == "" {
		// A later run of a repeated message waits on the broker until it
		// is due.
		if wait := n.untilDue(ctx, m); wait > 0 {
			return consumer.Nak(wait)
		}
	}
	if d.tracked && !rerun {
		won, err := deadline.Claim(ctx, n.js, n.assets.Deadlines, d.key, n.signer.MsgID("claim."+d.key), m.DeadlineSeq, m.StorageTTL(n.now()))
		if errors.Is(err, deadline.ErrCancelled) {
			by, _ := deadline.CancelledBy(ctx, n.assets.Deadlines, d.key)
			return n.refuse(ctx, d, status.Cancelled, string(status.Cancelled), fmt.Sprintf("cancelled by %s before it ran (steward cancel)", by))
		}
		if err != nil {
			if ctx.Err() != nil {
				return consumer.Nak(0)
			}
			d.log.Warn("cannot claim the delivery now; it comes again", "error", err)
			return consumer.Nak(m.ACKTimeoutDuration())
		}
		if !won {
			return n.refuse(ctx, d, status.DeliveryTimedOut, string(status.DeliveryTimedOut),
				"the delivery deadline passed before the node took the message; central records it as delivery_timed_out")
		}
	}
	spec, err := n.methods.Lookup(m.Method)
	if err != nil {
		return n.refuse(ctx, d, status.Rejected, codeOf(err), err.Error())
	}
	if d.tracked {
		if err := n.procs.Allows(spec.Name, m.FromNode); err != nil {
			return n.refuse(ctx, d, status.Rejected, string(message.CodeNotRunning), err.Error())
		}
	}
	if n.policy != nil && d.tracked && !spec.PolicyExempt {
		dec := n.policy.Decide(m.FromNode, m.Method, m.MethodArgs)
		if !dec.Allowed {
			d.policy = "denied by " + dec.Reason
			return n.refuse(ctx, d, status.Rejected, string(message.CodeDenied),
				fmt.Sprintf("denied by this node's policy: %s", dec.Reason))
		}
		d.policy = "allowed by " + dec.Reason
	}
	d.spec = spec
	if rerun {
		if o := n.endedBeforeCrash(d); o != nil {
			// The run ended just before the node died: it must not run
			// again. Its outcome is what the guard recorded.
			d.run = entry.Runs
			d.log.Warn("the method had ended when the node died, before its outcome was recorded; not running it again", "exit_code", *o.ExitCode)
			if !n.complete(ctx, d, o) {
				return consumer.Nak(0)
			}
			return n.finish(ctx, d, o, false)
		}
	}
	if retries := m.RetriesOr(n.cfg.DefaultMessageRetries); rerun && m.Reply == nil && entry.Runs > retries {
		return n.refuse(ctx, d, status.Undeliverable, string(status.Undeliverable),
			fmt.Sprintf("the method was started %d times and never finished (the node stopped or died while it ran); the message allows %d retries", entry.Runs, retries))
	}
	if r := m.Reply; r.Part() || r != nil && r.Streamed {
		// Streamed output is applied in order, each part once.
		n.streamMu.Lock()
		defer n.streamMu.Unlock()
		apply, wait, err := n.streamGate(d)
		switch {
		case err != nil:
			d.log.Warn("streamed output: cannot read where it stands; it comes again", "error", err)
			return consumer.Nak(m.ACKTimeoutDuration())
		case wait:
			return consumer.Nak(time.Second)
		case !apply:
			return consumer.Ack()
		}
		d.streamGated = true
	}
	d.numbered = entry.Lines
	d.priorAppend = entry.AppendAt
	if d.ledgered {
		run, err := n.ledger.Start(d.key, seq, m.LedgerExpiry(n.now()))
		if err != nil {
			d.log.Error("cannot record that the method starts, so it does not run; it comes again", "error", err)
			return consumer.Nak(m.ACKTimeoutDuration())
		}
		d.run = run
	}
	if rerun {
		d.log.Warn("running the method again: the node stopped or died while it ran", "run", d.run)
	}
	outcome, interrupted := n.executeTraced(ctx, d, spec)
	if interrupted {
		d.log.Info("method interrupted by the node stopping; it runs again after restart")
		return consumer.Nak(0)
	}
	if m.Reply != nil && outcome.Status != string(status.Succeeded) && replyRetryable(outcome) && n.now().Before(m.Deadline) {
		return n.retryReply(ctx, d, outcome)
	}
	if d.streamGated && outcome.Status == string(status.Succeeded) {
		if err := n.streamApplied(d); err != nil {
			d.log.Warn("streamed output applied, but not where it stands: it may be applied again", "error", err)
		}
	}
	// The outcome is on disk before anything leaves the node: from here
	// on, a redelivery finishes the delivery instead of running it again.
	if d.ledgered && !n.complete(ctx, d, outcome) {
		return consumer.Nak(0)
	}
	return n.finish(ctx, d, outcome, false)
}

// complete records the outcome in the ledger, trying again while the
// disk refuses (the lease is kept meanwhile): the method ran and must not
// run again, and nothing may be acknowledged before the record exists. It
// returns false only when the node stops first.
func (n *Node) complete(ctx context.Context, d *delivery, o *ledger.Outcome) bool {
	backoff := 100 * time.Millisecond
	reported := false
	for {
		err := n.ledger.Complete(d.key, d.msg.LedgerExpiry(n.now()), o)
		if err == nil {
			return true
		}
		d.log.Error("cannot record the outcome; holding the message until it can be", "error", err)
		if !reported {
			reported = true
			n.reportError(ctx, d.key+".ledger", fmt.Sprintf("node %s cannot record the outcome of %s (message %s) in its ledger: %v", n.cfg.NodeName, d.msg.Method, d.msg.ID, err))
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// runRecord is the base path of the files in which a delivery's command
// keeps its output and its guard its exit code (methods.Request.RunRecord).
// It is absolute: the command runs in the data folder.
func (n *Node) runRecord(key string) string {
	return filepath.Join(n.runs, key)
}

// endedBeforeCrash returns the outcome of a run whose command had ended
// when the node died, before the node recorded it: the exit code its guard
// wrote, with the output it recorded.
func (n *Node) endedBeforeCrash(d *delivery) *ledger.Outcome {
	res, ok := methods.EndedRun(n.runRecord(d.key))
	if !ok {
		return nil
	}
	code := *res.ExitCode
	note := "steward: the node died after the command ended and before it recorded the outcome; the command ran once, and this is its outcome as its process guard recorded it"
	o := &ledger.Outcome{Status: string(status.Succeeded), ExitCode: res.ExitCode, FinishedAt: n.now().UTC(),
		Output: res.Output, Stderr: appendLine(res.Stderr, note)}
	if code != 0 {
		o.Status, o.ErrorCode = string(status.Failed), "exit_status"
		o.Error = fmt.Sprintf("the command exited with code %d", code)
	}
	return o
}

// appendLine adds a line to b.
func appendLine(b []byte, line string) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return append(append(b, line...), '\n')
}

// check validates a message that came from the broker. On a node that
// checks signatures, the signature is checked first: verified says it
// holds, so the message's own word on which delivery it is can be taken.
func (n *Node) check(m *message.Message) (verified bool, err error) {
	if m.ID == "" {
		return false, fmt.Errorf("the message has no id (was it published without steward?): %w", message.ErrFieldValue)
	}
	if m.FromNode == "" {
		return false, fmt.Errorf("the message has no fromNode: %w", message.ErrFieldValue)
	}
	if n.keys != nil {
		if err := n.keys.Verify(m); err != nil {
			return false, fmt.Errorf("%w: %w", message.ErrBadSignature, err)
		}
		verified = true
	}
	if err := message.Validate(m, n.methods.All()); err != nil {
		return verified, err
	}
	if m.ToNode != n.cfg.NodeName {
		return verified, fmt.Errorf("the message is for %q, not this node: %w", m.ToNode, message.ErrFieldValue)
	}
	return verified, nil
}

// execute runs the method. interrupted is true when the node is stopping:
// the outcome then does not count and the message runs again later.
func (n *Node) execute(ctx context.Context, d *delivery, spec methods.Spec) (o *ledger.Outcome, interrupted bool) {
	m := d.msg
	d.record.DeliveredAt = n.now().UTC()
	d.record.Attempt = uint64(d.run)
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
	defer n.metrics.Running(spec.Name)()
	timeout := m.MethodTimeoutDuration()
	if timeout <= 0 {
		timeout = spec.DefaultTimeout
	}
	started := n.now().UTC()
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
	// A delivery can be stopped through the process table (REQOpProcessStop).
	stopCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	runCtx, cancel := context.WithTimeout(stopCtx, timeout)
	defer cancel()
	if d.tracked {
		n.procs.Enter(d.key, spec.Name, m.FromNode, func(reason string) { stop(stopped{reason}) })
		defer n.procs.Leave(d.key)
	}
	req := &methods.Request{Msg: m, Attempt: uint64(d.run), Env: n.env, Log: d.log, Stored: d.lease.Meta().Timestamp, PriorAppend: -1}
	if d.ledgered {
		// A method that appends to a file says where, first: a rerun
		// after a crash then does not append the same data again.
		if d.priorAppend != nil {
			req.PriorAppend = *d.priorAppend
		}
		req.AppendAt = func(offset int64) error { return n.ledger.NoteAppend(d.key, offset) }
	}
	var lines *lineStream
	if spec.Streams && d.tracked {
		lines = n.newLineStream(ctx, d, d.numbered)
		req.Stream = lines
	}
	if d.ledgered && d.tracked && spec.RunsProcess {
		req.RunRecord = n.runRecord(d.key)
		if d.run > 1 {
			methods.RemoveRunRecord(req.RunRecord) // an interrupted run's: not this run's
		}
	}
	var res *methods.Result
	var err error
	if m.Reply != nil && m.Reply.Chunks > 1 {
		res, d.replyRan, err = n.runChunk(runCtx, d, spec, req)
	} else {
		res, err = runSafely(runCtx, spec, req)
		d.replyRan = m.Reply != nil && !m.Reply.Part()
	}
	if lines != nil {
		next, sent := lines.close()
		if !sent {
			return nil, true
		}
		d.streamed = next
	}
	if ctx.Err() != nil {
		return nil, true
	}
	if res == nil {
		res = &methods.Result{}
	}
	o = &ledger.Outcome{
		Status: string(status.Succeeded), ExitCode: res.ExitCode, Output: res.Output, Stderr: res.Stderr,
		StartedAt: started, FinishedAt: n.now().UTC(), ReplyRan: d.replyRan,
	}
	var stoppedBy stopped
	switch {
	case errors.As(context.Cause(stopCtx), &stoppedBy):
		o.Status, o.ErrorCode = string(status.Cancelled), string(status.Cancelled)
		o.Error = "the method was stopped while it ran: " + stoppedBy.reason
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

// finish stores the outcome (reply, terminal status, error report) and
// acknowledges the message once all of it is stored. If any of it cannot
// be stored, the message is left for redelivery and finish runs again
// then, from the ledger, without running the method (again is true).
func (n *Node) finish(ctx context.Context, d *delivery, o *ledger.Outcome, again bool) consumer.Disposition {
	m := d.msg
	if o == nil {
		o = &ledger.Outcome{Status: string(status.Failed), Error: "outcome lost", ErrorCode: string(message.CodeInternal)}
	}
	st := status.Status(o.Status)
	d.outcome = o.Status
	refused := !ran(o)
	var futures []jetstream.PubAckFuture
	var writes, pendingWrites []*status.Write
	if d.tracked {
		// The reply goes first: it is what the sender waits for.
		replySent := false
		if spec, _ := n.methods.Lookup(m.Method); spec.Kind == methods.Command && !refused {
			fs, err := n.publishReply(ctx, d, o)
			if err != nil {
				d.log.Warn("reply not sent; the message comes again", "error", err)
				return consumer.Nak(m.ACKTimeoutDuration())
			}
			futures = append(futures, fs...)
			replySent = true
		}
		d.mu.Lock() // the "running" timer may be writing the record
		d.record.ReplySent = d.record.ReplySent || replySent
		d.finished = true
		if d.runningTimer != nil {
			d.runningTimer.Stop()
		}
		pendingWrites = d.statusWrites
		// delivery_timed_out is central's to record.
		if st != status.DeliveryTimedOut && (!again || !n.terminalStored(ctx, d)) {
			d.record.Status = st
			d.record.Attempt = uint64(max(d.run, 1))
			d.record.ExitCode, d.record.Error, d.record.ErrorCode = o.ExitCode, o.Error, o.ErrorCode
			d.record.StartedAt, d.record.FinishedAt = o.StartedAt, o.FinishedAt
			d.record.SetOutput(o.Output)
			d.record.SetStderr(o.Stderr)
			writes = append(writes, n.putStatus(ctx, d))
		}
		d.mu.Unlock()
	}
	if d.msg.Reply != nil && d.replyRan && (!again || !n.replyStored(ctx, d)) {
		writes = append(writes, n.putReplyStatus(ctx, d, o))
	}
	if !st.Success() && st != status.DeliveryTimedOut {
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
			d.log.Debug("intermediate status not stored", "error", err)
		}
	}
	if err := stream.Await(ctx, futures...); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return consumer.Nak(0)
		}
		d.log.Warn("outcome not stored yet; the message comes again", "error", err)
		return consumer.Nak(m.ACKTimeoutDuration())
	}
	if d.ledgered {
		if err := n.ledger.Finish(d.key); err != nil {
			d.log.Warn("ledger", "error", err)
		}
	}
	if spec, _ := n.methods.Lookup(m.Method); d.ledgered && d.tracked && spec.RunsProcess {
		methods.RemoveRunRecord(n.runRecord(d.key))
	}
	if !again {
		n.auditProcessed(d, o)
	}
	if refused {
		return consumer.Term(o.Status + ": " + o.Error)
	}
	if st.Success() {
		d.log.Debug("done", "status", st)
	}
	return consumer.Ack()
}

// terminalStored reports whether the delivery's record is already
// terminal: an outcome finished again (its acknowledgement was lost) must
// not write a second terminal state.
func (n *Node) terminalStored(ctx context.Context, d *delivery) bool {
	rec, _, err := n.status.Get(ctx, d.key)
	return err == nil && rec.Status.Terminal()
}

// replyStored is terminalStored for the record of the reply d carries.
func (n *Node) replyStored(ctx context.Context, d *delivery) bool {
	rec, _, err := n.status.Get(ctx, status.ReplyKey(d.msg.Reply.DeliveryID))
	return err == nil && rec.Status.Terminal()
}

// refuse ends a delivery without running it (rejected, undeliverable, or
// deadline passed): the refusal is recorded in the ledger like a
// completion, so it is final whatever comes later, then finished.
func (n *Node) refuse(ctx context.Context, d *delivery, st status.Status, code, text string) consumer.Disposition {
	o := &ledger.Outcome{Status: string(st), Error: text, ErrorCode: code, FinishedAt: n.now().UTC()}
	if d.ledgered {
		if err := n.ledger.Refuse(d.key, d.lease.Meta().Sequence.Stream, d.msg.LedgerExpiry(n.now()), o); err != nil {
			d.log.Error("cannot record the refusal; the message comes again", "error", err)
			return consumer.Nak(d.msg.ACKTimeoutDuration())
		}
	}
	return n.finish(ctx, d, o, false)
}

// untilDue is how long m waits before it is due (its RunAt), on the
// broker's clock, at most maxDueWait at a time (it is checked again then).
func (n *Node) untilDue(ctx context.Context, m *message.Message) time.Duration {
	if m.RunAt.IsZero() || n.now().After(m.RunAt.Add(time.Minute)) {
		return 0
	}
	now := n.now()
	if b, err := stream.BrokerNow(ctx, n.js, n.assets.Deadlines, n.cfg.NodeName); err == nil {
		now = b
	}
	return min(max(m.RunAt.Sub(now), 0), maxDueWait)
}

// maxDueWait is the longest a message that is not due waits before the
// node looks at it again.
const maxDueWait = 10 * time.Minute

// solicited checks that reply m answers a request this node sent: the
// request is read where the answering node says it took it (only senders
// write a node's queue), and must be this node's message to the answering
// node, with the same ID and method, and the reply method, folder, file
// name and arguments the reply uses. It returns why not, or "".
func (n *Node) solicited(ctx context.Context, m *message.Message) (string, error) {
	r := m.Reply
	if r.RequestSeq == 0 {
		return "the reply does not say where its request is (requestSeq)", nil
	}
	raw, err := n.assets.Messages.GetMsg(ctx, r.RequestSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Sprintf("its request is not on the broker (stream message %d)", r.RequestSeq), nil
	}
	if err != nil {
		return "", err
	}
	if raw.Subject != stream.MessageSubject(m.FromNode) {
		return fmt.Sprintf("stream message %d is not a message to %s", r.RequestSeq, m.FromNode), nil
	}
	req, err := message.DecodeWire(raw.Data)
	if err != nil {
		return fmt.Sprintf("stream message %d does not decode: %v", r.RequestSeq, err), nil
	}
	replyMethod := req.ReplyMethod
	if replyMethod == "" {
		replyMethod = methods.DefaultReplyMethod
	}
	switch {
	case req.Reply != nil || req.Event || req.FromNode != n.cfg.NodeName || req.ToNode != m.FromNode || req.ID != m.ID:
		return fmt.Sprintf("stream message %d is not this node's message %s to %s", r.RequestSeq, m.ID, m.FromNode), nil
	case req.Method != r.Method || replyMethod != m.Method || req.Directory != m.Directory || req.FileName != m.FileName ||
		!slices.Equal(req.ReplyMethodArgs, m.MethodArgs):
		return fmt.Sprintf("it does not answer message %s as sent (method, reply method, directory, file name or reply arguments differ)", m.ID), nil
	}
	return "", nil
}

// drop refuses a message that must leave no trace on any delivery (a copy
// of one whose ledger entry and status record are the original's, or a
// reply to a request never sent): it is reported to central, audited and
// dropped.
func (n *Node) drop(ctx context.Context, d *delivery, code message.Code, text string) consumer.Disposition {
	seq := d.lease.Meta().Sequence.Stream
	text = fmt.Sprintf("%s: %s (stream sequence %d)", code, text, seq)
	d.log.Warn("message refused", "code", code, "error", text)
	if f := n.reportError(ctx, "dropped."+strconv.FormatUint(seq, 10), text); f != nil {
		if err := stream.Await(ctx, f); err != nil && ctx.Err() == nil {
			return consumer.Nak(n.cfg.DefaultMessageTimeout)
		}
	}
	_ = n.audit.Write(audit.Record{Event: audit.Refused, DeliveryID: d.key, Status: string(status.Rejected),
		Attempt: d.lease.Meta().NumDelivered, Error: text, Message: d.msg})
	n.metrics.Refused(string(code))
	return consumer.Term(string(code))
}

// refuseRaw refuses a message that did not decode or validate (m is nil
// when it did not decode). Where it names a delivery to this node still
// pending, that delivery becomes rejected, so the sender learns why: on a
// node that checks signatures only a request whose signature held names
// one (anyone may publish junk under a Nats-Msg-Id); on one that does
// not, its Nats-Msg-Id does.
func (n *Node) refuseRaw(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, m *message.Message, verified bool, cause error) consumer.Disposition {
	claimed := msg.Headers().Get(jetstream.MsgIDHeader)
	deliveryID := claimed
	if n.keys != nil {
		deliveryID = ""
		if verified && m.Reply == nil && !m.Event && m.ToNode == n.cfg.NodeName {
			deliveryID = message.DeliveryID(m.ID, n.cfg.NodeName)
		}
	}
	about := fmt.Sprintf("stream sequence %d", meta.Sequence.Stream)
	if claimed != "" {
		about += fmt.Sprintf(", delivery %.120q", claimed)
	}
	if m != nil {
		about += fmt.Sprintf(", id %.80q from %.80q", m.ID, m.FromNode)
	}
	text := fmt.Sprintf("message on %s (%s) refused: %v", msg.Subject(), about, cause)
	log := n.log
	if m != nil {
		log = log.With("msg_id", m.ID)
	}
	log.Warn("message refused", "subject", msg.Subject(), "delivery", claimed, "error", cause)
	var errs []error
	if id, node, ok := message.SplitDeliveryID(deliveryID); ok && node == n.cfg.NodeName && message.ValidID(id) == nil {
		errs = append(errs, n.rejectPending(ctx, deliveryID, meta, cause))
	}
	if f := n.reportError(ctx, "raw."+strconv.FormatUint(meta.Sequence.Stream, 10), text); f != nil {
		errs = append(errs, stream.Await(ctx, f))
	}
	if err := errors.Join(errs...); err != nil && ctx.Err() == nil {
		return consumer.Nak(n.cfg.DefaultMessageTimeout)
	}
	_ = n.audit.Write(audit.Record{Event: audit.Refused, DeliveryID: claimed, Status: string(status.Rejected),
		Attempt: meta.NumDelivered, Error: text})
	n.metrics.Refused(string(message.CodeOf(cause)))
	return consumer.Term("rejected: " + cause.Error())
}

// rejectPending marks a delivery rejected if it has no record yet or is
// still pending (compare-and-set: a record that moved on is left alone).
func (n *Node) rejectPending(ctx context.Context, deliveryID string, meta *jetstream.MsgMetadata, cause error) error {
	id, node, _ := message.SplitDeliveryID(deliveryID)
	for range 3 {
		rec, rev, err := n.status.Get(ctx, deliveryID)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rec = &status.Record{ID: id, Node: node}
		case err != nil:
			return err
		case rec.Status != status.Pending:
			return nil
		}
		now := n.now().UTC()
		rec.Status, rec.Error, rec.ErrorCode = status.Rejected, cause.Error(), string(message.CodeOf(cause))
		rec.Attempt, rec.FinishedAt, rec.UpdatedAt = meta.NumDelivered, now, now
		if rev == 0 {
			err = n.status.CreateAsync(ctx, rec, message.StatusRetention).Wait(ctx)
		} else {
			err = n.status.Update(ctx, rec, rev, message.StatusRetention)
		}
		if !errors.Is(err, status.ErrConflict) && !errors.Is(err, status.ErrExists) {
			return err
		}
	}
	return nil
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
	now := n.now()
	d.record.UpdatedAt = now.UTC()
	rec := d.record
	return n.status.PutAsync(ctx, &rec, d.msg.StatusTTL(now))
}

func (n *Node) auditProcessed(d *delivery, o *ledger.Outcome) {
	if !d.ledgered {
		return // idempotent events (hellos) are not audited: the registry keeps the last
	}
	m := d.msg
	if m.Reply != nil && len(m.Data) > 0 {
		// The reply's data is the request's output: the request's own
		// audit line on the other node recreates it; keep this line small.
		m = m.Clone()
		m.Data = nil
	}
	if err := n.audit.Write(audit.Record{
		Event: audit.Processed, DeliveryID: d.key, Status: o.Status, Attempt: uint64(d.run),
		ExitCode: o.ExitCode, Error: o.Error, Policy: d.policy, Message: m,
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
	s := fmt.Sprintf("%s: %s from %s (message %s, run %d): %s", o.Status, m.Method, m.FromNode, m.ID, d.run, o.Error)
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
	case errors.Is(err, methods.ErrHTTPStatus):
		return "http_status"
	case errors.Is(err, methods.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, methods.ErrOutputCap):
		return "output_cap"
	}
	return string(message.CodeOf(err))
}
