package redteam

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/stream"
)

// forgedSender: ship2's stolen key sends as central, as ship1, or
// unsigned, into the only queue it may publish to: central's.
func forgedSender(e *env) {
	c, s2 := e.ship2, e.f.signer(e.t, "ship2")
	asCentral := sign(e.t, s2, newMessage("rtf1", "central", "central", "REQCliCommand", e.marker("rtf1")...))
	e.publish(c, "a command as central, signed by ship2", "central", asCentral, "bad signature")
	swapped := sign(e.t, s2, newMessage("rtf2", "central", "central", "REQCliCommand", e.marker("rtf2")...))
	swapped.Signer = e.f.pub["central"]
	e.publish(c, "a command as central, signed by ship2, central's key named as signer", "central", swapped, "bad signature")
	e.publish(c, "a command as central, unsigned", "central",
		newMessage("rtf3", "central", "central", "REQCliCommand", e.marker("rtf3")...), "bad signature")
	e.publish(c, "a command as ship2 itself (central's policy)", "central",
		sign(e.t, s2, newMessage("rtf4", "ship2", "central", "REQCliCommand", e.marker("rtf4")...)), "denied")
	write := sign(e.t, s2, &message.Message{ID: "rtf5", FromNode: "ship2", ToNode: "central", Method: "REQToFile",
		Directory: "loot", FileName: "x", Data: message.Data(pwned), SentAt: time.Now().UTC(), Deadline: time.Now().Add(time.Hour).UTC()})
	e.publish(c, "a file write as ship2 itself (central's policy)", "central", write, "denied")

	// Events and replies as ship1.
	now := time.Now().UTC()
	report := &message.Message{ID: "rtf6", FromNode: "ship1", ToNode: "central", Method: "REQErrorLog",
		Data: message.Data(pwned), Event: true, SentAt: now, Deadline: now.Add(time.Hour)}
	e.publish(c, "an error report as ship1, signed by ship2", "central", sign(e.t, s2, report), "bad signature")
	hello := &message.Message{ID: "rtf7", FromNode: "ship1", ToNode: "central", Method: "REQHello",
		Event: true, SentAt: now, Deadline: now.Add(time.Hour)}
	e.publish(c, "a hello as ship1, signed by ship2", "central", sign(e.t, s2, hello), "bad signature")
	id := e.goodTo("ship1")
	e.publish(c, "a reply as ship1, signed by ship2", "central",
		sign(e.t, s2, reply("rtf8", "ship1", id+".ship1", "good", "good.log")), "bad signature")
	e.publish(c, "a reply as ship1, unsigned", "central", reply("rtf9", "ship1", id+".ship1", "good", "good.log"), "bad signature")
}

// reply is a reply message from `from` answering deliveryID, written by
// REQToFile into directory/fileName.
func reply(id, from, deliveryID, directory, fileName string) *message.Message {
	now := time.Now().UTC()
	return &message.Message{ID: id, FromNode: from, ToNode: "central", Method: "REQToFile",
		Directory: directory, FileName: fileName, Data: message.Data(pwned), SentAt: now, Deadline: now.Add(time.Hour),
		Reply: &message.ReplyInfo{DeliveryID: deliveryID, Method: "REQCliCommand", Status: "succeeded", Chunk: 0, Chunks: 1}}
}

// insider: a broker user with every right but a key no node trusts puts
// commands straight into ship1's queue: unsigned, or signed by a wrong key.
func insider(e *env) {
	c := e.relay
	relayKey, s2 := e.f.signer(e.t, "relay"), e.f.signer(e.t, "ship2")
	e.publish(c, "unsigned, as central", "ship1", newMessage("rti1", "central", "ship1", "REQCliCommand", e.marker("rti1")...), "bad signature")
	e.publish(c, "unsigned, as relay", "ship1", newMessage("rti2", "relay", "ship1", "REQCliCommand", e.marker("rti2")...), "bad signature")
	e.publish(c, "signed by relay, as central", "ship1",
		sign(e.t, relayKey, newMessage("rti3", "central", "ship1", "REQCliCommand", e.marker("rti3")...)), "bad signature")
	e.publish(c, "signed by relay, as relay", "ship1",
		sign(e.t, relayKey, newMessage("rti4", "relay", "ship1", "REQCliCommand", e.marker("rti4")...)), "bad signature")
	e.publish(c, "signed by ship2's stolen key, as central", "ship1",
		sign(e.t, s2, newMessage("rti5", "central", "ship1", "REQCliCommand", e.marker("rti5")...)), "bad signature")
	e.publish(c, "signed by ship2's stolen key, as ship2", "ship1",
		sign(e.t, s2, newMessage("rti6", "ship2", "ship1", "REQCliCommand", e.marker("rti6")...)), "bad signature")
	empty := sign(e.t, relayKey, newMessage("rti7", "central", "ship1", "REQCliCommand", e.marker("rti7")...))
	empty.Signer = e.f.pub["central"]
	empty.Signature = nil
	e.publish(c, "central named as signer, no signature", "ship1", empty, "bad signature")
}

