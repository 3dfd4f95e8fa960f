package node_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

func TestHelloFillsRegistry(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ctx := natstest.Context(t, 20*time.Second)
	natstest.Eventually(t, 15*time.Second, "ship1 in the registry", func() bool {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.Name == "ship1" && n.Online(time.Now()) && n.Version == "test" && len(n.Methods) > 0 {
				return true
			}
		}
		return false
	})
}

func TestNodeOfflineWhenSentGetsItOnStart(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship2","method":"REQPing","directory":"pings","fileName":"ship2.log"}`)
	recs, err := c.Status(natstest.Context(t, 5*time.Second), ids[0])
	if err != nil || len(recs) != 1 || recs[0].Status != status.Pending {
		t.Fatalf("before ship2 starts want pending, got %v %s", err, describe(recs))
	}
	f.start(f.config("ship2"))
	recs = wait(t, c, ids, 20*time.Second)
	if recs[0].Status != status.Succeeded || recs[0].Attempt != 1 {
		t.Fatalf("want succeeded on the first delivery, got %s attempt %d", describe(recs), recs[0].Attempt)
	}
	natstest.Eventually(t, 10*time.Second, "reply written on central", func() bool {
		b, _ := os.ReadFile(filepath.Join(central.cfg.DataFolder, "pings", "ship2", "ship2.log"))
		return strings.Contains(string(b), "pong from ship2")
	})
}

