package sender_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
)

// BenchmarkSend is the send path of one message to one node: validate,
// prepare, pending record, deadline schedule, publish, wait for the
// broker. With tracing off (the default) it must cost what it cost before
// tracing existed (docs/performance.md, "Tracing").
func BenchmarkSend(b *testing.B) {
	benchSend(b, newEnv(b, nil))
}

func benchSend(b *testing.B, e *env) {
	ctx := natstest.Context(b, 10*time.Minute)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		m := &message.Message{ToNode: "ship1", Method: "REQPing", ID: "bench" + strconv.Itoa(i)}
		if r := e.sender.Send(ctx, m); !r.OK() {
			b.Fatal(r.Error)
		}
	}
}
