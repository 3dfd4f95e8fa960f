package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/stream"
)

// rawBaseline is the reference steward is measured against: a request
// published to a stream, consumed by a durable consumer that publishes a
// reply to the stream and acks, and the reply consumed and acked by the
// requester. Same broker, same storage, same payload sizes as steward's
// request and reply messages; no status, ledger or reply method.
type rawBaseline struct {
	js       jetstream.JetStream
	reqBody  []byte
	repBody  []byte
	stopResp func()
	stopReq  func()
	t        atomic.Pointer[tracker]
}

const rawStream = "BENCH_RAW"

func newRawBaseline(ctx context.Context, js jetstream.JetStream, reqBody, repBody []byte) (*rawBaseline, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: rawStream, Subjects: []string{"bench.raw.>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Replicas: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("raw stream: %w", err)
	}
	r := &rawBaseline{js: js, reqBody: reqBody, repBody: repBody}
	mk := func(name, filter string) (jetstream.Consumer, error) {
		return s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: name, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: 30 * time.Second, MaxAckPending: 10_000,
		})
	}
	resp, err := mk("responder", "bench.raw.req")
	if err != nil {
		return nil, err
	}
	req, err := mk("requester", "bench.raw.rep")
	if err != nil {
		return nil, err
	}
	cc, err := resp.Consume(func(m jetstream.Msg) {
		out := nats.NewMsg("bench.raw.rep")
		out.Data = r.repBody
		out.Header.Set("Bench-Id", m.Headers().Get("Bench-Id"))
		f, err := js.PublishMsgAsync(out)
		if err == nil {
			select {
			case <-f.Ok():
			case <-f.Err():
			}
		}
		m.Ack()
	})
	if err != nil {
		return nil, err
	}
	r.stopResp = cc.Stop
	cc2, err := req.Consume(func(m jetstream.Msg) {
		m.Ack()
		if t := r.t.Load(); t != nil {
			t.complete(m.Headers().Get("Bench-Id"))
		}
	})
	if err != nil {
		cc.Stop()
		return nil, err
	}
	r.stopReq = cc2.Stop
	return r, nil
}

func (r *rawBaseline) close() {
	r.stopResp()
	r.stopReq()
}

// run does total round trips with window in flight.
func (r *rawBaseline) run(ctx context.Context, round string, total, window int, progress func(int)) (loadResult, error) {
	t := newTracker()
	r.t.Store(t)
	defer r.t.Store(nil)
	return drive(ctx, total, window, t, func(ctx context.Context, i int) (string, error) {
		key := round + "-" + strconv.Itoa(i)
		m := nats.NewMsg("bench.raw.req")
		m.Data = r.reqBody
		m.Header.Set("Bench-Id", key)
		f, err := r.js.PublishMsgAsync(m)
		if err != nil {
			return "", err
		}
		if err := stream.Await(ctx, f); err != nil {
			return "", err
		}
		return key, nil
	}, progress)
}

// rawSpread is the raw baseline of the scale step, on the very consumers
// the nodes used, once they have stopped: a request published to node i's
// subject of the message stream is taken from node i's durable consumer
// (pulled with the node's pull settings, on one of nodeLinks connections),
// which publishes a reply to central's subject and acks; the reply is
// taken from central's consumer and acked. Messages left in those queues
// (a goodbye, say) are acked and ignored.
func rawSpread(ctx context.Context, url string, nodes, total, window int, reqBody, repBody []byte, progress func(int)) (loadResult, error) {
	t := newTracker()
	var conns []*nats.Conn
	var stops []func()
	var mu sync.Mutex
	defer func() {
		for _, stop := range stops {
			stop()
		}
		for _, nc := range conns {
			nc.Close()
		}
	}()
	var streams []jetstream.Stream
	var jss []jetstream.JetStream
	for i := range nodeLinks + 1 {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("bench raw%d", i)))
		if err != nil {
			return loadResult{}, err
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			return loadResult{}, err
		}
		s, err := js.Stream(ctx, stream.MessagesStream)
		if err != nil {
			return loadResult{}, err
		}
		jss, streams = append(jss, js), append(streams, s)
	}
	pull := []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(consumer.DefaultPullBatch),
		jetstream.PullExpiry(consumer.DefaultPullExpiry), jetstream.PullHeartbeat(consumer.DefaultHeartbeat)}
	consume := func(s jetstream.Stream, name string, h jetstream.MessageHandler) error {
		c, err := s.Consumer(ctx, name)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", name, err)
		}
		cc, err := c.Consume(h, pull...)
		if err != nil {
			return fmt.Errorf("consume %s: %w", name, err)
		}
		mu.Lock()
		stops = append(stops, cc.Stop)
		mu.Unlock()
		return nil
	}
	// The requester, on a connection of its own.
	if err := consume(streams[nodeLinks], "central", func(m jetstream.Msg) {
		m.Ack()
		if id := m.Headers().Get("Bench-Id"); id != "" {
			t.complete(id)
		}
	}); err != nil {
		return loadResult{}, err
	}
	var ready atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range nodes {
		js, s := jss[i%nodeLinks], streams[i%nodeLinks]
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			err := consume(s, nodeName(i), func(m jetstream.Msg) {
				if id := m.Headers().Get("Bench-Id"); id != "" {
					out := nats.NewMsg(stream.MessageSubject("central"))
					out.Data = repBody
					out.Header.Set("Bench-Id", id)
					if f, err := js.PublishMsgAsync(out); err == nil {
						select {
						case <-f.Ok():
						case <-f.Err():
						}
					}
				}
				m.Ack()
			})
			if n := ready.Add(1); n%100 == 0 {
				progress(int(n))
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return loadResult{}, err
	}
	// The broker has taken every consumer's first pull request once it
	// answered a ping sent after them on the same connection.
	for _, nc := range conns {
		if err := nc.FlushTimeout(30 * time.Second); err != nil {
			return loadResult{}, err
		}
	}
	js := jss[nodeLinks]
	return drive(ctx, total, window, t, func(ctx context.Context, i int) (string, error) {
		key := "spread-" + strconv.Itoa(i)
		m := nats.NewMsg(stream.MessageSubject(nodeName(i % nodes)))
		m.Data = reqBody
		m.Header.Set("Bench-Id", key)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return "", err
		}
		if err := stream.Await(ctx, f); err != nil {
			return "", err
		}
		return key, nil
	}, func(int) {})
}
