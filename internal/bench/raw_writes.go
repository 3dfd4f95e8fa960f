package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/deadline"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// rawWrites is the raw baseline with steward's broker work: the seven
// messages a steward round trip stores, on steward's own streams and
// bucket, each with the headers steward gives it, in the same order and
// with the same waits, and nothing else (no ledger, audit, method, status
// logic or message decoding). Per round trip:
//
//   - the sender creates the pending record and publishes the deadline
//     schedule, waits for both, then publishes the request carrying the
//     schedule's sequence;
//   - the responder (a durable consumer like a node's, each message on a
//     goroutine of its own) claims the delivery, then publishes the reply
//     and the terminal record together, waits for both and acks;
//   - the requester (another such consumer) writes the reply record,
//     waits, acks, and the round trip is done.
//
// With one responder, what it reaches is the most a message path with
// steward's guarantees can reach on this broker. With as many responders
// as the fleet has nodes (round trips taken in turn), it is that most with
// one queue per node, as steward's fleet has it; steward's own code is the
// rest of the gap.
type rawWrites struct {
	js         jetstream.JetStream
	deadlines  jetstream.Stream
	responders []string
	kvPrefix   string
	reqBody    []byte
	repBody    []byte
	record     []byte // a status record as stored
	stops      []func()
	cleanup    func()
	t          atomic.Pointer[tracker]
}

// Names no node of the bench uses; responders are numbered after the
// first when there are more.
const (
	rawWritesResponder = "bench-writes-node"
	rawWritesRequester = "bench-writes-central"
)

func newRawWrites(ctx context.Context, js jetstream.JetStream, layout stream.Layout, responders int, reqBody, repBody []byte) (*rawWrites, error) {
	a, err := stream.Apply(ctx, js, layout, nil)
	if err != nil {
		return nil, fmt.Errorf("steward's streams: %w", err)
	}
	now := time.Now().UTC()
	rec, _ := json.Marshal(&status.Record{ID: "ABCDEFGHIJKLMNOPQRSTUV", Node: "n00001", FromNode: "central",
		Method: "REQPing", Status: status.Succeeded, Attempt: 1, SentAt: now, Deadline: now.Add(time.Hour),
		StartedAt: now, FinishedAt: now, UpdatedAt: now, Output: "pong"})
	r := &rawWrites{js: js, deadlines: a.Deadlines, kvPrefix: "$KV." + a.Status.Bucket() + ".",
		reqBody: reqBody, repBody: repBody, record: rec}
	r.responders = []string{rawWritesResponder}
	for i := 2; i <= responders; i++ {
		r.responders = append(r.responders, fmt.Sprintf("%s-%d", rawWritesResponder, i))
	}
	var consumers []string
	open := func(name string, h func(jetstream.Msg)) error {
		cfg := stream.ConsumerConfig(name, 30*time.Second, 10_000, 0)
		cfg.MemoryStorage = a.QueuesInMemory()
		c, _, err := stream.OpenConsumer(ctx, a.Messages, cfg)
		if err != nil {
			return err
		}
		consumers = append(consumers, name)
		cc, err := c.Consume(func(m jetstream.Msg) { go h(m) },
			jetstream.PullMaxMessages(consumer.DefaultPullBatch),
			jetstream.PullExpiry(consumer.DefaultPullExpiry), jetstream.PullHeartbeat(consumer.DefaultHeartbeat))
		if err != nil {
			return err
		}
		r.stops = append(r.stops, cc.Stop)
		return nil
	}
	// What the run stored goes with it, so that the fleet measured next
	// finds the streams as a fresh broker has them.
	r.cleanup = func() {
		ctx := context.Background()
		for _, stop := range r.stops {
			stop()
		}
		for _, name := range consumers {
			_ = a.Messages.DeleteConsumer(ctx, name)
		}
		_ = a.Messages.Purge(ctx, jetstream.WithPurgeSubject(stream.MessageSubject(rawWritesRequester)))
		kv, kvErr := js.Stream(ctx, "KV_"+a.Status.Bucket())
		for _, name := range r.responders {
			_ = a.Messages.Purge(ctx, jetstream.WithPurgeSubject(stream.MessageSubject(name)))
			_ = a.Deadlines.Purge(ctx, jetstream.WithPurgeSubject(stream.ClaimSubject("*."+name)))
			if kvErr == nil {
				for _, suffix := range []string{"", ".reply"} {
					_ = kv.Purge(ctx, jetstream.WithPurgeSubject(r.kvPrefix+"*."+name+suffix))
				}
			}
		}
	}
	for _, name := range r.responders {
		if err := open(name, r.respond); err != nil {
			r.cleanup()
			return nil, fmt.Errorf("responder %s: %w", name, err)
		}
	}
	if err := open(rawWritesRequester, r.answered); err != nil {
		r.cleanup()
		return nil, fmt.Errorf("requester: %w", err)
	}
	return r, nil
}

