package methods

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stewardfleet/steward/internal/status"
)

// deliveryDeadline runs on the central node when a delivery's deadline
// schedule fires (see package stream). If the delivery is still pending, it
// becomes delivery_timed_out. The change is a compare-and-set, so a node
// that takes the message at the same moment wins or loses cleanly.
var deliveryDeadline = Spec{
	Name:           "REQDeliveryDeadline",
	Summary:        "internal: mark a delivery that is still pending at its deadline as delivery_timed_out",
	Kind:           Event,
	Internal:       true,
	DefaultTimeout: 10 * time.Second,
	Handler:        runDeliveryDeadline,
}

func runDeliveryDeadline(ctx context.Context, req *Request) (*Result, error) {
	if req.Env.Status == nil {
		return nil, fmt.Errorf("delivery deadline reached %s, which keeps no status store", req.Env.NodeName)
	}
	key := string(req.Msg.Data)
	for range 5 {
		rec, rev, err := req.Env.Status.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return &Result{}, nil // expired or never written: nothing to do
		}
		if err != nil {
			return nil, err
		}
		if rec.Status != status.Pending {
			return &Result{}, nil
		}
		now := req.Env.now().UTC()
		if now.Before(rec.Deadline) {
			return nil, fmt.Errorf("deadline event for %s came %s early", key, rec.Deadline.Sub(now))
		}
		rec.Status = status.DeliveryTimedOut
		rec.Error = fmt.Sprintf("node %s did not take the message before its delivery deadline %s", rec.Node, rec.Deadline.Format(time.RFC3339))
		rec.ErrorCode = string(status.DeliveryTimedOut)
		rec.FinishedAt, rec.UpdatedAt = now, now
		err = req.Env.Status.Update(ctx, rec, rev)
		if err == nil {
			req.Log.Info("delivery timed out", "delivery", key, "node", rec.Node)
			return &Result{Output: []byte(rec.Error)}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, err
		}
		// Someone wrote the record since we read it: look again.
	}
	return nil, fmt.Errorf("status %s kept changing", key)
}
