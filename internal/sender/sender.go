// Package sender puts messages into the system: it decodes and validates
// operator input, applies defaults, gives each message an ID, fans a
// message out to one delivery per node, creates each delivery's pending
// status record and its delivery-deadline schedule, and publishes the
// deliveries with their storage TTL.
//
// A batch is all-or-nothing per message, never per batch: a bad message
// gets its own error and the good ones still go. Send returns only after
// every delivery it reports as sent is stored by the broker.
//
// Target expressions ("*", label selectors, see package target) are
// resolved to node names before a message is validated, by the Resolver
// its caller gives (the sender itself never reads the node registry); a
// message that holds one and has no Resolver is refused
// (unresolved_target), so no expression is ever queued or published.
package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/deadline"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/outbox"
	"github.com/stewardfleet/steward/internal/signature"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
	"github.com/stewardfleet/steward/internal/target"
	"github.com/stewardfleet/steward/internal/telemetry"
)

// Defaults fill fields a message leaves out.
type Defaults struct {
	ACKTimeout       time.Duration
	Retries          int
	DeliveryDeadline time.Duration
}

// Options configure a Sender.
type Options struct {
	JS      jetstream.JetStream
	Status  *status.Store
	Methods *methods.Registry
	// Node is the sending node: the fromNode of every message.
	Node string
	// CentralNode receives delivery-deadline events.
	CentralNode string
	Defaults    Defaults
	// MaxPayload is the broker's message size limit.
	MaxPayload int64
	Audit      *audit.Log
	Now        func() time.Time
	// Outbox, if set, keeps a valid message that cannot be stored now
	// (the broker is unreachable, or refuses to store) for Forward to send
	// later: nothing an operator was told is sent is lost.
	Outbox *outbox.Outbox
	// Connected reports whether the broker can be reached now; when it
	// says no, messages go straight to the outbox. Nil: always try.
	Connected func() bool
	// BrokerNow, if set, reads the broker's clock. The sender then takes
	// sentAt and relative delivery deadlines on the broker's clock (it
	// measures its offset at most every ClockRefresh), so a sender whose
	// clock is off still gives a message the deadline that was asked for.
	BrokerNow func(ctx context.Context) (time.Time, error)
	// Signer, if not nil, signs each delivery before it is published, and
	// tags its Nats-Msg-Id (signature.Signer.MsgID).
	Signer *signature.Signer
	// Tracing, if not nil, traces each message (span "send", a "publish"
	// per delivery) and carries the trace in the deliveries' headers.
	Tracing *telemetry.Tracing
}

// ClockRefresh is how long a measured offset to the broker's clock is used.
const ClockRefresh = 10 * time.Minute

// Sender sends messages.
type Sender struct {
	o Options

	mu         sync.Mutex
	offset     atomic.Int64 // broker's clock minus Now, in nanoseconds (written under mu)
	measuredAt time.Time    // when offset was measured (zero: never)
	measuring  bool         // a caller is reading the broker's clock
}

// New returns a Sender.
func New(o Options) *Sender {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 1 << 20
	}
	return &Sender{o: o}
}

