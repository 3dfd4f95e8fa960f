package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// chunkSize is the most output one reply message carries. JSON may grow
// text up to six times (control characters become \u00XX), so a chunk
// always fits the broker's 1 MiB default limit.
const chunkSize = 128 << 10

// publishReply sends the outcome of a request back to its fromNode as one
// or more reply messages (output larger than chunkSize is split, never
// truncated). Each chunk's Nats-Msg-Id is fixed by the delivery, so a
// re-sent reply is dropped by the broker's deduplication, and by the
// sender's ledger after the deduplication window.
func (n *Node) publishReply(ctx context.Context, d *delivery, o *ledger.Outcome) ([]jetstream.PubAckFuture, error) {
	if !ran(o) {
		return nil, nil
	}
	chunks := splitChunks(o.Output)
	if d.streamed > 0 {
		// The output went as parts while the method ran: the final reply
		// says how many lines there were, and carries its status.
		chunks = [][]byte{nil}
	}
	var futures []jetstream.PubAckFuture
	for i, data := range chunks {
		r := n.replyMessage(ctx, d, o.Status, data)
		r.Reply.ExitCode, r.Reply.Error = o.ExitCode, o.Error
		r.Reply.Chunk, r.Reply.Chunks = i, len(chunks)
		if d.streamed > 0 {
			r.Reply.Streamed, r.Reply.Seq = true, d.streamed
		}
		f, err := n.publishAnswer(ctx, d, r, deliveryKey(r, d.msg.FromNode), r.StorageTTL(r.SentAt))
		if err != nil {
			return nil, err
		}
		futures = append(futures, f)
	}
	return futures, nil
}

// ran reports whether the method ran, so there is output to return: a
// method stopped while it ran is cancelled with its output so far; one
// cancelled before it ran never started.
func ran(o *ledger.Outcome) bool {
	switch status.Status(o.Status) {
	case status.Succeeded, status.Failed, status.ExecutionTimedOut:
		return true
	case status.Cancelled:
		return !o.StartedAt.IsZero()
	}
	return false
}

func splitChunks(out []byte) [][]byte {
	if len(out) <= chunkSize {
		return [][]byte{out}
	}
	var chunks [][]byte
	for len(out) > 0 {
		k := min(chunkSize, len(out))
		chunks = append(chunks, out[:k])
		out = out[k:]
	}
	return chunks
}

// reportError sends an error report to the central node's error log. The
// report for one delivery has a fixed Nats-Msg-Id, so a redelivered
// failure is not reported twice within the deduplication window. A failure
// of the error log itself is only logged, never reported (no loops).
func (n *Node) reportError(ctx context.Context, key, text string) jetstream.PubAckFuture {
	now := n.now().UTC()
	ev := &message.Message{
		ToNode: n.cfg.CentralNodeName, Method: "REQErrorLog", Data: message.Data(text),
		ID: nuid.Next(), FromNode: n.cfg.NodeName, SentAt: now, Deadline: now.Add(n.cfg.DefaultDeliveryDeadline), Event: true,
	}
	f, err := n.publish(ctx, ev, "error."+n.cfg.NodeName+"."+key, ev.StorageTTL(now))
	if err != nil {
		n.log.Error("cannot report error to central", "error", err, "report", text)
		return nil
	}
	return f
}

// helloLoop says hello to the central node at start and every interval.
// While the link is down no hellos pile up (a hello is a fact about now):
// the node says hello again as soon as it reconnects.
func (n *Node) helloLoop(ctx context.Context) error {
	if n.cfg.HelloInterval <= 0 {
		return nil
	}
	t := time.NewTicker(n.cfg.HelloInterval)
	defer t.Stop()
	for {
		n.sayHello(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.helloNow:
		}
	}
}

// helloSoon asks helloLoop for a hello now (it does not wait for it): the
// node's queue became healthy, which the registry should know before the
// next interval. Hellos stay in helloLoop, so none follows the goodbye.
func (n *Node) helloSoon() {
	select {
	case n.helloNow <- struct{}{}:
	default: // one is asked for already
	}
}

func (n *Node) sayHello(ctx context.Context) {
	if _, err := n.hello(ctx, false); err != nil && ctx.Err() == nil {
		n.log.Debug("hello not sent", "error", err)
	}
}

// sayGoodbye tells central the node stops, so it shows offline at once.
func (n *Node) sayGoodbye() {
	if n.cfg.HelloInterval <= 0 || n.js == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	f, err := n.hello(ctx, true)
	if err == nil {
		err = stream.Await(ctx, f)
	}
	if err != nil {
		n.log.Debug("goodbye not sent", "error", err)
	}
}

func (n *Node) hello(ctx context.Context, goodbye bool) (jetstream.PubAckFuture, error) {
	info := methods.HelloInfo{Version: n.version, Methods: n.methods.Names(), StartedAt: n.started,
		HelloInterval: n.cfg.HelloInterval, Instance: n.instance, Goodbye: goodbye, Labels: n.cfg.Labels}
	if q := n.queue.Load(); q != nil {
		info.QueueOK, info.QueueRecreatedAt, info.QueueRecreations = q.state()
	}
	data, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	now := n.now().UTC()
	// A hello is only worth its interval: it expires from the stream after
	// three intervals if central is not there to take it.
	ttl := max(3*n.cfg.HelloInterval, time.Minute)
	ev := &message.Message{
		ToNode: n.cfg.CentralNodeName, Method: "REQHello", Data: data,
		ID: nuid.Next(), FromNode: n.cfg.NodeName, SentAt: now, Deadline: now.Add(ttl), Event: true,
	}
	return n.publish(ctx, ev, "hello."+ev.ID, ttl)
}

// publish signs (if the node has a key) and publishes a message the node
// built itself: a reply, an error report, a hello. deliveryID is its
// deduplication key, tagged by the node's key (signature.Signer.MsgID).
func (n *Node) publish(ctx context.Context, m *message.Message, deliveryID string, ttl time.Duration) (jetstream.PubAckFuture, error) {
	return n.publishWith(ctx, m, deliveryID, ttl, nil)
}

// publishWith is publish with the headers in h as well (a trace context).
func (n *Node) publishWith(ctx context.Context, m *message.Message, deliveryID string, ttl time.Duration, h nats.Header) (jetstream.PubAckFuture, error) {
	if err := n.signer.Sign(m); err != nil {
		return nil, err
	}
	return sender.PublishPreparedWith(ctx, n.js, m, n.signer.MsgID(deliveryID), ttl, h)
}
