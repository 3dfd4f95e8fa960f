package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishAsync publishes msg asynchronously. When the client has too many
// publishes awaiting acks (ErrTooManyStalledMsgs, which nats.go returns
// under load), it waits for the backlog to drain and tries again, until ctx
// ends or PubAckTimeout passes: a stalled publish is retried, never
// dropped, and never waited on forever.
func PublishAsync(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	var giveUp <-chan time.Time
	for {
		f, err := js.PublishMsgAsync(msg, opts...)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			if err != nil {
				return nil, fmt.Errorf("publish %s: %w", msg.Subject, err)
			}
			return f, nil
		}
		if giveUp == nil {
			t := time.NewTimer(PubAckTimeout)
			defer t.Stop()
			giveUp = t.C
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(50 * time.Millisecond):
		case <-giveUp:
			return nil, fmt.Errorf("publish %s: %w", msg.Subject, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("publish %s: %w", msg.Subject, ctx.Err())
		}
	}
}

// Await waits for every future and returns the errors joined. Futures of
// a context made by NewJetStream resolve within PubAckTimeout.
func Await(ctx context.Context, futures ...jetstream.PubAckFuture) error {
	var errs []error
	for _, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("publish %s: %w", f.Msg().Subject, err))
		case <-ctx.Done():
			return fmt.Errorf("await publish: %w", ctx.Err())
		}
	}
	return errors.Join(errs...)
}
