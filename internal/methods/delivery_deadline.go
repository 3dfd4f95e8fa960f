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
	id := string(req.Msg.Data)
	recs, err := req.Env.Status.List(ctx, id)
	if err != nil {
		return nil, err
	}
	timedOut := 0
	var errs []error
	for _, r := range recs {
		changed, err := timeOut(ctx, req, r.Key())
		if err != nil {
			errs = append(errs, err)
		}
		if changed {
			timedOut++
		}
	}
	if timedOut > 0 {
		req.Log.Info("deliveries timed out", "msg_id", id, "count", timedOut)
	}
	return &Result{Output: fmt.Appendf(nil, "%d of %d deliveries timed out", timedOut, len(recs))}, errors.Join(errs...)
}

// timeOut changes one delivery from pending to delivery_timed_out if it is
// still pending and past its deadline.
func timeOut(ctx context.Context, req *Request, key string) (bool, error) {
	for range 5 {
		rec, rev, err := req.Env.Status.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil // expired: nothing to do
		}
		if err != nil {
			return false, err
		}
		if rec.Status != status.Pending {
			return false, nil
		}
		now := req.Env.now().UTC()
		if now.Before(rec.Deadline) {
			return false, fmt.Errorf("deadline event for %s came %s early", key, rec.Deadline.Sub(now))
		}
		rec.Status = status.DeliveryTimedOut
		rec.Error = fmt.Sprintf("node %s did not take the message before its delivery deadline %s", rec.Node, rec.Deadline.Format(time.RFC3339))
		rec.ErrorCode = string(status.DeliveryTimedOut)
		rec.FinishedAt, rec.UpdatedAt = now, now
		err = req.Env.Status.Update(ctx, rec, rev)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, err
		}
		// Someone wrote the record since we read it: look again.
	}
	return false, fmt.Errorf("status %s kept changing", key)
}
