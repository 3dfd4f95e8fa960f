package consumer_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/stream"
)

// ackWait is the AckWait of the test consumers: short, so that a lease
// that is not kept alive runs out within the test.
const ackWait = time.Second

// queue is a node's durable consumer on a fresh broker.
type queue struct {
	js jetstream.JetStream
	s  jetstream.Stream
	c  jetstream.Consumer
}

func newQueue(t testing.TB, node string, maxAckPending int) *queue {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := natstest.Context(t, 20*time.Second)
	a, err := stream.Ensure(ctx, js, stream.Layout{})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	c, err := stream.EnsureConsumer(ctx, a.Messages, stream.ConsumerConfig(node, ackWait, maxAckPending))
	if err != nil {
		t.Fatalf("EnsureConsumer: %v", err)
	}
	return &queue{js: js, s: a.Messages, c: c}
}

func (q *queue) publish(t testing.TB, subj string, n int) {
	t.Helper()
	for range n {
		if _, err := q.js.Publish(t.Context(), subj, []byte("work")); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

func (q *queue) info(t testing.TB) *jetstream.ConsumerInfo {
	t.Helper()
	info, err := q.c.Info(t.Context())
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info
}

// running is a consumer's Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's error, set before done is closed
}

// run starts a consumer with h; it is stopped at cleanup.
func (q *queue) run(t testing.TB, h consumer.Handler) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	c := consumer.New(q.c, h, consumer.Options{AckWait: ackWait})
	go func() {
		r.err = c.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run's context and returns Run's error once it returned.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return after its context was cancelled")
		return nil
	}
}

// delivery is what a handler saw.
type delivery struct {
	numDelivered uint64
	seq          uint64
}

// recorder records every call of a handler.
type recorder struct {
	mu    sync.Mutex
	calls []delivery
}

func (r *recorder) add(meta *jetstream.MsgMetadata) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, delivery{meta.NumDelivered, meta.Sequence.Stream})
}

func (r *recorder) get() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.calls...)
}

// TestLongHandlerKeepsItsLease: a handler that runs three times AckWait is
// called once; in-progress acks keep the message from being redelivered.
func TestLongHandlerKeepsItsLease(t *testing.T) {
	t.Parallel()
	q := newQueue(t, "ship1", 10)
	var rec recorder
	var finished atomic.Bool
	q.run(t, func(ctx context.Context, _ jetstream.Msg, meta *jetstream.MsgMetadata) consumer.Disposition {
		rec.add(meta)
		select { // the handled work
		case <-time.After(3 * ackWait):
		case <-ctx.Done():
		}
		finished.Store(true)
		return consumer.Ack()
	})
	q.publish(t, stream.MessageSubject("ship1"), 1)

	natstest.Eventually(t, 30*time.Second, "the handler to finish", finished.Load)
	natstest.Eventually(t, 10*time.Second, "the ack", func() bool { return q.info(t).NumAckPending == 0 })
	calls := rec.get()
	if len(calls) != 1 {
		t.Fatalf("handler called %d times (%+v), want once", len(calls), calls)
	}
	if calls[0].numDelivered != 1 {
		t.Errorf("NumDelivered %d, want 1", calls[0].numDelivered)
	}
	info := q.info(t)
	if info.NumRedelivered != 0 || info.NumPending != 0 || info.AckFloor.Stream != 1 {
		t.Errorf("consumer after the ack: redelivered %d, pending %d, ack floor %d",
			info.NumRedelivered, info.NumPending, info.AckFloor.Stream)
	}
}

// TestDispositions runs one message per disposition through one consumer:
// the first delivery of each gets the case's disposition, any later one is
// acked.
func TestDispositions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		method string
		first  consumer.Disposition
		// calls is how many times the handler runs for the message.
		calls int
		// lastNumDelivered is NumDelivered of the last call.
		lastNumDelivered uint64
	}{
		{"REQAck", consumer.Ack(), 1, 1},
		{"REQTerm", consumer.Term("refused by the test"), 1, 1},
		{"REQNak", consumer.Nak(200 * time.Millisecond), 2, 2},
	}
	q := newQueue(t, "ship1", 10)
	var mu sync.Mutex
	calls := map[string][]delivery{}
	first := map[string]consumer.Disposition{}
	for _, tc := range cases {
		first[tc.method] = tc.first
	}
	q.run(t, func(_ context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) consumer.Disposition {
		mu.Lock()
		defer mu.Unlock()
		key := string(msg.Data())
		calls[key] = append(calls[key], delivery{meta.NumDelivered, meta.Sequence.Stream})
		if len(calls[key]) == 1 {
			return first[key]
		}
		return consumer.Ack()
	})
	for _, tc := range cases {
		if _, err := q.js.Publish(t.Context(), stream.MessageSubject("ship1"), []byte(tc.method)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 10*time.Second, "all messages settled", func() bool {
		info := q.info(t)
		return info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == uint64(len(cases))
	})
	// A message that was not settled comes back after AckWait: give it
	// twice that.
	select {
	case <-time.After(2 * ackWait):
	case <-t.Context().Done():
	}
	mu.Lock()
	defer mu.Unlock()
	for i, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			got := calls[tc.method]
			if len(got) != tc.calls {
				t.Fatalf("handler called %d times (%+v), want %d", len(got), got, tc.calls)
			}
			if last := got[len(got)-1]; last.numDelivered != tc.lastNumDelivered || last.seq != uint64(i+1) {
				t.Errorf("last call saw NumDelivered %d, seq %d; want %d, %d", last.numDelivered, last.seq, tc.lastNumDelivered, i+1)
			}
		})
	}
}