func TestDeliveryDeadlineForNodeThatNeverComes(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ghost","method":"REQPing","deliveryDeadline":1}`)
	recs := wait(t, c, ids, 30*time.Second)
	if recs[0].Status != status.DeliveryTimedOut {
		t.Fatalf("want delivery_timed_out, got %s", describe(recs))
	}
	// If the node comes after the deadline, it must not run the message.
	f.start(f.config("ghost"))
	natstest.Eventually(t, 10*time.Second, "ghost's queue settled", func() bool {
		info, err := consumerInfo(t, f, "ghost")
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if _, err := os.Stat(filepath.Join(central.cfg.DataFolder, "ping", "ghost", "pong.log")); err == nil {
		t.Fatal("a message past its deadline ran")
	}
	recs, _ = c.Status(natstest.Context(t, 5*time.Second), ids[0])
	if recs[0].Status != status.DeliveryTimedOut {
		t.Fatalf("status changed after the deadline: %s", describe(recs))
	}
}

func consumerInfo(t *testing.T, f *fleet, node string) (*jetstream.ConsumerInfo, error) {
	t.Helper()
	_, js := natstest.Connect(t, f.srv)
	ctx := natstest.Context(t, 5*time.Second)
	cons, err := js.Consumer(ctx, stream.MessagesStream, node)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// publishRaw puts a message on a node's subject without going through the
// sender, as a buggy or hostile publisher would.
func publishRaw(t *testing.T, f *fleet, node, method string, body []byte, deliveryID string) {
	t.Helper()
	_, js := natstest.Connect(t, f.srv)
	msg := nats.NewMsg(stream.MessageSubject(node))
	msg.Data = body
	var opts []jetstream.PublishOpt
	if deliveryID != "" {
		opts = append(opts, jetstream.WithMsgID(deliveryID))
	}
	if _, err := js.PublishMsg(natstest.Context(t, 5*time.Second), msg, opts...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func TestBadMessagesReachingANodeAreRejected(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	sent := time.Now().UTC()
	good := func(mut func(m map[string]any)) []byte {
		m := map[string]any{
			"toNode": "ship1", "method": "REQPing", "id": "", "fromNode": "central",
			"sentAt": sent, "deadline": sent.Add(time.Hour), "ACKTimeout": 2, "retries": 1,
		}
		mut(m)
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		name, id string
		body     []byte
		code     string
	}{
		{"malformed JSON", "bad1", []byte(`{"toNode": "ship1", "method":`), "malformed"},
		{"unknown method", "bad2", good(func(m map[string]any) { m["method"] = "REQNoSuchThing" }), "unknown_method"},
		{"wrong field type", "bad3", good(func(m map[string]any) { m["retries"] = "three" }), "field_type"},
		{"hostile directory", "bad4", good(func(m map[string]any) { m["directory"] = "../../etc" }), "bad_path"},
		{"hostile file name", "bad5", good(func(m map[string]any) { m["fileName"] = "../passwd" }), "bad_path"},
		{"for another node", "bad6", good(func(m map[string]any) { m["toNode"] = "ship2" }), "field_value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if strings.Contains(string(body), `"id":""`) {
				body = []byte(strings.Replace(string(body), `"id":""`, `"id":"`+tc.id+`"`, 1))
			}
			publishRaw(t, f, "ship1", "REQPing", body, message.DeliveryID(tc.id, "ship1"))
			recs := wait(t, c, []string{tc.id}, 15*time.Second)
			if len(recs) != 1 || recs[0].Status != status.Rejected || recs[0].ErrorCode != tc.code {
				t.Fatalf("want rejected with code %s, got %+v", tc.code, recs[0])
			}
		})
	}
	// Every refusal reached central's error log, and ship1 still works.
	natstest.Eventually(t, 15*time.Second, "errors in central's error log", func() bool {
		b, _ := os.ReadFile(filepath.Join(central.cfg.DataFolder, methods.ErrorLogDir, "ship1", methods.ErrorLogFile))
		return strings.Count(string(b), "\n") >= len(cases)
	})
	ids := send(t, c, `{"toNode":"ship1","method":"REQPing"}`)
	if recs := wait(t, c, ids, 15*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("ship1 stopped working after bad input: %s", describe(recs))
	}
}

func TestBadInputIsRefusedAtTheSender(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	c := f.client(central.cfg)
	ctx := natstest.Context(t, 10*time.Second)
	big := strings.Repeat("x", 1<<20+10)
	cases := []struct {
		name, input, code string
	}{
		{"unknown method", `{"toNode":"ship1","method":"REQNope"}`, "unknown_method"},
		{"missing toNode", `{"method":"REQPing"}`, "missing_target"},
		{"wrong type", `{"toNode":"ship1","method":"REQPing","methodTimeout":"10"}`, "field_type"},
		{"unknown field", `{"toNode":"ship1","method":"REQPing","methodArg":["x"]}`, "unknown_field"},
		{"over 1 MiB", `{"toNode":"ship1","method":"REQToFile","fileName":"f","data":"` + big + `"}`, "too_large"},
		{"directory leaves data folder", `{"toNode":"ship1","method":"REQPing","directory":"a/../../b"}`, "bad_path"},
		{"file name with a path", `{"toNode":"ship1","method":"REQPing","fileName":"x/../../y"}`, "bad_path"},
		{"bad node name", `{"toNode":"ship.1","method":"REQPing"}`, "bad_node_name"},
		{"id with a dot", `{"toNode":"ship1","method":"REQPing","id":"my.id"}`, "field_value"},
		{"fromNode set by operator", `{"toNode":"ship1","method":"REQPing","fromNode":"central"}`, "reserved_field"},
		{"deadline sequence set by operator", `{"toNode":"ship1","method":"REQPing","deadlineSeq":3}`, "reserved_field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each bad message travels with a good one, which must still go.
			input := "[" + tc.input + `,{"toNode":"ship1","method":"REQPing"}]`
			receipts, err := c.Send(ctx, []byte(input))
			if err != nil {
				t.Fatalf("batch refused as a whole: %v", err)
			}
			if receipts[0].OK() || receipts[0].Code != tc.code {
				t.Fatalf("want error code %s, got %+v", tc.code, receipts[0])
			}
			if !receipts[1].OK() {
				t.Fatalf("the good message was not sent: %+v", receipts[1])
			}
		})
	}
	if _, err := c.Send(ctx, []byte(`[{"toNode":`)); err == nil {
		t.Fatal("malformed JSON accepted")
	}
}

func TestSocketInput(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	conn, err := net.Dial("unix", central.cfg.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Like nc -U: write, do not close the writing side, read the answer.
	if _, err := conn.Write([]byte(`[{"toNode":"ship1","method":"REQPing"},{"toNode":"ship1","method":"REQBogus"}]`)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var answer strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		answer.Write(buf[:n])
		if err != nil {
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(answer.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " REQPing ship1") || !strings.Contains(lines[1], "error: message 2") {
		t.Fatalf("unexpected answer:\n%s", answer.String())
	}
	id := strings.Fields(lines[0])[0]
	c := f.client(central.cfg)
	if recs := wait(t, c, []string{id}, 15*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("socket message: %s", describe(recs))
	}
}

func TestBrokerRestartLosesNothing(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQPing"}`)
	wait(t, c, ids, 15*time.Second)

	f.srv.Restart()
	// The client reconnects too; send once it is back.
	var more []string
	natstest.Eventually(t, 30*time.Second, "send after broker restart", func() bool {
		receipts, err := c.Send(natstest.Context(t, 3*time.Second), []byte(`{"toNode":"ship1","method":"REQPing"}`))
		if err != nil || !receipts[0].OK() {
			return false
		}
		more = append(more, receipts[0].ID)
		return true
	})
	recs := wait(t, c, more, 30*time.Second)
	if recs[0].Status != status.Succeeded {
		t.Fatalf("after broker restart: %s", describe(recs))
	}
}

func TestDeletedConsumerIsCreatedAgain(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	ship1 := f.start(f.config("ship1"))
	c := f.client(central.cfg)
	first := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo run >> runs.txt"]}`)
	wait(t, c, first, 20*time.Second)

	_, js := natstest.Connect(t, f.srv)
	ctx := natstest.Context(t, 30*time.Second)
	if err := js.DeleteConsumer(ctx, stream.MessagesStream, "ship1"); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 20*time.Second, "ship1's consumer back", func() bool {
		_, err := consumerInfo(t, f, "ship1")
		return err == nil
	})
	ids := send(t, c, `{"toNode":"ship1","method":"REQPing"}`)
	if recs := wait(t, c, ids, 20*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("after the consumer was deleted: %s", describe(recs))
	}
	// The new consumer starts at the beginning of the stream, so the first
	// message came again: the ledger kept it from running twice.
	if got := readFile(t, filepath.Join(ship1.cfg.DataFolder, "runs.txt")); got != "run\n" {
		t.Fatalf("the command ran %d times", strings.Count(got, "run"))
	}
}
