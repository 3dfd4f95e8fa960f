// Package consumer runs a node's durable JetStream pull consumer under a
// supervisor. It pulls the node's messages, hands each to a handler in its
// own goroutine (one that finished a message just before takes the next)
// under a Lease, keeps the lease alive with in-progress acks
// every AckWait/2 for as long as the handler runs, and settles the message
// the way the handler says: an ack, a term, a nak with a delay, or nothing
// when the handler gave the message to a lease that already holds it
// (Adopted).
//
// Guarantees:
//   - A redelivery of a message that is still being handled (a link cut
//     longer than AckWait loses the in-progress acks, and the broker sends
//     the message again) can be adopted by the running handler's lease:
//     from then on the lease renews and settles the newest delivery, and
//     no second handler runs (the node decides, see package node).
//   - A consumer the broker lost (deleted by an operator, a broker
//     restarted on an empty store) is noticed within seconds — when the
//     pull says so, after every reconnect (Check), when no responders
//     answer, and when heartbeats stop — and opened again through
//     Options.Open, which creates it. Handlers of messages taken before
//     keep running: a consumer that is recreated does not cancel them.
//   - Run blocks until its context ends, then stops pulling, cancels the
//     handlers' context and waits for them.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Disposition is what to do with a message once its handler returns.
type Disposition struct {
	kind   int
	delay  time.Duration
	reason string
}

const (
	kindAck = iota
	kindTerm
	kindNak
	kindAdopted
)

// Ack settles the message as done.
func Ack() Disposition { return Disposition{kind: kindAck} }

// Term settles the message as never to be delivered again.
func Term(reason string) Disposition { return Disposition{kind: kindTerm, reason: reason} }

// Nak asks for redelivery after delay.
func Nak(delay time.Duration) Disposition { return Disposition{kind: kindNak, delay: delay} }

// Adopted says another lease took the message over (Lease.Adopt): this
// one does nothing more with it.
func Adopted() Disposition { return Disposition{kind: kindAdopted} }

// Retry reports whether the message will be delivered again.
func (d Disposition) Retry() bool { return d.kind == kindNak }

// Handler handles one delivery. ctx ends when the consumer stops.
type Handler func(ctx context.Context, l *Lease) Disposition

// Options configure a Consumer.
type Options struct {
	// Open returns the durable consumer, creating it if the broker does
	// not have it; created says it had to. Run calls it at start and
	// whenever the consumer is lost, until it succeeds.
	Open func(ctx context.Context) (c jetstream.Consumer, created bool, err error)
	// OnRecreated, if set, is called when Open had to create the consumer
	// after Run had started (the broker lost it).
	OnRecreated func(c jetstream.Consumer)
	// OnHealthy, if set, is called each time the consumer becomes healthy
	// (Healthy turns true: at start, after a loss, after pulling anew). It
	// must not block.
	OnHealthy func()
	// AckWait is the consumer's AckWait; leases are renewed every AckWait/2.
	AckWait time.Duration
	// PullBatch is how many messages one pull asks for.
	PullBatch int
	// PullExpiry is how long one pull request waits on the server, and
	// Heartbeat how often the server says it is still there; both are
	// per-node background traffic, so they are as long as the server
	// allows: 10,000 idle nodes cost the broker about 370 messages a second
	// with the defaults (5 min, 30 s), against 1,000 with the client
	// library's (30 s, 15 s).
	PullExpiry time.Duration
	Heartbeat  time.Duration
	Logger     *slog.Logger
}

// Consumer is a supervised pull consumer.
type Consumer struct {
	handler Handler
	o       Options
	log     *slog.Logger
	check   chan struct{}
	refresh chan struct{}
	healthy atomic.Bool
}

// Pull settings for zero Options fields (see Options).
const (
	DefaultPullBatch  = 256
	DefaultPullExpiry = 5 * time.Minute
	DefaultHeartbeat  = 30 * time.Second
)

