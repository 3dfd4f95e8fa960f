package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/deadline"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/status"
)

// Cancelled is what a cancel did to one delivery.
type Cancelled struct {
	Node string `json:"node"`
	// Outcome: "cancelled" (taken away before it ran), "stopping" (it
	// runs: its node was asked to stop it, by message StopID), or the
	// status it already ended with.
	Outcome string `json:"outcome"`
	StopID  string `json:"stopId,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Cancel cancels message id on every node where it has not ended: a
// delivery its node has not taken yet is taken away (its node will not run
// it: the cancel and the node's claim exclude each other on the broker)
// and is cancelled; one that runs is stopped by a REQOpProcessStop sent to
// its node (it then ends cancelled, with its output so far).
func (c *Client) Cancel(ctx context.Context, id string) ([]Cancelled, error) {
	recs, err := c.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []Cancelled
	for _, r := range recs {
		if r.Reply {
			continue
		}
		deliveryID := message.DeliveryID(r.ID, r.Node)
		res := Cancelled{Node: r.Node, Outcome: string(r.Status)}
		if r.Status.Terminal() {
			res.Detail = "it had already ended"
			out = append(out, res)
			continue
		}
		won, err := deadline.Cancel(ctx, c.js, c.assets.Deadlines, deliveryID, c.cfg.NodeName)
		if err != nil {
			return out, err
		}
		if won {
			if err := c.markCancelled(ctx, deliveryID); err != nil {
				return out, err
			}
			res.Outcome, res.Detail = string(status.Cancelled), "taken away before it ran"
			out = append(out, res)
			continue
		}
		// Its node has it: ask the node to stop it.
		input, _ := json.Marshal(map[string]any{"toNode": r.Node, "method": "REQOpProcessStop",
			"methodArgs": []string{r.Method, r.Node, "subscriber", deliveryID}})
		receipts, err := c.Send(ctx, input)
		if err != nil {
			return out, err
		}
		if len(receipts) != 1 || !receipts[0].OK() {
			return out, fmt.Errorf("the stop for %s was not sent: %+v", r.Node, receipts)
		}
		res.Outcome, res.StopID = "stopping", receipts[0].ID
		res.Detail = "its node has it; asked it to stop (REQOpProcessStop " + receipts[0].ID + ")"
		out = append(out, res)
	}
	return out, nil
}

// markCancelled records a cancelled delivery that is still pending
// (compare-and-set: a record that moved on is left alone).
func (c *Client) markCancelled(ctx context.Context, deliveryID string) error {
	for range 5 {
		rec, rev, err := c.status.Get(ctx, deliveryID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if rec.Status != status.Pending {
			return nil
		}
		now := time.Now().UTC()
		rec.Status, rec.ErrorCode = status.Cancelled, string(status.Cancelled)
		rec.Error = fmt.Sprintf("cancelled by %s before it ran (steward cancel)", c.cfg.NodeName)
		rec.FinishedAt, rec.UpdatedAt = now, now
		err = c.status.Update(ctx, rec, rev, message.StatusRetention)
		if err == nil || !errors.Is(err, status.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("status %s kept changing", deliveryID)
}
