package sender_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/stream"
)

// BenchmarkReplyPublish is a node sending a reply: encode, publish with
// its deduplication ID and TTL, 64 in flight.
func BenchmarkReplyPublish(b *testing.B) {
	srv := natstest.Start(b)
	_, js := natstest.Connect(b, srv)
	ctx := natstest.Context(b, time.Minute)
	if _, err := stream.Apply(ctx, js, stream.DefaultLayout(), nil); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	r := &message.Message{ToNode: "central", Method: "REQToFileAppend", FromNode: "ship1", ID: "X",
		Data: message.Data("pong from ship1"), SentAt: now, Deadline: now.Add(time.Hour),
		Reply: &message.ReplyInfo{DeliveryID: "X.ship1", Method: "REQPing", Status: "succeeded", Chunks: 1}}
	b.ReportAllocs()
	var inflight []jetstream.PubAckFuture
	i := 0
	for b.Loop() {
		i++
		f, err := sender.PublishPrepared(ctx, js, r, "X.ship1.reply."+string(rune('a'+i%26))+time.Now().String(), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if inflight = append(inflight, f); len(inflight) == 64 {
			if err := stream.Await(ctx, inflight...); err != nil {
				b.Fatal(err)
			}
			inflight = inflight[:0]
		}
	}
	if err := stream.Await(ctx, inflight...); err != nil {
		b.Fatal(err)
	}
}
