package node_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// BenchmarkDispatch is one node taking pings from its queue and finishing
// them: decode, checks, claim, ledger, method, reply, terminal status,
// ack, audit. The pings are sent as steward sends (pending record,
// deadline schedule, message), 64 at a time; the replies go to a node
// that is not running.
func BenchmarkDispatch(b *testing.B) {
	srv := natstest.Start(b)
	nc, js := natstest.Connect(b, srv)
	ctx := natstest.Context(b, 10*time.Minute)
	assets, err := stream.Apply(ctx, js, stream.DefaultLayout(), nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(b, srv, "ship1")
	var done atomic.Int64
	runCtx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- node.Run(runCtx, cfg, node.Options{Ready: ready, OnDone: func(node.Done) { done.Add(1) }})
	}()
	b.Cleanup(func() {
		cancel()
		<-errc
	})
	select {
	case <-ready:
	case err := <-errc:
		b.Fatal(err)
	case <-time.After(time.Minute):
		b.Fatal("the node was not ready within a minute")
	}
	s := sender.New(sender.Options{
		JS: js, Status: status.NewStore(js, assets.Status), Methods: methods.Default(),
		Node: "sink", CentralNode: "central", MaxPayload: nc.MaxPayload(),
	})
	retries := 3
	var n, sent atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := &message.Message{ID: "bench" + strconv.FormatInt(n.Add(1), 10), ToNode: "ship1", Method: "REQPing",
				ACKTimeout: 30, Retries: &retries, MethodTimeout: 10, ReplyMethod: "REQPong"}
			if r := s.Send(ctx, m); !r.OK() {
				b.Error(r.Error)
				return
			}
			sent.Add(1)
		}
	})
	natstest.Eventually(b, time.Minute, "every ping done", func() bool { return done.Load() >= sent.Load() })
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
