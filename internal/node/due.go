package node

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/deadline"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/status"
)

// handleDue runs on the central node for every delivery deadline the
// broker's scheduler fired: unless the node claimed the delivery first,
// its pending record becomes delivery_timed_out (see package deadline).
// Deliveries that were claimed in time never fire: their schedule is gone.
func (n *Node) handleDue(ctx context.Context, l *consumer.Lease) consumer.Disposition {
	msg, meta := l.Msg(), l.Meta()
	did := string(msg.Data())
	id, node, ok := message.SplitDeliveryID(did)
	if !ok || message.ValidID(id) != nil || message.ValidNodeName(node) != nil {
		n.log.Warn("a due deadline that names no delivery; dropped", "data", firstLine(msg.Data(), 100))
		return consumer.Term("not a delivery id")
	}
	timedOut, err := deadline.Judge(ctx, n.assets.Deadlines, n.status, did, meta.Timestamp)
	if err != nil {
		if ctx.Err() != nil {
			return consumer.Nak(0)
		}
		n.log.Warn("cannot judge a due deadline now; trying again", "msg_id", id, "to", node, "error", err)
		return consumer.Nak(5 * time.Second)
	}
	if timedOut {
		text := fmt.Sprintf("%s: node %s did not take message %s before its delivery deadline", status.DeliveryTimedOut, node, id)
		n.log.Info("delivery timed out", "msg_id", id, "to", node)
		n.reportError(ctx, did+".deadline", text)
		_ = n.audit.Write(audit.Record{Event: audit.Processed, DeliveryID: did, Status: string(status.DeliveryTimedOut), Error: text})
	}
	return consumer.Ack()
}
