package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
		select {
		case <-f.Ok():
			return key, nil
		case err := <-f.Err():
			return "", err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}, progress)
}