// TestRunStopsAndWaitsForHandlers: Run returns after its context ends,
// only once the running handlers returned, and they see their context
// cancelled.
func TestRunStopsAndWaitsForHandlers(t *testing.T) {
	t.Parallel()
	q := newQueue(t, "ship1", 10)
	const n = 3
	var started, cancelled, returned atomic.Int32
	r := q.run(t, func(ctx context.Context, _ jetstream.Msg, _ *jetstream.MsgMetadata) consumer.Disposition {
		started.Add(1)
		<-ctx.Done()
		cancelled.Add(1)
		// Some clean-up work after the cancel, which Run must wait for.
		time.Sleep(200 * time.Millisecond)
		returned.Add(1)
		return consumer.Nak(0)
	})
	q.publish(t, stream.MessageSubject("ship1"), n)
	natstest.Eventually(t, 10*time.Second, "all handlers to start", func() bool { return started.Load() == n })

	if err := r.stop(t); err != nil {
		t.Errorf("Run after a clean stop: %v", err)
	}
	if c, r := cancelled.Load(), returned.Load(); c != n || r != n {
		t.Errorf("when Run returned: %d handlers saw the cancel and %d had returned, want %d", c, r, n)
	}
}

// TestMaxAckPendingBoundsMessagesInHand: the consumer holds no more
// messages than the consumer's MaxAckPending.
func TestMaxAckPendingBoundsMessagesInHand(t *testing.T) {
	t.Parallel()
	q := newQueue(t, "ship1", 2)
	release := make(chan struct{})
	var running, maxRunning, handled atomic.Int32
	q.run(t, func(ctx context.Context, _ jetstream.Msg, _ *jetstream.MsgMetadata) consumer.Disposition {
		now := running.Add(1)
		for {
			m := maxRunning.Load()
			if now <= m || maxRunning.CompareAndSwap(m, now) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		running.Add(-1)
		handled.Add(1)
		return consumer.Ack()
	})
	q.publish(t, stream.MessageSubject("ship1"), 5)
	natstest.Eventually(t, 10*time.Second, "two handlers running", func() bool { return running.Load() == 2 })
	info := q.info(t)
	if info.NumAckPending != 2 || info.NumPending != 3 {
		t.Errorf("with two in hand: ack pending %d, pending %d; want 2 and 3", info.NumAckPending, info.NumPending)
	}
	close(release)
	natstest.Eventually(t, 10*time.Second, "all five handled", func() bool { return handled.Load() == 5 })
	if m := maxRunning.Load(); m > 2 {
		t.Errorf("%d handlers ran at once with MaxAckPending 2", m)
	}
}

// TestRunReportsALostConsumer: when the broker loses the consumer (an
// operator deleted it), Run returns an error wrapping ErrLost, so the node
// can create it again.
func TestRunReportsALostConsumer(t *testing.T) {
	t.Parallel()
	q := newQueue(t, "ship1", 10)
	var handled atomic.Int32
	r := q.run(t, func(context.Context, jetstream.Msg, *jetstream.MsgMetadata) consumer.Disposition {
		handled.Add(1)
		return consumer.Ack()
	})
	q.publish(t, stream.MessageSubject("ship1"), 1)
	natstest.Eventually(t, 10*time.Second, "the first message handled", func() bool { return handled.Load() == 1 })

	if err := q.s.DeleteConsumer(t.Context(), "ship1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run kept running on a deleted consumer")
	}
	if !errors.Is(r.err, consumer.ErrLost) {
		t.Errorf("Run on a deleted consumer: want ErrLost, got %v", r.err)
	}
}