// New returns a consumer that hands its messages to h.
func New(h Handler, o Options) *Consumer {
	if o.PullBatch <= 0 {
		o.PullBatch = DefaultPullBatch
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.PullExpiry <= 0 {
		o.PullExpiry = DefaultPullExpiry
	}
	if o.Heartbeat <= 0 || o.Heartbeat > o.PullExpiry/2 {
		// The server takes idle heartbeats of 500 ms to 30 s.
		o.Heartbeat = max(500*time.Millisecond, min(DefaultHeartbeat, o.PullExpiry/2))
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{handler: h, o: o, log: log, check: make(chan struct{}, 1), refresh: make(chan struct{}, 1)}
}

// Refresh makes the consumer open itself again and pull anew, without
// waiting for missed heartbeats (call it when the broker restarted
// JetStream, which drops waiting pull requests). It does not block.
func (c *Consumer) Refresh() {
	select {
	case c.refresh <- struct{}{}:
	default:
	}
}

// errRefresh ends one consumption for Refresh.
var errRefresh = errors.New("refresh")

// Check asks the consumer to make sure the broker still has it (call it
// after a reconnect). It does not block.
func (c *Consumer) Check() {
	select {
	case c.check <- struct{}{}:
	default:
	}
}

// Healthy reports whether the consumer exists on the broker and is being
// pulled from, as far as the consumer knows.
func (c *Consumer) Healthy() bool { return c.healthy.Load() }

// setHealthy marks the consumer healthy and tells OnHealthy if it was not.
func (c *Consumer) setHealthy() {
	if !c.healthy.Swap(true) && c.o.OnHealthy != nil {
		c.o.OnHealthy()
	}
}

// ErrLost: the broker no longer has the consumer.
var ErrLost = errors.New("consumer lost")

// Run consumes until ctx ends, opening the consumer again whenever the
// broker loses it. It returns nil after a clean stop.
func (c *Consumer) Run(ctx context.Context) error {
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		cancelHandlers()
		wg.Wait()
	}()
	started := false
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		cons, created, err := c.o.Open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.log.Warn("cannot open the queue; trying again", "error", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		if created && started && c.o.OnRecreated != nil {
			c.o.OnRecreated(cons)
		}
		started = true
		err = c.consume(ctx, handlerCtx, cons, &wg)
		c.healthy.Store(false)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errRefresh):
			c.log.Debug("pulling anew")
			continue
		}
		c.log.Warn("the queue is gone from the broker; opening it again", "error", err)
	}
	return nil
}

// consume pulls from cons until ctx ends (nil) or the consumer is lost.
func (c *Consumer) consume(ctx, handlerCtx context.Context, cons jetstream.Consumer, wg *sync.WaitGroup) error {
	lost := make(chan error, 1)
	signal := func(err error) {
		select {
		case lost <- err:
		default:
		}
	}
	h := newHandlers(func(msg jetstream.Msg) { c.handle(handlerCtx, msg) }, wg)
	defer h.stop()
	cc, err := cons.Consume(h.dispatch,
		jetstream.PullMaxMessages(c.o.PullBatch),
		jetstream.PullExpiry(c.o.PullExpiry),
		jetstream.PullHeartbeat(c.o.Heartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
				signal(err)
			case errors.Is(err, jetstream.ErrNoHeartbeat), errors.Is(err, nats.ErrNoResponders):
				c.log.Debug("queue", "error", err)
				c.Check()
			case errors.Is(err, nats.ErrConnectionClosed):
				c.log.Debug("queue", "error", err)
			default:
				c.log.Warn("queue", "error", err)
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLost, err)
	}
	defer func() {
		cc.Stop()
		<-cc.Closed()
	}()
	c.setHealthy()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-lost:
			return fmt.Errorf("%w: %w", ErrLost, err)
		case <-cc.Closed():
			return fmt.Errorf("%w: consumption ended", ErrLost)
		case <-c.check:
			err := c.verify(ctx, cons)
			if err != nil && ctx.Err() == nil {
				return err
			}
		case <-c.refresh:
			return errRefresh
		}
	}
}

// verify asks the broker for the consumer. Only a definite "not found"
// (of the consumer or its stream) counts as lost; other errors (the broker
// is unreachable right now) are left to the next check.
func (c *Consumer) verify(ctx context.Context, cons jetstream.Consumer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := cons.Info(ctx)
	switch {
	case err == nil:
		c.setHealthy()
		return nil
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%w: %w", ErrLost, err)
	}
	c.log.Debug("queue check", "error", err)
	return nil
}

func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without metadata", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	l := newLease(msg, meta, c.o.AckWait, c.log)
	d := c.handler(ctx, l)
	l.settle(d)
}

