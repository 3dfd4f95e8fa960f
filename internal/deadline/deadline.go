// Package deadline decides whether a node took a delivery before its
// delivery deadline. There is one judge, the broker, and one clock, the
// broker's: the decision is the order of two messages in the
// STEWARD_DEADLINES stream.
//
//   - The sender schedules one message per delivery (Schedule) that fires
//     at the deadline into the central node's queue of due deadlines.
//   - Before it runs a delivery, the receiving node claims it (Claim): a
//     publish that the broker stores only while the schedule is still
//     there, and that removes the schedule in the same step. A node that
//     claims in time owns the delivery from then on. A finished delivery
//     costs nothing later: its schedule is gone.
//   - When the schedule fires, the broker stores the due message and
//     removes the schedule in the same step, so no claim can succeed after
//     that. The central node (Judge) then marks the delivery
//     delivery_timed_out, unless a claim was stored first (a claim and a
//     firing that crossed).
//
// No node's clock takes part: a node or central whose clock is off by
// minutes decides exactly as one whose clock is right.
package deadline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// Headers the broker's scheduler understands: a message that carries them
// removes the schedule named by Nats-Scheduler when it is stored.
const (
	schedulerHeader    = "Nats-Scheduler"
	scheduleNextHeader = "Nats-Schedule-Next"
	scheduleNextPurge  = "purge"
)

// Schedule publishes the deadline schedule of one delivery: at at (the
// broker's clock; schedules have one-second resolution, so it fires in the
// second after the deadline), a message carrying deliveryID is stored on
// central's due subject and kept for ttl. Publishing it again replaces it.
// The future's acknowledgement holds the schedule's stream sequence, which
// the delivery carries as its DeadlineSeq.
func Schedule(ctx context.Context, js jetstream.JetStream, deliveryID string, at time.Time, central string, ttl time.Duration) (jetstream.PubAckFuture, error) {
	msg := nats.NewMsg(stream.DeadlineSubject(deliveryID))
	msg.Data = []byte(deliveryID)
	return stream.PublishAsync(ctx, js, msg,
		jetstream.WithMsgID(deliveryID+".deadline"),
		jetstream.WithScheduleAt(at.Add(time.Second).Truncate(time.Second)),
		jetstream.WithScheduleTarget(stream.DeadlineDueSubject(central)),
		jetstream.WithScheduleTTL(ttl))
}

// ErrCancelled: the delivery was cancelled before its node claimed it.
var ErrCancelled = errors.New("the delivery was cancelled before it ran")

// Cancel takes a delivery away before its node claims it (steward
// cancel): like a claim, it is stored only while the delivery's schedule is
// there and removes it, so exactly one of the node's claim, the cancel and
// the deadline wins. by names who cancelled. It reports whether the cancel
// won; false when the node claimed it first, the deadline passed, or it
// was cancelled before.
func Cancel(ctx context.Context, js jetstream.JetStream, deadlines jetstream.Stream, deliveryID, by string) (bool, error) {
	schedule := stream.DeadlineSubject(deliveryID)
	last, err := deadlines.GetLastMsgForSubject(ctx, schedule)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cancel %s: %w", deliveryID, err)
	}
	msg := nats.NewMsg(stream.CancelSubject(deliveryID))
	msg.Data = []byte(by)
	msg.Header.Set(schedulerHeader, schedule)
	msg.Header.Set(scheduleNextHeader, scheduleNextPurge)
	_, err = js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequenceForSubject(last.Sequence, schedule),
		jetstream.WithMsgTTL(message.MaxTimeout+message.Grace))
	switch {
	case err == nil:
		return true, nil
	case isWrongLastSequence(err):
		return false, nil
	}
	return false, fmt.Errorf("cancel %s: %w", deliveryID, err)
}