// tampered: a genuine message central signed, read back from the stream,
// with one signed field changed at a time, published straight into the
// queue of the node it names.
func tampered(e *env) {
	id := fmt.Sprintf("genuine%d", goodSeq.Add(1))
	d, _ := e.f.sendWait(fmt.Sprintf(`[{"id":%q,"toNode":"ship2","method":"REQCliCommand","methodArgs":["echo","genuine"],
	  "data":"genuine data","replyMethod":"REQToFileAppend","replyMethodArgs":["a"],"directory":"genuine","fileName":"genuine.log",
	  "ACKTimeout":5,"retries":2,"replyACKTimeout":6,"replyRetries":1,"methodTimeout":10,"replyMethodTimeout":11}]`, id))
	if len(d) != 1 || d[0].Status != "succeeded" {
		e.t.Fatalf("the genuine message: %+v", d)
	}
	ctx, cancel := context.WithTimeout(e.t.Context(), 10*time.Second)
	defer cancel()
	st, err := e.relay.js.Stream(ctx, stream.MessagesStream)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, stream.MessageSubject("ship2"))
	if err != nil {
		e.t.Fatal(err)
	}
	genuine := decodeMap(e, raw.Data)
	if genuine["id"] != id || genuine["signature"] == nil {
		e.t.Fatalf("the last message to ship2 is not the genuine one: %s", raw.Data)
	}
	later := func(field string) string {
		t, err := time.Parse(time.RFC3339Nano, genuine[field].(string))
		if err != nil {
			e.t.Fatal(err)
		}
		return t.Add(time.Second).Format(time.RFC3339Nano)
	}
	plus := func(field string) json.Number {
		n, err := genuine[field].(json.Number).Int64()
		if err != nil {
			e.t.Fatalf("%s: %v", field, err)
		}
		return json.Number(fmt.Sprint(n + 1))
	}
	sig := []byte(genuine["signature"].(string))
	if sig[3] == 'A' {
		sig[3] = 'B'
	} else {
		sig[3] = 'A'
	}
	for _, tc := range []struct {
		field string
		value any
	}{
		{"id", id + "x"},
		{"fromNode", "ship1"},
		{"toNode", "ship1"},
		{"method", "REQToFile"},
		{"methodArgs", e.marker("tampered")},
		{"data", pwned},
		{"replyMethod", "REQToFile"},
		{"replyMethodArgs", []string{"b"}},
		{"replyACKTimeout", plus("replyACKTimeout")},
		{"replyRetries", plus("replyRetries")},
		{"replyMethodTimeout", plus("replyMethodTimeout")},
		{"directory", "elsewhere"},
		{"fileName", "other.log"},
		{"methodTimeout", plus("methodTimeout")},
		{"ACKTimeout", plus("ACKTimeout")},
		{"retries", plus("retries")},
		{"sentAt", later("sentAt")},
		{"deadline", later("deadline")},
		{"deadlineSeq", plus("deadlineSeq")},
		{"event", true},
		{"reply", map[string]any{"deliveryId": id + ".central", "method": "REQCliCommand", "status": "succeeded", "chunk": 0, "chunks": 1}},
		{"signer", e.f.pub["relay"]},
		{"signature", string(sig)},
	} {
		m := decodeMap(e, raw.Data)
		if _, ok := m[tc.field]; !ok && tc.field != "event" && tc.field != "reply" {
			e.t.Fatalf("the genuine message has no %s to tamper with: %s", tc.field, raw.Data)
		}
		m[tc.field] = tc.value
		node := "ship2"
		if tc.field == "toNode" {
			node = "ship1"
		}
		// Raw bytes, no Nats-Msg-Id: the node can only tell it from the
		// genuine message by its content.
		e.publish(e.relay, "tampered "+tc.field, node, encode(e.t, m), "bad signature")
	}
}

func decodeMap(e *env, b []byte) map[string]any {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		e.t.Fatal(err)
	}
	return m
}
