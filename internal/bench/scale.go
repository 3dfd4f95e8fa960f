package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/stewardfleet/steward/internal/stream"
)

// register creates durable consumers for nodes from..to-1, as those nodes
// would at their first start, with a few requests in flight.
func register(ctx context.Context, js jetstream.JetStream, from, to int, inMemory bool, progress func(int)) error {
	s, err := js.Stream(ctx, stream.MessagesStream)
	if err != nil {
		return err
	}
	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := from; i < to; i++ {
		g.Go(func() error {
			cfg := stream.ConsumerConfig(nodeName(i), 30*time.Second, 1000, 0)
			cfg.MemoryStorage = inMemory
			if _, _, err := stream.OpenConsumer(gctx, s, cfg); err != nil {
				return err
			}
			if n := done.Add(1); n%100 == 0 {
				progress(from + int(n))
			}
			return nil
		})
	}
	return g.Wait()
}

// registerAgain creates the queues of nodes 0..n-1 in memory once more,
// on a new connection to url: what the nodes do after a broker restart
// when their queues are kept in the broker's memory.
func registerAgain(ctx context.Context, url string, n int) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return register(ctx, js, 0, n, true, func(int) {})
}

// heapInUse is the Go heap in use after a collection: the embedded broker
// lives in this process, so its growth is the broker's.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// waitStreamReady waits until the message stream is served with at least
// consumers consumers, after a broker restart.
func waitStreamReady(ctx context.Context, url string, consumers int) error {
	var once sync.Once
	var nc *nats.Conn
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	for {
		var err error
		once.Do(func() {
			nc, err = nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
		})
		if err != nil {
			return err
		}
		if nc.IsConnected() {
			js, _ := jetstream.New(nc)
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := js.Stream(rctx, stream.MessagesStream)
			if err == nil {
				var info *jetstream.StreamInfo
				if info, err = s.Info(rctx); err == nil && info.State.Consumers >= consumers {
					cancel()
					return nil
				}
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream not ready: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