// CancelledBy says who cancelled a delivery ("" when nobody did).
func CancelledBy(ctx context.Context, deadlines jetstream.Stream, deliveryID string) (string, error) {
	m, err := deadlines.GetLastMsgForSubject(ctx, stream.CancelSubject(deliveryID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(m.Data), nil
}

// Claim claims delivery deliveryID for the node that is about to run it.
// seq is the stream sequence of its schedule (0: the delivery has no
// deadline, and the claim is won at once); msgID is the claim's
// Nats-Msg-Id, the same for every try of one node (signature.Signer.MsgID
// of "claim.<deliveryID>", so no other client can take it first). It
// returns true if the node owns the delivery (now, or since an earlier
// claim), false if the deadline passed first, and ErrCancelled when a
// sender cancelled it first.
func Claim(ctx context.Context, js jetstream.JetStream, deadlines jetstream.Stream, deliveryID, msgID string, seq uint64, ttl time.Duration) (bool, error) {
	if seq == 0 {
		return true, nil
	}
	schedule := stream.DeadlineSubject(deliveryID)
	for range 3 {
		msg := nats.NewMsg(stream.ClaimSubject(deliveryID))
		msg.Header.Set(schedulerHeader, schedule)
		msg.Header.Set(scheduleNextHeader, scheduleNextPurge)
		_, err := js.PublishMsg(ctx, msg,
			jetstream.WithMsgID(msgID),
			jetstream.WithExpectLastSequenceForSubject(seq, schedule),
			jetstream.WithMsgTTL(ttl))
		if err == nil {
			return true, nil
		}
		if !isWrongLastSequence(err) {
			return false, fmt.Errorf("claim %s: %w", deliveryID, err)
		}
		// The schedule is not the one we know: we claimed it before (a
		// retry after a crash or a lost acknowledgement), the sender
		// replaced it (a send re-driven from its outbox), or it fired.
		claimed, err := exists(ctx, deadlines, stream.ClaimSubject(deliveryID))
		if err != nil || claimed {
			return claimed, err
		}
		if cancelled, err := exists(ctx, deadlines, stream.CancelSubject(deliveryID)); err != nil || cancelled {
			if cancelled {
				err = ErrCancelled
			}
			return false, err
		}
		last, err := deadlines.GetLastMsgForSubject(ctx, schedule)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil // it fired: the deadline passed
		}
		if err != nil {
			return false, fmt.Errorf("claim %s: %w", deliveryID, err)
		}
		seq = last.Sequence
	}
	return false, fmt.Errorf("claim %s: its schedule keeps changing", deliveryID)
}

// Judge handles a due deadline on the central node: it marks the delivery
// delivery_timed_out unless the node claimed it first, or its record is
// no longer pending. It reports whether it marked it.
func Judge(ctx context.Context, deadlines jetstream.Stream, st *status.Store, deliveryID string, firedAt time.Time) (bool, error) {
	claimed, err := exists(ctx, deadlines, stream.ClaimSubject(deliveryID))
	if err != nil || claimed {
		return false, err
	}
	for range 5 {
		rec, rev, err := st.Get(ctx, deliveryID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil // expired: nothing to do
		}
		if err != nil {
			return false, err
		}
		if rec.Status != status.Pending {
			return false, nil
		}
		rec.Status = status.DeliveryTimedOut
		rec.Error = fmt.Sprintf("node %s did not take the message before its delivery deadline %s", rec.Node, rec.Deadline.Format(time.RFC3339))
		rec.ErrorCode = string(status.DeliveryTimedOut)
		rec.FinishedAt, rec.UpdatedAt = firedAt.UTC(), firedAt.UTC()
		err = st.Update(ctx, rec, rev, message.StatusRetention)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, status.ErrConflict) {
			return false, err
		}
		// The record changed since we read it: look again.
	}
	return false, fmt.Errorf("status %s kept changing", deliveryID)
}

func exists(ctx context.Context, s jetstream.Stream, subject string) (bool, error) {
	_, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", subject, err)
	}
	return true, nil
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
