package deadline_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/deadline"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

type env struct {
	js jetstream.JetStream
	a  *stream.Assets
	st *status.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	a, err := stream.Apply(natstest.Context(t, 20*time.Second), js, stream.Layout{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{js: js, a: a, st: status.NewStore(js, a.Status)}
}

// schedule stores the pending record and the deadline schedule of a
// delivery, as the sender does, and returns the schedule's sequence.
func (e *env) schedule(t *testing.T, did string, at time.Time) uint64 {
	t.Helper()
	ctx := t.Context()
	id, node, _ := splitID(did)
	if err := e.st.CreateAsync(ctx, &status.Record{ID: id, Node: node, Status: status.Pending, Deadline: at}, time.Hour).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := deadline.Schedule(ctx, e.js, did, at, "central", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ack := <-f.Ok():
		return ack.Sequence
	case err := <-f.Err():
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return 0
}

func splitID(did string) (string, string, bool) {
	for i := len(did) - 1; i >= 0; i-- {
		if did[i] == '.' {
			return did[:i], did[i+1:], true
		}
	}
	return "", "", false
}

// due waits for the deadline of did to fire and returns when the broker
// stored it.
func (e *env) due(t *testing.T, did string) time.Time {
	t.Helper()
	var at time.Time
	natstest.Eventually(t, 20*time.Second, "the deadline of "+did+" to fire", func() bool {
		m, err := e.a.Deadlines.GetLastMsgForSubject(t.Context(), stream.DeadlineDueSubject("central"))
		if err != nil || string(m.Data) != did {
			return false
		}
		at = m.Time
		return true
	})
	return at
}

func (e *env) status(t *testing.T, did string) status.Status {
	t.Helper()
	r, _, err := e.st.Get(t.Context(), did)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

func claim(t *testing.T, e *env, did string, seq uint64) bool {
	t.Helper()
	won, err := deadline.Claim(t.Context(), e.js, e.a.Deadlines, did, "claim."+did, seq, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return won
}

// A node that claims before the deadline owns the delivery: the schedule
// is gone, so nothing fires and nothing costs anything later.
func TestClaimInTimeCancelsTheDeadline(t *testing.T) {
	e := newEnv(t)
	did := "M1.ship1"
	seq := e.schedule(t, did, time.Now().Add(2*time.Second))
	if !claim(t, e, did, seq) {
		t.Fatal("a claim before the deadline lost")
	}
	if _, err := e.a.Deadlines.GetLastMsgForSubject(t.Context(), stream.DeadlineSubject(did)); err == nil {
		t.Error("the schedule is still there after the claim")
	}
	// Claiming again (a retry after a lost acknowledgement, a rerun after
	// a crash) still finds the delivery ours.
	if !claim(t, e, did, seq) {
		t.Error("a second claim of our own delivery lost")
	}
	// Nothing fires: give the deadline time to pass.
	time.Sleep(3500 * time.Millisecond)
	if _, err := e.a.Deadlines.GetLastMsgForSubject(t.Context(), stream.DeadlineDueSubject("central")); err == nil {
		t.Error("a claimed delivery's deadline fired")
	}
}

// The broker's scheduler fires first: no claim succeeds after that, and
// the judge marks the delivery delivery_timed_out, once.
func TestFiredDeadlineBeatsEveryLaterClaim(t *testing.T) {
	e := newEnv(t)
	did := "M2.ship1"
	seq := e.schedule(t, did, time.Now().Add(time.Second))
	firedAt := e.due(t, did)
	if claim(t, e, did, seq) {
		t.Fatal("a claim after the deadline fired won")
	}
	timedOut, err := deadline.Judge(t.Context(), e.a.Deadlines, e.st, did, firedAt)
	if err != nil || !timedOut {
		t.Fatalf("Judge: %v %v", timedOut, err)
	}
	if got := e.status(t, did); got != status.DeliveryTimedOut {
		t.Fatalf("status %s", got)
	}
	// The due message delivered again (a lost ack): nothing changes.
	if timedOut, err := deadline.Judge(t.Context(), e.a.Deadlines, e.st, did, firedAt); err != nil || timedOut {
		t.Errorf("second Judge: %v %v", timedOut, err)
	}
	hist, _ := e.st.History(t.Context(), did)
	if len(hist) != 2 {
		t.Errorf("history has %d states, want pending, delivery_timed_out", len(hist))
	}
}

// A claim and a firing that crossed (the claim stored just before the due
// message): the judge sees the claim and leaves the delivery to its node,
// even though its record is still pending.
func TestJudgeLeavesAClaimedDeliveryAlone(t *testing.T) {
	e := newEnv(t)
	did := "M3.ship1"
	seq := e.schedule(t, did, time.Now().Add(time.Hour))
	if !claim(t, e, did, seq) {
		t.Fatal("claim lost")
	}
	timedOut, err := deadline.Judge(t.Context(), e.a.Deadlines, e.st, did, time.Now())
	if err != nil || timedOut {
		t.Fatalf("Judge on a claimed delivery: %v %v", timedOut, err)
	}
	if got := e.status(t, did); got != status.Pending {
		t.Errorf("status %s, want pending (the node writes the next state)", got)
	}
}

// A judge only ever changes a pending record: a terminal one stays.
func TestJudgeNeverChangesATerminalRecord(t *testing.T) {
	e := newEnv(t)
	did := "M4.ship1"
	e.schedule(t, did, time.Now().Add(time.Hour))
	if err := e.st.Put(t.Context(), &status.Record{ID: "M4", Node: "ship1", Status: status.Rejected}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if timedOut, err := deadline.Judge(t.Context(), e.a.Deadlines, e.st, did, time.Now()); err != nil || timedOut {
		t.Errorf("Judge: %v %v", timedOut, err)
	}
	if got := e.status(t, did); got != status.Rejected {
		t.Errorf("status %s", got)
	}
	// A delivery whose record expired: nothing to do, no error.
	if timedOut, err := deadline.Judge(t.Context(), e.a.Deadlines, e.st, "GONE.ship1", time.Now()); err != nil || timedOut {
		t.Errorf("Judge of an expired record: %v %v", timedOut, err)
	}
}

// The sender replaced the schedule (a send re-driven from an outbox): a
// node holding the first copy of the message, with the old sequence, still
// claims it.
func TestClaimFollowsAReplacedSchedule(t *testing.T) {
	e := newEnv(t)
	did := "M5.ship1"
	old := e.schedule(t, did, time.Now().Add(time.Hour))
	// Published again after the deduplication window (no Nats-Msg-Id
	// here): the new schedule replaces the old, with a new sequence.
	msg := nats.NewMsg(stream.DeadlineSubject(did))
	msg.Data = []byte(did)
	ack, err := e.js.PublishMsg(t.Context(), msg, jetstream.WithScheduleAt(time.Now().Add(time.Hour).Truncate(time.Second)),
		jetstream.WithScheduleTarget(stream.DeadlineDueSubject("central")))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence == old {
		t.Fatal("the schedule was not replaced")
	}
	if !claim(t, e, did, old) {
		t.Error("a claim with the first schedule's sequence lost to the replaced schedule")
	}
}

// A delivery without a deadline (published without steward) is won at once.
func TestNoScheduleNoDeadline(t *testing.T) {
	e := newEnv(t)
	if !claim(t, e, "M6.ship1", 0) {
		t.Error("a delivery with no schedule lost")
	}
}

// The judge uses no clock of its own: it decides the same way whatever
// time the due message says, early or late.
func TestJudgeTrustsTheBrokersScheduler(t *testing.T) {
	e := newEnv(t)
	did := "M7.ship1"
	e.schedule(t, did, time.Now().Add(time.Hour))
	// As if central's clock were ten minutes behind the broker's.
	early := time.Now().Add(-10 * time.Minute)
	if timedOut, err := deadline.Judge(context.Background(), e.a.Deadlines, e.st, did, early); err != nil || !timedOut {
		t.Errorf("Judge with a skewed time: %v %v", timedOut, err)
	}
}
