package node_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/stream"
)

// BenchmarkDispatch is one node taking pings from its queue and finishing
// them: decode, checks, ledger, method, reply, terminal status, ack. The
// replies go to a node that is not running.
func BenchmarkDispatch(b *testing.B) {
	srv := natstest.Start(b)
	_, js := natstest.Connect(b, srv)
	cfg := benchConfig(b, srv, "ship1")
	var done atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- node.Run(ctx, cfg, node.Options{Ready: ready, OnDone: func(node.Done) { done.Add(1) }})
	}()
	select {
	case <-ready:
	case err := <-errc:
		b.Fatal(err)
	}
	now := time.Now().UTC()
	retries := 3
	base := message.Message{ToNode: "ship1", Method: "REQPing", FromNode: "sink", SentAt: now, Deadline: now.Add(time.Hour),
		ACKTimeout: 30, Retries: &retries, MethodTimeout: 10, ReplyMethod: "REQPong"}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m := base
		m.ID = "bench" + strconv.Itoa(n)
		n++
		data, _ := json.Marshal(&m)
		msg := nats.NewMsg(stream.MessageSubject("ship1"))
		msg.Data = data
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(m.ID+".ship1")); err != nil {
			b.Fatal(err)
		}
		for int64(n)-done.Load() > 64 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for done.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d done", done.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func benchConfig(b *testing.B, srv *natstest.Server, name string) config.Config {
	dir := b.TempDir()
	cfg := config.Default()
	cfg.NodeName = name
	cfg.BrokerAddress = srv.URL()
	cfg.DataFolder = dir + "/data"
	cfg.SocketFolder = dir + "/tmp"
	cfg.HelloInterval = 0
	return cfg
}