func (r *rawWrites) close() { r.cleanup() }

// putRecord starts writing the status record key (create: only if there is
// none), as status.Store does.
func (r *rawWrites) putRecord(ctx context.Context, key string, create bool) (jetstream.PubAckFuture, error) {
	msg := nats.NewMsg(r.kvPrefix + key)
	msg.Data = r.record
	if create {
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	return stream.PublishAsync(ctx, r.js, msg, jetstream.WithMsgTTL(2*time.Hour))
}

// respond is the node's part: claim, then reply and terminal record.
func (r *rawWrites) respond(m jetstream.Msg) {
	ctx := context.Background()
	id, delivery := m.Headers().Get("Bench-Id"), m.Headers().Get("Bench-Delivery")
	seq, _ := strconv.ParseUint(m.Headers().Get("Bench-Schedule"), 10, 64)
	won, err := deadline.Claim(ctx, r.js, r.deadlines, delivery, "claim."+delivery, seq, 2*time.Hour)
	if err != nil || !won {
		_ = m.Nak()
		return
	}
	out := nats.NewMsg(stream.MessageSubject(rawWritesRequester))
	out.Data = r.repBody
	out.Header.Set("Bench-Id", id)
	out.Header.Set("Bench-Delivery", delivery)
	reply, err := stream.PublishAsync(ctx, r.js, out, jetstream.WithMsgID(delivery+".reply"), jetstream.WithMsgTTL(2*time.Hour))
	if err != nil {
		_ = m.Nak()
		return
	}
	terminal, err := r.putRecord(ctx, delivery, false)
	if err != nil || stream.Await(ctx, reply, terminal) != nil {
		_ = m.Nak()
		return
	}
	_ = m.Ack()
}

// answered is the sender's node taking the reply: the reply record.
func (r *rawWrites) answered(m jetstream.Msg) {
	ctx := context.Background()
	f, err := r.putRecord(ctx, status.ReplyKey(m.Headers().Get("Bench-Delivery")), false)
	if err != nil || stream.Await(ctx, f) != nil {
		_ = m.Nak()
		return
	}
	_ = m.Ack()
	if t := r.t.Load(); t != nil {
		t.complete(m.Headers().Get("Bench-Id"))
	}
}

// run does total round trips with window in flight.
func (r *rawWrites) run(ctx context.Context, round string, total, window int, progress func(int)) (loadResult, error) {
	t := newTracker()
	r.t.Store(t)
	defer r.t.Store(nil)
	return drive(ctx, total, window, t, func(ctx context.Context, i int) (string, error) {
		key := "writes-" + round + "-" + strconv.Itoa(i)
		responder := r.responders[i%len(r.responders)]
		delivery := key + "." + responder
		pending, err := r.putRecord(ctx, delivery, true)
		if err != nil {
			return "", err
		}
		schedule, err := deadline.Schedule(ctx, r.js, delivery, time.Now().Add(time.Hour), rawWritesRequester, 2*time.Hour)
		if err != nil {
			return "", err
		}
		if err := stream.Await(ctx, pending); err != nil {
			return "", fmt.Errorf("pending record: %w", err)
		}
		var seq uint64
		select {
		case ack := <-schedule.Ok():
			seq = ack.Sequence
		case err := <-schedule.Err():
			return "", fmt.Errorf("schedule: %w", err)
		case <-ctx.Done():
			return "", ctx.Err()
		}
		msg := nats.NewMsg(stream.MessageSubject(responder))
		msg.Data = r.reqBody
		msg.Header.Set("Bench-Id", key)
		msg.Header.Set("Bench-Delivery", delivery)
		msg.Header.Set("Bench-Schedule", strconv.FormatUint(seq, 10))
		f, err := stream.PublishAsync(ctx, r.js, msg, jetstream.WithMsgID(delivery), jetstream.WithMsgTTL(2*time.Hour))
		if err != nil {
			return "", err
		}
		if err := stream.Await(ctx, f); err != nil {
			return "", err
		}
		return key, nil
	}, progress)
}