// Lease is a message in the hands of a handler: it keeps the message's
// AckWait from running out while the handler works, and settles it when
// the handler is done.
type Lease struct {
	mu      sync.Mutex
	msg     jetstream.Msg
	meta    *jetstream.MsgMetadata
	ackWait time.Duration
	timer   *time.Timer
	settled bool
	log     *slog.Logger
}

func newLease(msg jetstream.Msg, meta *jetstream.MsgMetadata, ackWait time.Duration, log *slog.Logger) *Lease {
	l := &Lease{msg: msg, meta: meta, ackWait: ackWait, log: log}
	l.mu.Lock()
	l.timer = time.AfterFunc(ackWait/2, l.renew)
	l.mu.Unlock()
	return l
}

// Msg is the newest delivery of the message.
func (l *Lease) Msg() jetstream.Msg {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

// Meta is the metadata of the newest delivery.
func (l *Lease) Meta() *jetstream.MsgMetadata {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.meta
}

// Adopt takes over other, a newer delivery of the same message: l renews
// and settles it from now on, at once renewing its lease, and other
// settles nothing (its handler must return Adopted). It returns false,
// changing nothing, if l is already settled.
func (l *Lease) Adopt(other *Lease) bool {
	other.mu.Lock()
	msg, meta := other.msg, other.meta
	other.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.settled {
		return false
	}
	l.msg, l.meta = msg, meta
	if err := msg.InProgress(); err != nil {
		l.log.Debug("in-progress ack", "subject", msg.Subject(), "error", err)
	}
	return true
}

// renew sends an in-progress ack for the newest delivery (timer callback).
func (l *Lease) renew() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.settled {
		return
	}
	if err := l.msg.InProgress(); err != nil {
		l.log.Debug("in-progress ack", "subject", l.msg.Subject(), "error", err)
	}
	l.timer.Reset(l.ackWait / 2)
}

// settle stops the renewals and settles the newest delivery as d says.
// An ack is a plain ack, not a double ack: an ack lost on its way (a
// broker stop, a cut link) only means the message comes again, and the
// node's ledger knows it finished and acks it without running it.
func (l *Lease) settle(d Disposition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.settled {
		return
	}
	l.settled = true
	l.timer.Stop()
	msg := l.msg
	var err error
	switch d.kind {
	case kindAdopted:
		return
	case kindAck:
		err = msg.Ack()
	case kindTerm:
		err = msg.TermWithReason(d.reason)
	case kindNak:
		err = msg.NakWithDelay(d.delay)
	}
	if err != nil {
		l.log.Debug("settle", "subject", msg.Subject(), "seq", l.meta.Sequence.Stream, "error", err)
	}
}

// handlerIdle is how long a handler goroutine waits for the next message
// before it ends.
const handlerIdle = time.Second

// handlers runs each message on a goroutine of its own, reusing one that
// has just finished a message when there is one: a handler's stack grows
// to tens of KiB, and growing a new goroutine's stack again for every
// message cost a busy node several percent of its CPU.
type handlers struct {
	handle func(jetstream.Msg)
	wg     *sync.WaitGroup
	work   chan jetstream.Msg // unbuffered: taken only by a waiting goroutine
	quit   chan struct{}
}

func newHandlers(handle func(jetstream.Msg), wg *sync.WaitGroup) *handlers {
	return &handlers{handle: handle, wg: wg, work: make(chan jetstream.Msg), quit: make(chan struct{})}
}

// dispatch hands msg to a waiting goroutine, or starts one.
func (h *handlers) dispatch(msg jetstream.Msg) {
	select {
	case h.work <- msg:
		return
	default:
	}
	h.wg.Add(1)
	go h.run(msg)
}

func (h *handlers) run(msg jetstream.Msg) {
	defer h.wg.Done()
	h.handle(msg)
	idle := time.NewTimer(handlerIdle)
	defer idle.Stop()
	for {
		select {
		case msg := <-h.work:
			h.handle(msg)
			idle.Reset(handlerIdle)
		case <-idle.C:
			return
		case <-h.quit:
			return
		}
	}
}

// stop lets the waiting goroutines end; those handling a message end when
// it is handled. Call it once nothing dispatches any more.
func (h *handlers) stop() { close(h.quit) }
