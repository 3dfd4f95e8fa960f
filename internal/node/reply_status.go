package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/status"
)

// The node a reply comes back to (the request's fromNode) records how its
// reply method went, under the delivery's reply key, so that the sender
// can wait for the file to be written and see why it was not.

// replyRecord is the reply record of the delivery d answers.
func (n *Node) replyRecord(d *delivery, st status.Status, o *ledger.Outcome) *status.Record {
	m := d.msg
	id, node, _ := message.SplitDeliveryID(m.Reply.DeliveryID)
	r := &status.Record{
		ID: id, Node: node, FromNode: n.cfg.NodeName, Method: m.Method, Status: st, Reply: true,
		Attempt: uint64(d.run), SentAt: m.Reply.RequestSentAt, UpdatedAt: n.now().UTC(), TraceID: d.traceID,
	}
	if o != nil {
		r.Error, r.ErrorCode, r.StartedAt, r.FinishedAt = o.Error, o.ErrorCode, o.StartedAt, o.FinishedAt
	}
	if m.Method == "REQToFile" || m.Method == "REQToFileAppend" {
		r.File, _ = methods.DataFile(m)
	}
	return r
}

// putReplyStatus writes the final reply record.
func (n *Node) putReplyStatus(ctx context.Context, d *delivery, o *ledger.Outcome) *status.Write {
	st := status.Succeeded
	if o.Status != string(status.Succeeded) {
		st = status.Failed
	}
	return n.status.PutAsync(ctx, n.replyRecord(d, st, o), d.msg.StatusTTL(n.now()))
}

// notRetryable are the error codes of reply failures that trying again
// cannot mend: the reply names a bad place or a method this node lacks.
var notRetryable = []string{
	string(message.CodeBadPath), string(message.CodeUnknownMethod), string(message.CodeFieldValue),
	string(message.CodeFieldType), string(message.CodeMalformed), "bad_args", "method_disabled",
}

// replyRetryable reports whether a reply method's failure may mend itself
// (a full or read-only disk, a folder an operator can fix).
func replyRetryable(o *ledger.Outcome) bool {
	return !slices.Contains(notRetryable, o.ErrorCode)
}

// maxReplyBackoff caps the wait between tries of a failing reply.
const maxReplyBackoff = 5 * time.Minute

// retryReply leaves a reply whose method failed for another try: the
// reply record says why (still not terminal), central hears of the first
// failure, and the message comes again after a growing delay, until the
// reply's own delivery deadline.
func (n *Node) retryReply(ctx context.Context, d *delivery, o *ledger.Outcome) consumer.Disposition {
	m := d.msg
	delay := min(max(m.ACKTimeoutDuration(), time.Second)<<min(d.run-1, 20), maxReplyBackoff)
	rec := n.replyRecord(d, status.Delivered, o)
	rec.Error = fmt.Sprintf("%s (try %d; trying again in %s)", o.Error, d.run, delay)
	if err := n.status.Put(ctx, rec, m.StatusTTL(n.now())); err != nil {
		d.log.Debug("reply record not stored", "error", err)
	}
	if d.run == 1 {
		n.logOutcome(d, o)
		n.reportError(ctx, d.key+".retry", fmt.Sprintf("reply %s for %s (message %s) failed and is being retried until %s: %s",
			m.Method, m.Reply.Method, m.ID, m.Deadline.Format(time.RFC3339), o.Error))
	}
	return consumer.Nak(delay)
}
