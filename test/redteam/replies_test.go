package redteam

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

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
	e.f.stop("ship1")
	id := fmt.Sprintf("fanout%d", goodSeq.Add(1))
	out, errOut, code := e.f.run(e.f.dir("central"), []byte(fmt.Sprintf(
		`{"id":%q,"toNodes":["ship1","ship2"],"method":"REQCliCommand","methodArgs":["echo","real answer"],
		  "replyMethod":"REQToFile","directory":"fanout","fileName":"answer.log"}`, id)), "send", "-f", "-")
	if code != 0 {
		e.t.Fatalf("send: exit %d %s%s", code, out, errOut)
	}
	attack(id)
	e.judge()
	e.queued = nil
	e.f.start("ship1")
	e.f.waitOnline("ship1")
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