// Now is the time on the broker's clock, as far as the sender knows it:
// its own clock corrected by the offset it measured last (within
// ClockRefresh), or its own clock when it cannot tell. Messages the
// sender sends take their sentAt from it; a node's replies do too.
//
// The first measurement is waited for by every caller; a refresh is made
// by one caller while the others go on with the offset measured before.
func (s *Sender) Now(ctx context.Context) time.Time {
	local := s.o.Now()
	if s.o.BrokerNow == nil {
		return local
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stale := s.measuredAt.IsZero() || local.Sub(s.measuredAt) > ClockRefresh || local.Before(s.measuredAt)
	if stale && !s.measuring && (s.o.Connected == nil || s.o.Connected()) {
		first := s.measuredAt.IsZero()
		s.measuring = true
		if !first {
			s.mu.Unlock()
		}
		offset, ok := s.measure(ctx)
		if !first {
			s.mu.Lock()
		}
		s.measuring = false
		after := s.o.Now()
		if ok {
			s.offset.Store(int64(offset))
			s.measuredAt = after
		} else {
			// Keep the last offset; try again in a while, not on every send.
			s.measuredAt = after.Add(time.Minute - ClockRefresh)
		}
	}
	return local.Add(time.Duration(s.offset.Load()))
}

// OnBrokerClock is local, a time on the sender's clock, on the broker's
// as far as the sender knows it (the offset it measured last), without
// reading the broker's clock: it never waits.
func (s *Sender) OnBrokerClock(local time.Time) time.Time {
	return local.Add(time.Duration(s.offset.Load()))
}

// measure reads the broker's clock and returns its offset from the
// sender's, taken at the middle of the round trip.
func (s *Sender) measure(ctx context.Context) (time.Duration, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	before := s.o.Now()
	broker, err := s.o.BrokerNow(ctx)
	after := s.o.Now()
	if err != nil {
		return 0, false
	}
	return broker.Sub(before.Add(after.Sub(before) / 2)), true
}

// Receipt tells what became of one message of a batch.
type Receipt struct {
	// Index is the message's position in the input (0-based).
	Index int `json:"index"`
	// ID is the assigned message ID ("" when the message was not sent).
	ID string `json:"id,omitempty"`
	// Method and Nodes echo what was sent.
	Method string   `json:"method,omitempty"`
	Nodes  []string `json:"nodes,omitempty"`
	// Error says why the message was not sent.
	Error string `json:"error,omitempty"`
	// Code is the error's stable code.
	Code string `json:"code,omitempty"`
	// Field is the message field the error is about, as the JSON message
	// format spells it ("methodTimeout", or "operation.opCmd" inside an
	// object field); "" when the error is about no one field.
	Field string `json:"field,omitempty"`
	// Runs are the IDs of the later runs of a repeated message (the
	// first run's is ID).
	Runs []string `json:"runs,omitempty"`
	// Duplicate says the message's ID was sent before, and nothing new
	// was sent now.
	Duplicate bool `json:"duplicate,omitempty"`
	// Queued says the broker could not store the message now: it waits in
	// the node's outbox and is sent when the broker can be reached.
	Queued bool `json:"queued,omitempty"`
	// Message is the prepared message of a receipt of InputOptions.Hold:
	// what Publish sends, to some of its nodes at a time.
	Message *message.Message `json:"-"`
}

// OK reports whether the message was sent.
func (r *Receipt) OK() bool { return r.Error == "" }

// CodePublishFailed is the receipt code of a valid message the broker did
// not store (unreachable, or refusing writes). Deliveries whose pending
// record was written before the failure stay pending until their deadline.
const CodePublishFailed = "publish_failed"

// CodeDuplicateID is the receipt code of a message whose ID another
// message already uses.
const CodeDuplicateID = "duplicate_id"

// headerRoom is what a message's NATS headers may take of MaxPayload.
const headerRoom = 512

// Resolver replaces the target expressions among a message's targets by
// node names (target.Fleet.Resolve against the registry). Its errors wrap
// target.ErrNoMatch when the expressions select no node.
type Resolver func(ctx context.Context, targets []string) ([]string, error)

// InputOptions say how SendInputWith treats a batch.
type InputOptions struct {
	// Targets are added to every message's targets (steward send
	// --target): node names or expressions.
	Targets []string
	// Resolver resolves target expressions; nil refuses them.
	Resolver Resolver
	// Hold validates and prepares every message (ID, defaults, deadline,
	// resolved targets, size) and publishes nothing: each good receipt
	// carries its Message, for Publish (a send in waves), or for nothing
	// at all (a dry run).
	Hold bool
}

// SendInput decodes operator input (a JSON array or one object) and sends
// every valid message. It returns one receipt per input element. err is
// set when the input as a whole cannot be read.
func (s *Sender) SendInput(ctx context.Context, input []byte) ([]Receipt, error) {
	return s.SendInputWith(ctx, input, InputOptions{})
}

// SendInputWith is SendInput with options.
func (s *Sender) SendInputWith(ctx context.Context, input []byte, o InputOptions) ([]Receipt, error) {
	if int64(len(input)) > MaxInput {
		err := fmt.Errorf("input is %d bytes, more than the %d MiB a batch may have: %w", len(input), MaxInput>>20, message.ErrTooLarge)
		_ = s.o.Audit.Write(audit.RefusedInput(input, err))
		return nil, err
	}
	msgs, indexes, itemErrs, err := message.Decode(input)
	if err != nil {
		_ = s.o.Audit.Write(audit.RefusedInput(input, err))
		return nil, err
	}
	receipts := make([]Receipt, len(msgs)+len(itemErrs))
	for _, ie := range itemErrs {
		receipts[ie.Index] = failed(ie.Index, ie.Err)
		s.refuse(ie, nil)
	}
	var good []*message.Message
	var goodIndexes []int
	runs := map[int][]int{} // input index → positions in good of its later runs
	for i, m := range msgs {
		if err := s.resolve(ctx, m, o); err != nil {
			s.refuse(err, m)
			receipts[indexes[i]] = failed(indexes[i], err)
			continue
		}
		if o.Hold {
			if m.Repeat > 1 {
				err := aboutField("repeat", fmt.Errorf("a repeated message (repeat %d) is sent whole, not in waves: send it without --max-concurrency: %w", m.Repeat, message.ErrFieldValue))
				s.refuse(err, m)
				receipts[indexes[i]] = failed(indexes[i], err)
				continue
			}
			receipts[indexes[i]] = s.hold(ctx, indexes[i], m)
			continue
		}
		good, goodIndexes = append(good, m), append(goodIndexes, indexes[i])
		// A repeated message is one message per run.
		if m.Repeat > 1 && m.RepeatRun == 0 {
			if m.ID == "" {
				m.ID = nuid.Next()
			}
			for n := 2; n <= m.Repeat; n++ {
				run := m.Clone()
				run.ID, run.RepeatOf, run.RepeatRun = message.RunID(m.ID, n), m.ID, n
				runs[indexes[i]] = append(runs[indexes[i]], len(good))
				good, goodIndexes = append(good, run), append(goodIndexes, indexes[i])
			}
		}
	}
	later := make([]Receipt, len(good))
	for start := 0; start < len(good); start += Window {
		end := min(start+Window, len(good))
		for i, r := range s.sendWindow(ctx, good[start:end], goodIndexes[start:end]) {
			later[start+i] = r
		}
	}
	for pos, r := range later {
		if good[pos].RepeatRun == 0 {
			receipts[goodIndexes[pos]] = r
		}
	}
	for index, positions := range runs {
		for _, pos := range positions {
			r := later[pos]
			receipts[index].Runs = append(receipts[index].Runs, good[pos].ID)
			if !r.OK() && receipts[index].OK() {
				receipts[index].Error, receipts[index].Code = fmt.Sprintf("run %d (%s): %s", good[pos].RepeatRun, good[pos].ID, r.Error), r.Code
				receipts[index].Field = r.Field
			}
		}
	}
	return receipts, nil
}

// resolve adds o.Targets to m's and replaces the target expressions by
// the nodes they select, so that m names nodes only.
//
// Its errors about the expressions themselves (none can be resolved here,
// none matches, a bad selector) are about the message field that holds
// them; a registry that cannot be read is no field's fault.
func (s *Sender) resolve(ctx context.Context, m *message.Message, o InputOptions) error {
	if len(o.Targets) > 0 {
		m.ToNodes = append(m.ToNodes, o.Targets...)
	}
	targets := m.Targets()
	if !target.HasExpr(targets) {
		return nil
	}
	field := exprField(m, len(o.Targets))
	if o.Resolver == nil {
		return aboutField(field, fmt.Errorf("target expressions such as \"*\" and role=db are resolved against the node registry by steward send and the central node's socket, not here: name the nodes: %w", message.ErrUnresolvedTarget))
	}
	nodes, err := o.Resolver(ctx, targets)
	switch {
	case errors.Is(err, target.ErrNoMatch):
		return aboutField(field, fmt.Errorf("%w: %w", err, message.ErrNoTarget))
	case errors.Is(err, target.ErrBadLabel):
		return aboutField(field, fmt.Errorf("%w: %w", err, message.ErrFieldValue))
	case err != nil:
		return fmt.Errorf("resolve the targets: %w: %w", err, message.ErrUnresolvedTarget)
	}
	m.ToNode, m.ToNodes = "", nodes
	return nil
}

// exprField is the message field whose target expressions a resolve error
// is about: toNode when it holds one, else toNodes, whose last extra
// entries are InputOptions.Targets, no field of the message ("" when only
// they hold expressions).
func exprField(m *message.Message, extra int) string {
	if target.IsExpr(m.ToNode) {
		return "toNode"
	}
	if own := m.ToNodes[:max(len(m.ToNodes)-extra, 0)]; target.HasExpr(own) {
		return "toNodes"
	}
	return ""
}

// aboutField returns err as an error about the message field field, or
// err itself when field is "".
func aboutField(field string, err error) error {
	if field == "" || err == nil {
		return err
	}
	return &message.FieldError{Field: field, Err: err}
}

// hold validates and prepares m without publishing it (InputOptions.Hold).
func (s *Sender) hold(ctx context.Context, index int, m *message.Message) Receipt {
	if err := s.prepare(m, s.Now(ctx)); err != nil {
		s.refuse(err, m)
		return failed(index, err)
	}
	targets := m.Targets()
	if err := s.checkSize(m, targets); err != nil {
		s.refuse(err, m)
		return Receipt{Index: index, Method: m.Method, Nodes: targets, Error: err.Error(), Code: string(message.CodeTooLarge)}
	}
	return Receipt{Index: index, ID: m.ID, Method: m.Method, Nodes: targets, Message: m}
}

// Publish sends the deliveries of a held message (a receipt's Message of
// InputOptions.Hold) to nodes, some of its targets; every call adds
// deliveries to the one message, under its one ID. It returns once the
// broker stored them. Nodes sent before are not sent again.
func (s *Sender) Publish(ctx context.Context, m *message.Message, nodes []string) error {
	if _, err := s.publishDeliveries(ctx, m, nodes, false); err != nil {
		s.refuse(err, m)
		return err
	}
	part := m.Clone()
	part.ToNode, part.ToNodes = "", nodes
	_ = s.o.Audit.Write(audit.Record{Event: audit.Sent, Message: part})
	return nil
}

// CodeNotSent is the error code of the cancelled record of a target that
// a send in waves never sent to (see Withhold).
const CodeNotSent = "not_sent"

// Withhold records that a held message will not be sent to nodes: each
// gets a terminal cancelled record (code not_sent) saying why, so that
// steward status shows every target of the message. A node that already
// has a record keeps it.
func (s *Sender) Withhold(ctx context.Context, m *message.Message, nodes []string, reason string) error {
	now := s.Now(ctx).UTC()
	ttl := m.StatusTTL(now)
	writes := make([]*status.Write, len(nodes))
	for i, node := range nodes {
		rec := &status.Record{
			ID: m.ID, Node: node, FromNode: m.FromNode, Method: m.Method, Status: status.Cancelled,
			Error: reason, ErrorCode: CodeNotSent, SentAt: m.SentAt, Deadline: m.Deadline, UpdatedAt: now, FinishedAt: now,
		}
		writes[i] = s.o.Status.CreateAsync(ctx, rec, ttl)
	}
	var errs []error
	for _, w := range writes {
		if err := w.Wait(ctx); err != nil && !errors.Is(err, status.ErrExists) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Window is how many messages of a batch are on their way to the broker at
// once. The steps of each message (pending records and schedules, then the
// deliveries) are taken for the whole window together, and the deliveries
// are published in input order: two broker round trips per window instead
// of two per message, and one node still gets a batch's messages in the
// order they were given.
const Window = 64

// sendWindow sends msgs (at input positions indexes) and returns their
// receipts in the same order.
func (s *Sender) sendWindow(ctx context.Context, msgs []*message.Message, indexes []int) []Receipt {
	receipts := make([]Receipt, len(msgs))
	pubs := make([]*publication, len(msgs))
	for i, m := range msgs {
		pubs[i], receipts[i] = s.begin(ctx, indexes[i], m)
	}
	for _, p := range pubs {
		p.confirm(ctx)
	}
	for _, p := range pubs {
		p.publish(ctx)
	}
	for i, p := range pubs {
		if p != nil {
			receipts[i] = s.end(p, receipts[i], p.await(ctx))
		}
	}
	return receipts
}

// MaxInput bounds one batch: 16 MiB, as the socket takes (each message is
// also bounded by the broker's payload limit). Decoding holds a few times
// the input in memory, so the bound is what keeps a node's memory bounded
// per input.
const MaxInput = 16 << 20

func failed(index int, err error) Receipt {
	var ie *message.ItemError
	if errors.As(err, &ie) {
		err = ie.Err
	}
	return Receipt{Index: index, Error: err.Error(), Code: string(message.CodeOf(err)), Field: message.FieldOf(err)}
}

// refuse audits input that did not enter the system. The audit log is best
// effort here: the operator gets the error in the receipt either way.
func (s *Sender) refuse(err error, m *message.Message) {
	_ = s.o.Audit.Write(audit.Record{Event: audit.Refused, Error: err.Error(), Message: m})
}

// Send validates, prepares and publishes one decoded message. Its receipt
// has the message ID, or the error.
func (s *Sender) Send(ctx context.Context, m *message.Message) Receipt {
	return s.send(ctx, 0, m)
}

// send validates, prepares and publishes one message.
func (s *Sender) send(ctx context.Context, index int, m *message.Message) Receipt {
	return s.sendWindow(ctx, []*message.Message{m}, []int{index})[0]
}

// begin validates and prepares m and starts its publication. It returns
// nil and the receipt when there is nothing to publish (refused, or put in
// the outbox), else the publication and the receipt so far.
func (s *Sender) begin(ctx context.Context, index int, m *message.Message) (*publication, Receipt) {
	fresh := m.ID == "" // steward chooses it now: nothing can have used it
	if err := s.prepare(m, s.Now(ctx)); err != nil {
		s.refuse(err, m)
		return nil, failed(index, err)
	}
	targets := m.Targets()
	r := Receipt{Index: index, ID: m.ID, Method: m.Method, Nodes: targets}
	if s.o.Outbox != nil && (s.o.JS == nil || s.o.Connected != nil && !s.o.Connected()) {
		if err := s.checkSize(m, targets); err != nil {
			s.refuse(err, m)
			return nil, Receipt{Index: index, Method: m.Method, Nodes: targets, Error: err.Error(), Code: string(message.CodeTooLarge)}
		}
		return nil, s.queue(r, m, nil)
	}
	return s.start(ctx, m, targets, fresh), r
}

// end makes the receipt of a publication that ended with err.
func (s *Sender) end(p *publication, r Receipt, err error) Receipt {
	m, index, targets := p.m, r.Index, p.targets
	if err != nil {
		switch {
		case errors.Is(err, message.ErrTooLarge):
			s.refuse(err, m)
			return Receipt{Index: index, Method: m.Method, Nodes: targets, Error: err.Error(), Code: string(message.CodeTooLarge)}
		case errors.Is(err, ErrDuplicateID):
			s.refuse(err, m)
			return Receipt{Index: index, Method: m.Method, Nodes: targets, Error: err.Error(), Code: CodeDuplicateID, Field: message.FieldOf(err)}
		case s.o.Outbox != nil:
			return s.queue(r, m, err)
		}
		s.refuse(err, m)
		// Some deliveries may be stored: keep the ID so the operator can
		// look at them with `steward status`.
		r.Error = fmt.Sprintf("%v (some deliveries may have been stored: steward status %s)", err, m.ID)
		r.Code = CodePublishFailed
		return r
	}
	if p.nBefore == len(targets) {
		r.Duplicate = true // nothing new was sent
		return r
	}
	// Sent is sent: a failing audit log must not turn it into an error.
	_ = s.o.Audit.Write(audit.Record{Event: audit.Sent, Message: m})
	return r
}

// queue puts a prepared message that could not be stored (cause, or the
// broker being unreachable when cause is nil) into the outbox.
func (s *Sender) queue(r Receipt, m *message.Message, cause error) Receipt {
	if err := s.o.Outbox.Put(m); err != nil {
		err = errors.Join(cause, err)
		s.refuse(err, m)
		r.Error = fmt.Sprintf("the broker did not store the message and it could not be queued: %v", err)
		r.Code = CodePublishFailed
		return r
	}
	r.Queued = true
	rec := audit.Record{Event: audit.Queued, Message: m}
	if cause != nil {
		rec.Error = cause.Error()
	}
	_ = s.o.Audit.Write(rec)
	return r
}

// Forward sends the messages waiting in the outbox, oldest first, with
// the IDs they were given, and takes each out once the broker stored it.
// It stops at the first that cannot be sent (the broker is still out of
// reach) and returns how many it sent. A message that can never be sent
// (its ID taken by another message) is taken out and audited as refused.
func (s *Sender) Forward(ctx context.Context) (int, error) {
	entries, bad, err := s.o.Outbox.List()
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, e := range entries {
		m := e.Msg
		_, err := s.publishDeliveries(ctx, m, m.Targets(), false)
		switch {
		case errors.Is(err, ErrDuplicateID), errors.Is(err, message.ErrTooLarge):
			s.refuse(err, m)
		case err != nil:
			return sent, fmt.Errorf("forward %s: %w", m.ID, err)
		default:
			sent++
			_ = s.o.Audit.Write(audit.Record{Event: audit.Sent, Message: m})
		}
		if err := s.o.Outbox.Remove(e.Name); err != nil {
			return sent, err
		}
	}
	if len(bad) > 0 {
		return sent, fmt.Errorf("outbox %s holds files that are not messages, left there: %v", s.o.Outbox.Dir(), bad)
	}
	return sent, nil
}

// Prepare validates an operator's message and fills in defaults and the
// fields steward sets (ID, fromNode, sentAt, deadline), on the sender's
// own clock.
func (s *Sender) Prepare(m *message.Message) error { return s.prepare(m, s.o.Now()) }

func (s *Sender) prepare(m *message.Message, now time.Time) error {
	if err := message.ValidateInput(m, s.o.Methods); err != nil {
		return err
	}
	spec, err := s.o.Methods.Lookup(m.Method)
	if err != nil && !errors.Is(err, methods.ErrMethodDisabled) {
		return err
	}
	if spec.Validate != nil {
		if err := spec.Validate(m); err != nil {
			return err // it names the field it checks (methods.Spec.Validate)
		}
	}
	d := s.o.Defaults
	secs := func(d time.Duration) int { return int(d / time.Second) }
	if m.ACKTimeout == 0 {
		m.ACKTimeout = secs(d.ACKTimeout)
	}
	if m.Retries == nil {
		r := d.Retries
		m.Retries = &r
	}
	if m.ReplyACKTimeout == 0 {
		m.ReplyACKTimeout = secs(d.ACKTimeout)
	}
	if m.ReplyRetries == nil {
		r := d.Retries
		m.ReplyRetries = &r
	}
	if m.MethodTimeout == 0 {
		m.MethodTimeout = secs(spec.DefaultTimeout)
	}
	if m.ReplyMethod == "" {
		m.ReplyMethod = spec.DefaultReplyMethod
		if m.ReplyMethod == "" {
			m.ReplyMethod = methods.DefaultReplyMethod
		}
	}
	now = now.UTC()
	if m.ID == "" {
		m.ID = nuid.Next()
	}
	m.FromNode = s.o.Node
	m.SentAt = now
	if m.DeliveryDeadline != nil {
		m.Deadline = m.DeliveryDeadline.Resolve(now).UTC()
		if !m.Deadline.After(now) {
			return aboutField("deliveryDeadline", fmt.Errorf("deliveryDeadline %s is in the past: %w", m.Deadline.Format(time.RFC3339), message.ErrFieldValue))
		}
		if m.Deadline.Sub(now) > message.MaxTimeout {
			return aboutField("deliveryDeadline", fmt.Errorf("deliveryDeadline %s is more than %s away: %w", m.Deadline.Format(time.RFC3339), message.MaxTimeout, message.ErrFieldValue))
		}
	} else {
		m.Deadline = now.Add(d.DeliveryDeadline)
	}
	if m.RepeatRun > 1 {
		// A later run of a repeated message is due later; its deadline
		// counts from then.
		later := time.Duration(m.RepeatRun-1) * time.Duration(m.RepeatInterval) * time.Second
		m.RunAt, m.Deadline = now.Add(later), m.Deadline.Add(later)
		if m.Deadline.Sub(now) > message.MaxTimeout {
			// Repeat and repeatInterval alone stay within MaxTimeout
			// (message.Validate): the message's deliveryDeadline, or
			// else the default one, takes the run beyond.
			field := "repeat"
			if m.DeliveryDeadline != nil {
				field = "deliveryDeadline"
			}
			return aboutField(field, fmt.Errorf("run %d of %s is due at %s, and its delivery deadline more than %s away: %w",
				m.RepeatRun, m.RepeatOf, m.RunAt.Format(time.RFC3339), message.MaxTimeout, message.ErrFieldValue))
		}
	}
	return nil
}

// publishDeliveries writes the pending records and the deadline
// schedules, waits until the broker has stored them, then publishes the
// deliveries (each carrying its schedule's sequence, which the receiving
// node claims) and waits for those too. It returns how many of the
// targets had been sent before (the same message ID sent again).
func (s *Sender) publishDeliveries(ctx context.Context, m *message.Message, targets []string, fresh bool) (int, error) {
	p := s.start(ctx, m, targets, fresh)
	p.confirm(ctx)
	p.publish(ctx)
	err := p.await(ctx)
	return p.nBefore, err
}

// publication is one message on its way to the broker, in steps (start,
// confirm, publish, await) so that a window of messages can take each
// step together. A step after an error does nothing.
//
// A fresh ID (steward chose it in this send) cannot have been used: its
// schedules are written together with its pending records. Any other ID
// may have been (an operator's, or one re-sent from the outbox): its
// schedules wait until the pending records said which deliveries are new.
type publication struct {
	s         *Sender
	m         *message.Message
	targets   []string
	fresh     bool
	ttl       time.Duration
	writes    []*status.Write
	schedules []jetstream.PubAckFuture
	before    []bool // sent before and gone further: nothing to send
	nBefore   int
	futures   []jetstream.PubAckFuture
	err       error
	// span and publishes trace the publication (nil: tracing off).
	span      trace.Span
	publishes []trace.Span
}

// start checks the size and writes the pending records (and a fresh ID's
// schedules). The pending record exists before the message, so the
// receiving node and the deadline judge always find it; the schedule
// exists before the message, so the node can claim it.
func (s *Sender) start(ctx context.Context, m *message.Message, targets []string, fresh bool) *publication {
	p := &publication{s: s, m: m, targets: targets, fresh: fresh}
	traceID := ""
	if s.o.Tracing.On() {
		var tctx context.Context
		tctx, p.span = s.o.Tracing.Start(ctx, telemetry.SpanSend, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(telemetry.AttrMsgID.String(m.ID), telemetry.AttrMethod.String(m.Method),
				telemetry.AttrFrom.String(m.FromNode), telemetry.AttrNodes.StringSlice(targets)))
		traceID = telemetry.TraceID(tctx)
	}
	if p.err = s.checkSize(m, targets); p.err != nil {
		return p
	}
	now := s.Now(ctx)
	statusTTL := m.StatusTTL(now)
	p.ttl = m.StorageTTL(now)
	p.writes = make([]*status.Write, len(targets))
	for i, node := range targets {
		rec := &status.Record{
			ID: m.ID, Node: node, FromNode: m.FromNode, Method: m.Method, Status: status.Pending,
			SentAt: m.SentAt, Deadline: m.Deadline, UpdatedAt: m.SentAt, TraceID: traceID,
		}
		p.writes[i] = s.o.Status.CreateAsync(ctx, rec, statusTTL)
	}
	p.schedules = make([]jetstream.PubAckFuture, len(targets))
	p.before = make([]bool, len(targets))
	if fresh {
		for i := range targets {
			if p.err = p.schedule(ctx, i); p.err != nil {
				return p
			}
		}
	}
	return p
}

func (p *publication) schedule(ctx context.Context, i int) error {
	f, err := deadline.Schedule(ctx, p.s.o.JS, message.DeliveryID(p.m.ID, p.targets[i]), p.m.Deadline, p.s.o.CentralNode, p.ttl)
	p.schedules[i] = f
	return err
}

// confirm waits for the pending records, and schedules the deliveries of
// an ID that may have been used that turn out to be new.
func (p *publication) confirm(ctx context.Context) {
	if p == nil || p.err != nil {
		return
	}
	var errs []error
	for i, node := range p.targets {
		err := p.writes[i].Wait(ctx)
		if errors.Is(err, status.ErrExists) && !p.fresh {
			p.before[i], err = p.s.sentBefore(ctx, p.m, node)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if p.err = errors.Join(errs...); p.err != nil || p.fresh {
		return
	}
	for i := range p.targets {
		if p.before[i] {
			continue
		}
		if p.err = p.schedule(ctx, i); p.err != nil {
			return
		}
	}
}

// publish waits for each schedule and publishes its delivery.
func (p *publication) publish(ctx context.Context) {
	if p == nil || p.err != nil {
		return
	}
	m := p.m
	for i, node := range p.targets {
		if p.before[i] {
			p.nBefore++
			continue
		}
		var seq uint64
		select {
		case ack := <-p.schedules[i].Ok():
			seq = ack.Sequence
		case err := <-p.schedules[i].Err():
			p.err = fmt.Errorf("schedule the delivery deadline: %w", err)
			return
		case <-ctx.Done():
			p.err = fmt.Errorf("schedule the delivery deadline: %w", ctx.Err())
			return
		}
		d := m.Clone()
		d.ToNode, d.ToNodes, d.DeadlineSeq = node, nil, seq
		if err := p.s.o.Signer.Sign(d); err != nil {
			p.err = err
			return
		}
		data, err := json.Marshal(d)
		if err != nil {
			p.err = fmt.Errorf("encode message: %w", err)
			return
		}
		msg := nats.NewMsg(stream.MessageSubject(node))
		msg.Data = data
		if p.span != nil {
			p.tracePublish(ctx, node, msg.Header)
		}
		f, err := stream.PublishAsync(ctx, p.s.o.JS, msg, jetstream.WithMsgID(p.s.o.Signer.MsgID(message.DeliveryID(m.ID, node))), jetstream.WithMsgTTL(p.ttl))
		if err != nil {
			p.err = err
			return
		}
		p.futures = append(p.futures, f)
	}
}

// await waits until the broker stored every delivery, and returns the
// publication's error.
func (p *publication) await(ctx context.Context) error {
	err := p.err
	if err == nil {
		err = stream.Await(ctx, p.futures...)
	}
	if p.span != nil {
		for _, span := range p.publishes {
			telemetry.End(span, err)
		}
		telemetry.End(p.span, err)
	}
	return err
}

// tracePublish starts the span of the delivery to node, a child of the
// message's, and puts its context in the delivery's headers h.
func (p *publication) tracePublish(ctx context.Context, node string, h nats.Header) {
	ctx, span := p.s.o.Tracing.Start(trace.ContextWithSpan(ctx, p.span), telemetry.SpanPublish,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(telemetry.AttrNode.String(node), telemetry.AttrMsgID.String(p.m.ID), telemetry.AttrMethod.String(p.m.Method)))
	p.publishes = append(p.publishes, span)
	p.s.o.Tracing.Inject(ctx, h)
}

// checkSize encodes every delivery of m: a message too large for one node
// is too large for all, and nothing is published half-way.
func (s *Sender) checkSize(m *message.Message, targets []string) error {
	for _, node := range targets {
		d := m.Clone()
		d.ToNode, d.ToNodes, d.DeadlineSeq = node, nil, math.MaxUint64
		if s.o.Signer != nil { // room for a signature
			d.Signer, d.Signature = strings.Repeat("U", 56), make([]byte, 64)
		}
		data, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		if int64(len(data)) > s.o.MaxPayload-headerRoom {
			return fmt.Errorf("the message is %d bytes encoded, more than the broker's limit of %d: %w",
				len(data), s.o.MaxPayload-headerRoom, message.ErrTooLarge)
		}
	}
	return nil
}

// sentBefore handles a pending record that already exists: the same
// message ID was sent before (a client that sends again with its own ID,
// or a send re-driven from the outbox). If that delivery is still pending
// it is sent again (the broker and the node deduplicate it); if it went
// further, nothing is sent (true). An ID that another message uses is an
// error.
func (s *Sender) sentBefore(ctx context.Context, m *message.Message, node string) (bool, error) {
	rec, _, err := s.o.Status.Get(ctx, message.DeliveryID(m.ID, node))
	if err != nil {
		return false, err
	}
	if rec.FromNode != m.FromNode || rec.Method != m.Method {
		return false, aboutField("id", fmt.Errorf("id %s is already used by another message (%s from %s): %w", m.ID, rec.Method, rec.FromNode, ErrDuplicateID))
	}
	return rec.Status != status.Pending, nil
}

// ErrDuplicateID: an operator's message ID is taken by another message.
var ErrDuplicateID = errors.New("message id in use")

// PublishPrepared publishes a message steward built itself (a reply or an
// event) as delivery deliveryID, with the given storage TTL.
func PublishPrepared(ctx context.Context, js jetstream.JetStream, m *message.Message, deliveryID string, ttl time.Duration) (jetstream.PubAckFuture, error) {
	return PublishPreparedWith(ctx, js, m, deliveryID, ttl, nil)
}

// PublishPreparedWith is PublishPrepared with the headers in h as well
// (a trace context, see package telemetry).
func PublishPreparedWith(ctx context.Context, js jetstream.JetStream, m *message.Message, deliveryID string, ttl time.Duration, h nats.Header) (jetstream.PubAckFuture, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	msg := nats.NewMsg(stream.MessageSubject(m.ToNode))
	msg.Data = data
	for k, v := range h {
		msg.Header[k] = v
	}
	return stream.PublishAsync(ctx, js, msg, jetstream.WithMsgID(deliveryID), jetstream.WithMsgTTL(ttl.Round(time.Second)))
}
