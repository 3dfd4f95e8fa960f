package redteam

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/stream"
)

// answerForAnother: ship2 knows the ID of a message that went to ship1
// too (a fan-out shares its ID), and answers for ship1, signed with its
// own key, while ship1 is offline. Central must not take it as ship1's
// answer: when ship1 comes back, its real reply is written.
func answerForAnother(e *env) {
	e.whileShip1Away(func(id string) {
		m := reply("rta1", "ship2", id+".ship1", "fanout", "answer.log")
		e.publish(e.ship2, "a reply for ship1's delivery, signed by ship2 as ship2", "central", sign(e.t, e.f.signer(e.t, "ship2"), m), "")
	})
}

// replyDedupTaken: ship2 puts a message (refused by central, it does not
// matter) into central's queue with the Nats-Msg-Id that ship1's reply to
// a fan-out will carry. ship1's real reply must still be written.
func replyDedupTaken(e *env) {
	e.whileShip1Away(func(id string) {
		hdr := nats.Header{}
		hdr.Set("Nats-Msg-Id", id+".ship1.reply.0")
		a := e.ship2.request(e.t, stream.MessageSubject("central"), hdr, []byte("{}"))
		if a.refused != "" {
			e.refusedByBroker("ship1's reply dedup ID", a.refused)
			return
		}
		var ack struct {
			Seq uint64 `json:"seq"`
		}
		if err := decodeJSON(a.msg.Data, &ack); err != nil || ack.Seq == 0 {
			e.t.Fatalf("unexpected answer %s", a.msg.Data)
		}
		e.queued = append(e.queued, stored{what: "an empty message with ship1's reply dedup ID", node: "central", seq: ack.Seq})
	})
}

// whileShip1Away stops ship1, sends a fan-out to ship1 and ship2, lets
// attack (knowing the ID, as ship2 does) do its worst, judges it, starts
// ship1 again and checks that ship1's real reply is written.
func (e *env) whileShip1Away(attack func(id string)) string {
	e.f.Stop("ship1", syscall.SIGTERM)
	id := fmt.Sprintf("fanout%d", goodSeq.Add(1))
	out, errOut, code := e.f.Steward("central", []byte(fmt.Sprintf(
		`{"id":%q,"toNodes":["ship1","ship2"],"method":"REQCliCommand","methodArgs":["echo","real answer"],
		  "replyMethod":"REQToFile","directory":"fanout","fileName":"answer.log"}`, id)), "send", "-f", "-")
	if code != 0 {
		e.t.Fatalf("send: exit %d %s%s", code, out, errOut)
	}
	attack(id)
	e.judge()
	e.queued = nil
	e.f.Start("ship1")
	e.f.WaitOnline("ship1")
	file := filepath.Join(e.f.data("central"), "fanout", "ship1", "answer.log")
	e.goodSent++
	var got []byte
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got, _ = os.ReadFile(file); string(got) == "real answer\n" {
			e.goodOK++
			return id
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Errorf("ship1's real reply to %s was not written (%q): the attack took its place", id, got)
	return id
}

// unsolicitedReply: ship2 answers a message nobody sent it. Central keeps
// no reply for a delivery it never sent.
func unsolicitedReply(e *env) {
	s2 := e.f.signer(e.t, "ship2")
	m := reply("rtu1", "ship2", "rtu1.ship2", "unsolicited", "x.log")
	e.publish(e.ship2, "a reply to a message central never sent", "central", sign(e.t, s2, m), "")
	app := reply("rtu2", "ship2", "rtu2.ship2", "unsolicited", "y.log")
	app.Method = "REQToFileAppend"
	e.publish(e.ship2, "an appending reply to a message central never sent", "central", sign(e.t, s2, app), "")
}

// unsolicitedWithForgedRecord: ship2 first writes a status record of its
// own (a node writes its deliveries' statuses) saying central sent it a
// command, then answers it, naming a stream message of its own queue.
// Central checks a reply against the request in the stream, which only
// senders write, not against any status record.
func unsolicitedWithForgedRecord(e *env) {
	now := time.Now().UTC()
	rec := map[string]any{"id": "rtv1", "node": "ship2", "fromNode": "central", "method": "REQCliCommand",
		"status": "pending", "sentAt": now, "deadline": now.Add(time.Hour), "updatedAt": now}
	if _, err := e.ship2.js.Publish(e.t.Context(), "$KV.steward_status.rtv1.ship2", encode(e.t, rec)); err != nil {
		e.t.Fatalf("ship2 writes a status record of its own: %v", err)
	}
	s2 := e.f.signer(e.t, "ship2")
	m := reply("rtv1", "ship2", "rtv1.ship2", "unsolicited", "forged.log")
	e.publish(e.ship2, "a reply to a message central never sent, after a forged status record", "central", sign(e.t, s2, m), "unsolicited")
	// A genuine request to ship2 exists: its stream sequence, with the
	// reply pointing somewhere the request did not ask for.
	id := e.goodTo("ship2")
	seq := e.lastSeqTo("ship2")
	for i, steer := range []func(*message.Message){
		func(m *message.Message) {}, // another ID than the request's
		func(m *message.Message) { m.ID, m.Reply.DeliveryID, m.Directory = id, id+".ship2", "elsewhere" },
		func(m *message.Message) { m.ID, m.Reply.DeliveryID, m.FileName = id, id+".ship2", "elsewhere.log" },
	} {
		m := reply(fmt.Sprintf("rtv%d", i+2), "ship2", fmt.Sprintf("rtv%d.ship2", i+2), "good", "good.log")
		m.Method = "REQToFileAppend"
		// A chunk the genuine reply did not have: central has not seen it.
		// Each attempt its own chunk, so two are never the same delivery in
		// central's hands at once (a copy in hand is refused as replayed).
		m.Reply.RequestSeq, m.Reply.Chunk, m.Reply.Chunks = seq, 1+i, 4
		steer(m)
		e.publish(e.ship2, fmt.Sprintf("a reply naming a genuine request, steered (%d)", i+1), "central", sign(e.t, s2, m), "unsolicited")
	}
}

// lastSeqTo is the stream sequence of the newest message in node's queue.
func (e *env) lastSeqTo(node string) uint64 {
	e.t.Helper()
	s, err := e.harness.js.Stream(e.t.Context(), stream.MessagesStream)
	if err != nil {
		e.t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(e.t.Context(), stream.MessageSubject(node))
	if err != nil {
		e.t.Fatal(err)
	}
	return msg.Sequence
}
