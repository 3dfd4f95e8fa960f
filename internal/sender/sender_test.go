package sender_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// The defaults every test sender uses.
var testDefaults = sender.Defaults{ACKTimeout: 5 * time.Second, Retries: 2, DeliveryDeadline: time.Hour}

// env is a sender on a real broker with steward's layout.
type env struct {
	js        jetstream.JetStream
	assets    *stream.Assets
	status    *status.Store
	sender    *sender.Sender
	now       time.Time
	auditPath string
}

// newEnv starts a broker and a sender whose clock stands at the time the
// test started. change, if not nil, adjusts the options.
func newEnv(t testing.TB, change func(*sender.Options)) *env {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	a, err := stream.Apply(natstest.Context(t, 20*time.Second), js, stream.Layout{}, nil)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	e := &env{js: js, assets: a, status: status.NewStore(js, a.Status), now: time.Now().UTC(),
		auditPath: filepath.Join(t.TempDir(), "audit.jsonl")}
	log, err := audit.Open(e.auditPath, "operator")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	o := sender.Options{
		JS: js, Status: e.status, Methods: methods.Default(), Node: "operator", CentralNode: "central",
		Defaults: testDefaults, MaxPayload: nc.MaxPayload(), Audit: log,
		Now: func() time.Time { return e.now },
	}
	if change != nil {
		change(&o)
	}
	e.sender = sender.New(o)
	return e
}

// send sends input and fails the test unless it could be read.
func (e *env) send(t testing.TB, input string) []sender.Receipt {
	t.Helper()
	rs, err := e.sender.SendInput(t.Context(), []byte(input))
	if err != nil {
		t.Fatalf("SendInput: %v", err)
	}
	return rs
}

// streamOf is the stream that holds subj.
func (e *env) streamOf(subj string) jetstream.Stream {
	switch {
	case strings.HasPrefix(subj, "steward.deadline."):
		return e.assets.Deadlines
	case strings.HasPrefix(subj, "$KV.steward_status."):
		s, err := e.js.Stream(context.Background(), "KV_steward_status")
		if err != nil {
			panic(err)
		}
		return s
	}
	return e.assets.Messages
}

// lastMsg returns the last message on subj, or nil when there is none.
func (e *env) lastMsg(t testing.TB, subj string) *jetstream.RawStreamMsg {
	t.Helper()
	m, err := e.streamOf(subj).GetLastMsgForSubject(t.Context(), subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("get last message on %s: %v", subj, err)
	}
	return m
}

// msgCount is how many messages the stream holds on subjects matching filter.
func (e *env) msgCount(t testing.TB, filter string) uint64 {
	t.Helper()
	info, err := e.streamOf(filter).Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func decodeMsg(t testing.TB, data []byte) *message.Message {
	t.Helper()
	var m message.Message
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode stored message: %v\n%s", err, data)
	}
	return &m
}

func TestSendInputReceipts(t *testing.T) {
	e := newEnv(t, nil)
	input := `[
		{"toNode":"ship1","method":"REQPing"},
		{"toNode":"ship1","method":"REQPing","colour":"red"},
		{"toNodes":["ship1","ship2"],"method":"REQCliCommand","methodArgs":["echo","hi"]},
		{"toNode":"ship1","method":"REQNope"},
		{"toNode":"ship 1","method":"REQPing"},
		{"toNode":"ship1","method":"REQPing","deliveryDeadline":"2001-01-01T00:00:00Z"},
		{"toNode":"ship1","method":"REQCliCommand"},
		{"toNode":"ship1","method":"REQPing","fromNode":"mine"},
		{"toNode":"central","method":"REQDeliveryDeadline"},
		{"method":"REQPing"},
		42,
		{"toNode":"ship3","method":"cli","methodArgs":["true"]}
	]`
	want := []struct {
		code   string
		method string
		nodes  string
	}{
		{"", "REQPing", "ship1"},
		{"unknown_field", "", ""},
		{"", "REQCliCommand", "ship1,ship2"},
		{"unknown_method", "", ""},
		{"bad_node_name", "", ""},
		{"field_value", "", ""},
		{"field_value", "", ""},
		{"reserved_field", "", ""},
		{"unknown_method", "", ""}, // internal methods are not for operators
		{"missing_target", "", ""},
		{"malformed", "", ""},
		{"", "REQCliCommand", "ship3"}, // an alias is sent as the canonical name
	}
	rs := e.send(t, input)
	if len(rs) != len(want) {
		t.Fatalf("%d receipts for %d messages: %+v", len(rs), len(want), rs)
	}
	var sent int
	for i, w := range want {
		r := rs[i]
		name := w.code
		if name == "" {
			name = "sent"
		}
		t.Run(fmt.Sprintf("%02d_%s", i, name), func(t *testing.T) {
			if r.Index != i {
				t.Errorf("receipt %d has index %d", i, r.Index)
			}
			if r.Code != w.code {
				t.Errorf("code %q, want %q (error %q)", r.Code, w.code, r.Error)
			}
			if w.code == "" {
				if !r.OK() || r.ID == "" || r.Method != w.method || strings.Join(r.Nodes, ",") != w.nodes {
					t.Errorf("receipt %+v, want sent %s to %s", r, w.method, w.nodes)
				}
				recs, err := e.status.List(t.Context(), r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != len(r.Nodes) {
					t.Errorf("%d status records for %d nodes", len(recs), len(r.Nodes))
				}
				return
			}
			if r.OK() || r.Error == "" || r.ID != "" {
				t.Errorf("refused message has receipt %+v", r)
			}
		})
		if w.code == "" {
			sent++
		}
	}

	// Each sent message is one "sent" audit line; each refused one "refused".
	events := map[string]int{}
	f, err := os.Open(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec audit.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		events[string(rec.Event)]++
	}
	if events["sent"] != sent || events["refused"] != len(want)-sent {
		t.Errorf("audit events %v, want %d sent and %d refused", events, sent, len(want)-sent)
	}
}

func TestSendInputUnreadable(t *testing.T) {
	e := newEnv(t, nil)
	for _, in := range []string{"", "   ", "hello", "[]", `"a string"`, `[{"toNode":"ship1",`} {
		t.Run(in, func(t *testing.T) {
			rs, err := e.sender.SendInput(t.Context(), []byte(in))
			if !errors.Is(err, message.ErrMalformed) {
				t.Errorf("want ErrMalformed, got %v", err)
			}
			if rs != nil {
				t.Errorf("receipts for unreadable input: %+v", rs)
			}
		})
	}
	t.Run("one object", func(t *testing.T) {
		rs, err := e.sender.SendInput(t.Context(), []byte(`{"toNode":"ship1","method":"REQPing"}`))
		if err != nil || len(rs) != 1 || !rs[0].OK() {
			t.Errorf("one object: %+v, %v", rs, err)
		}
	})
}

func TestPrepareDefaults(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := sender.New(sender.Options{Methods: methods.Default(), Node: "operator", CentralNode: "central",
		Defaults: testDefaults, Now: func() time.Time { return now }})
	type want struct {
		ack, retries, replyACK, replyRetries, methodTimeout int
		replyMethod                                         string
		deadline                                            time.Time
	}
	std := want{ack: 5, retries: 2, replyACK: 5, replyRetries: 2, methodTimeout: 10, replyMethod: "REQPong", deadline: now.Add(time.Hour)}
	cases := []struct {
		name  string
		input string
		want  want
		err   error
	}{
		{"defaults", `{"toNode":"a","method":"REQPing"}`, std, nil},
		{"method timeout from the method", `{"toNode":"a","method":"REQCliCommand","methodArgs":["true"]}`,
			want{5, 2, 5, 2, 60, "REQToFileAppend", now.Add(time.Hour)}, nil},
		{"own values kept", `{"toNode":"a","method":"REQPing","ACKTimeout":3,"retries":7,"replyACKTimeout":4,"replyRetries":1,"methodTimeout":9,"replyMethod":"REQToConsole"}`,
			want{3, 7, 4, 1, 9, "REQToConsole", now.Add(time.Hour)}, nil},
		{"zero retries kept", `{"toNode":"a","method":"REQPing","retries":0,"replyRetries":0}`,
			want{5, 0, 5, 0, 10, "REQPong", now.Add(time.Hour)}, nil},
		{"deadline in seconds", `{"toNode":"a","method":"REQPing","deliveryDeadline":90}`,
			want{5, 2, 5, 2, 10, "REQPong", now.Add(90 * time.Second)}, nil},
		{"deadline as a time", `{"toNode":"a","method":"REQPing","deliveryDeadline":"2026-03-02T08:30:00+01:00"}`,
			want{5, 2, 5, 2, 10, "REQPong", time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC)}, nil},
		{"deadline in the past", `{"toNode":"a","method":"REQPing","deliveryDeadline":"2026-03-01T11:59:59Z"}`, want{}, message.ErrFieldValue},
		{"deadline now", `{"toNode":"a","method":"REQPing","deliveryDeadline":"2026-03-01T12:00:00Z"}`, want{}, message.ErrFieldValue},
		{"method check", `{"toNode":"a","method":"REQCliCommand"}`, want{}, message.ErrFieldValue},
		{"reserved field", `{"toNode":"a","method":"REQPing","fromNode":"x"}`, want{}, message.ErrReserved},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := message.DecodeOne([]byte(tc.input))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			err = s.Prepare(m)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("want %v, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			got := want{m.ACKTimeout, m.RetriesOr(-1), m.ReplyACKTimeout, -1, m.MethodTimeout, m.ReplyMethod, m.Deadline}
			if m.ReplyRetries != nil {
				got.replyRetries = *m.ReplyRetries
			}
			if got != tc.want {
				t.Errorf("prepared\n got %+v\nwant %+v", got, tc.want)
			}
			if m.ID == "" || m.FromNode != "operator" || !m.SentAt.Equal(now) {
				t.Errorf("steward fields: id %q fromNode %q sentAt %s", m.ID, m.FromNode, m.SentAt)
			}
		})
	}

	t.Run("IDs differ", func(t *testing.T) {
		a, _ := message.DecodeOne([]byte(`{"toNode":"a","method":"REQPing"}`))
		b, _ := message.DecodeOne([]byte(`{"toNode":"a","method":"REQPing"}`))
		if err := errors.Join(s.Prepare(a), s.Prepare(b)); err != nil {
			t.Fatal(err)
		}
		if a.ID == b.ID {
			t.Errorf("two messages got the same ID %s", a.ID)
		}
	})
}

// TestFanOut: toNodes gives one pending record and one stream message per
// node, and one deadline schedule for the message.
func TestFanOut(t *testing.T) {
	e := newEnv(t, nil)
	rs := e.send(t, `{"toNodes":["ship2","ship1","ship3","ship1"],"method":"REQPing","methodArgs":["x"]}`)
	if len(rs) != 1 || !rs[0].OK() {
		t.Fatalf("receipts %+v", rs)
	}
	id := rs[0].ID
	nodes := []string{"ship2", "ship1", "ship3"}
	if !slices.Equal(rs[0].Nodes, nodes) {
		t.Errorf("receipt nodes %v, want %v (duplicates dropped, order kept)", rs[0].Nodes, nodes)
	}
	deadline := e.now.Add(testDefaults.DeliveryDeadline)
	// deadline + (retries+1) × (methodTimeout (REQPing: 10s) + ACKTimeout) + 1h grace
	wantTTL := time.Hour + 3*(10*time.Second+5*time.Second) + time.Hour
	if got := e.msgCount(t, "steward.msg.>"); got != 3 {
		t.Errorf("stream holds %d messages, want 3 deliveries", got)
	}
	if got := e.msgCount(t, "steward.deadline.>"); got != 3 {
		t.Errorf("deadlines stream holds %d messages, want 3 schedules (one per delivery)", got)
	}

	recs, err := e.status.List(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var recNodes []string
	for _, r := range recs {
		recNodes = append(recNodes, r.Node)
		if r.Status != status.Pending || r.ID != id || r.FromNode != "operator" || r.Method != "REQPing" ||
			!r.Deadline.Equal(deadline) || !r.SentAt.Equal(e.now) {
			t.Errorf("status record %+v", r)
		}
	}
	if strings.Join(recNodes, ",") != "ship1,ship2,ship3" {
		t.Errorf("status records for %v", recNodes)
	}

	for _, node := range nodes {
		t.Run(node, func(t *testing.T) {
			deliveryID := id + "." + node
			sm := e.lastMsg(t, stream.MessageSubject(node))
			if sm == nil {
				t.Fatalf("no message on %s", stream.MessageSubject(node))
			}
			if got := sm.Header.Get(jetstream.MsgIDHeader); got != deliveryID {
				t.Errorf("Nats-Msg-Id %q, want %q", got, deliveryID)
			}
			ttl, err := time.ParseDuration(sm.Header.Get(jetstream.MsgTTLHeader))
			if err != nil || ttl != wantTTL {
				t.Errorf("Nats-TTL %q (%v), want %s", sm.Header.Get(jetstream.MsgTTLHeader), err, wantTTL)
			}
			m := decodeMsg(t, sm.Data)
			if m.ToNode != node || len(m.ToNodes) != 0 || m.ID != id || m.FromNode != "operator" ||
				m.Method != "REQPing" || m.ReplyMethod != "REQPong" || !m.Deadline.Equal(deadline) ||
				!slices.Equal(m.MethodArgs, []string{"x"}) {
				t.Errorf("stored message %+v", m)
			}
			// Its deadline schedule, which the message names by sequence.
			sched := e.lastMsg(t, stream.DeadlineSubject(deliveryID))
			if sched == nil {
				t.Fatalf("no deadline schedule on %s", stream.DeadlineSubject(deliveryID))
			}
			if m.DeadlineSeq != sched.Sequence {
				t.Errorf("deadlineSeq %d, schedule at sequence %d", m.DeadlineSeq, sched.Sequence)
			}
			wantAt := "@at " + deadline.Add(time.Second).Truncate(time.Second).Format(time.RFC3339)
			if got := sched.Header.Get(jetstream.ScheduleHeader); got != wantAt {
				t.Errorf("Nats-Schedule %q, want %q", got, wantAt)
			}
			if got := sched.Header.Get(jetstream.ScheduleTargetHeader); got != "steward.deadline.due.central" {
				t.Errorf("Nats-Schedule-Target %q", got)
			}
			if string(sched.Data) != deliveryID {
				t.Errorf("schedule data %q, want %q", sched.Data, deliveryID)
			}
			// The pending record was stored before the message.
			rec, rev, err := e.status.Get(t.Context(), deliveryID)
			if err != nil || rec.Status != status.Pending || rev > sm.Sequence && false {
				t.Errorf("pending record %+v %v", rec, err)
			}
		})
	}
}

// TestDeadlineFires: the schedule of a delivery with a one-second deadline
// puts the delivery ID into the central node's queue of due deadlines.
func TestDeadlineFires(t *testing.T) {
	e := newEnv(t, func(o *sender.Options) { o.Now = nil })
	rs := e.send(t, `{"toNode":"ship1","method":"REQPing","deliveryDeadline":1}`)
	if len(rs) != 1 || !rs[0].OK() {
		t.Fatalf("receipts %+v", rs)
	}
	deliveryID := rs[0].ID + ".ship1"
	subj := stream.DeadlineDueSubject("central")
	var fired *jetstream.RawStreamMsg
	natstest.Eventually(t, 20*time.Second, "the deadline event on "+subj, func() bool {
		fired = e.lastMsg(t, subj)
		return fired != nil
	})
	if string(fired.Data) != deliveryID {
		t.Errorf("fired %q, want %q", fired.Data, deliveryID)
	}
	rec, _, err := e.status.Get(t.Context(), deliveryID)
	if err != nil {
		t.Fatal(err)
	}
	if !time.Now().After(rec.Deadline) {
		t.Errorf("the event fired before the deadline %s", rec.Deadline)
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t, func(o *sender.Options) { o.MaxPayload = 2048 })
	big := strings.Repeat("x", 3000)
	rs := e.send(t, `[
		{"toNodes":["big1","big2"],"method":"REQPing","data":"`+big+`"},
		{"toNode":"small1","method":"REQPing","data":"small"}
	]`)
	if len(rs) != 2 {
		t.Fatalf("receipts %+v", rs)
	}
	if rs[0].Code != "too_large" || rs[0].OK() || rs[0].ID != "" {
		t.Errorf("large message: receipt %+v, want code too_large", rs[0])
	}
	if !rs[1].OK() {
		t.Errorf("small message beside it: %+v", rs[1])
	}
	for _, filter := range []string{"steward.msg.big1", "steward.msg.big2"} {
		if n := e.msgCount(t, filter); n != 0 {
			t.Errorf("%d messages on %s", n, filter)
		}
	}
	if n := e.msgCount(t, "steward.msg.>"); n != 1 {
		t.Errorf("stream holds %d messages, want the small one", n)
	}
	if n := e.msgCount(t, "steward.deadline.>"); n != 1 {
		t.Errorf("deadlines stream holds %d messages, want the small one's schedule", n)
	}
	keys, err := e.assets.Status.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range keys.Keys() {
		got = append(got, k)
	}
	if len(got) != 1 || got[0] != rs[1].ID+".small1" {
		t.Errorf("status keys %v, want only the small message's", got)
	}
}

// TestStorageTTL: every delivery is kept by the broker for its message's
// StorageTTL, and its status record for StatusTTL (one rule, see package
// message).
func TestStorageTTL(t *testing.T) {
	e := newEnv(t, nil)
	rs := e.send(t, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["true"],"methodTimeout":70,"retries":4,"deliveryDeadline":7200}`)
	if !rs[0].OK() {
		t.Fatal(rs[0].Error)
	}
	sm := e.lastMsg(t, stream.MessageSubject("ship1"))
	m := decodeMsg(t, sm.Data)
	if got, want := sm.Header.Get(jetstream.MsgTTLHeader), m.StorageTTL(e.now).String(); got != want {
		t.Errorf("Nats-TTL %s, want %s", got, want)
	}
	if want := 2*time.Hour + 5*(70+5)*time.Second + message.Grace; m.StorageTTL(e.now) != want {
		t.Errorf("StorageTTL %s, want %s", m.StorageTTL(e.now), want)
	}
	st := e.lastMsg(t, "$KV.steward_status."+rs[0].ID+".ship1")
	if got, want := st.Header.Get(jetstream.MsgTTLHeader), m.StatusTTL(e.now).String(); got != want {
		t.Errorf("status record Nats-TTL %s, want %s", got, want)
	}
}

// A client that chooses its message ID can send again without sending
// twice; an ID another message uses is refused.
func TestClientChosenIDs(t *testing.T) {
	e := newEnv(t, nil)
	rs := e.send(t, `{"id":"job42","toNode":"ship1","method":"REQPing"}`)
	if !rs[0].OK() || rs[0].ID != "job42" || rs[0].Duplicate {
		t.Fatalf("first send: %+v", rs[0])
	}
	// Sent again while still pending: the broker deduplicates the copy.
	rs = e.send(t, `{"id":"job42","toNode":"ship1","method":"REQPing"}`)
	if !rs[0].OK() || rs[0].ID != "job42" {
		t.Fatalf("second send: %+v", rs[0])
	}
	if n := e.msgCount(t, stream.MessageSubject("ship1")); n != 1 {
		t.Errorf("%d copies stored, want 1", n)
	}
	// Once its node has moved it on, sending again sends nothing.
	rec, _, err := e.status.Get(t.Context(), "job42.ship1")
	if err != nil {
		t.Fatal(err)
	}
	rec.Status = status.Succeeded
	if err := e.status.Put(t.Context(), rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	rs = e.send(t, `{"id":"job42","toNode":"ship1","method":"REQPing"}`)
	if !rs[0].OK() || !rs[0].Duplicate {
		t.Errorf("send after it ran: %+v, want a duplicate", rs[0])
	}
	// The same ID for another message: refused.
	rs = e.send(t, `{"id":"job42","toNode":"ship1","method":"REQCliCommand","methodArgs":["true"]}`)
	if rs[0].OK() || rs[0].Code != sender.CodeDuplicateID {
		t.Errorf("another message with a used ID: %+v", rs[0])
	}
}

// TestFarDeliveryDeadline: steward bounds every timeout by
// message.MaxTimeout (30 days) "to keep a typo from queueing a message for
// a century", and the configured default-delivery-deadline too; a
// message's own deliveryDeadline should be refused beyond it, and nothing
// of it stored.
func TestFarDeliveryDeadline(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct{ name, deadline string }{
		{"a century as a time", `"2126-01-01T00:00:00Z"`},
		{"a century in seconds", `3153600000`},
		{"year 9999", `"9999-12-31T00:00:00Z"`},
		{"31 days", `2678400`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := fmt.Sprintf("far%d", i)
			rs := e.send(t, `{"toNode":"`+node+`","method":"REQPing","deliveryDeadline":`+tc.deadline+`}`)
			if len(rs) != 1 || rs[0].Code != "field_value" {
				t.Errorf("receipt %+v, want code field_value", rs)
			}
			// A later send on the same connection is stored after anything
			// the first one published.
			if rs := e.send(t, `{"toNode":"sync","method":"REQPing"}`); !rs[0].OK() {
				t.Fatalf("sync message: %+v", rs[0])
			}
			if sm := e.lastMsg(t, stream.MessageSubject(node)); sm != nil {
				t.Errorf("a delivery was stored (Nats-TTL %q)", sm.Header.Get(jetstream.MsgTTLHeader))
			}
		})
	}
}

// TestPublishPreparedIsDeduplicated: a reply re-sent with the same
// delivery ID is stored once.
func TestPublishPreparedIsDeduplicated(t *testing.T) {
	e := newEnv(t, nil)
	m := &message.Message{ToNode: "operator", Method: "REQToConsole", ID: "R1", FromNode: "ship1", SentAt: e.now}
	for range 2 {
		f, err := sender.PublishPrepared(t.Context(), e.js, m, "R1.ship1.reply.0", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Await(t.Context(), f); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.msgCount(t, stream.MessageSubject("operator")); n != 1 {
		t.Errorf("%d copies stored, want 1", n)
	}
	sm := e.lastMsg(t, stream.MessageSubject("operator"))
	if ttl := sm.Header.Get(jetstream.MsgTTLHeader); ttl != "1h0m0s" {
		t.Errorf("Nats-TTL %q", ttl)
	}
}

// A batch larger than MaxInput is refused before it is decoded, and the
// audit log keeps a bounded trace of it, not the whole input. (Seen
// before: refused inputs were audited in full, and the log reached 1 GiB.)
func TestOversizeInputIsRefusedAndAuditedBounded(t *testing.T) {
	e := newEnv(t, nil)
	big := []byte(`[{"toNode":"ship1","method":"REQPing","data":"` + strings.Repeat("x", sender.MaxInput) + `"}]`)
	before, _ := os.Stat(e.auditPath)
	_, err := e.sender.SendInput(t.Context(), big)
	if !errors.Is(err, message.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	_, err = e.sender.SendInput(t.Context(), append([]byte("not json "), big[:1<<20]...))
	if !errors.Is(err, message.ErrMalformed) {
		t.Fatalf("want ErrMalformed, got %v", err)
	}
	after, err := os.Stat(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	var was int64
	if before != nil {
		was = before.Size()
	}
	if grew := after.Size() - was; grew > 20<<10 {
		t.Errorf("the audit log grew by %d bytes for two refused inputs", grew)
	}
}

// A sender whose clock is ten minutes off still gives a message the
// delivery deadline that was asked for: relative deadlines are taken on
// the broker's clock.
func TestRelativeDeadlineIsOnTheBrokersClock(t *testing.T) {
	for _, skew := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			var e *env
			e = newEnv(t, func(o *sender.Options) {
				o.Now = func() time.Time { return time.Now().Add(skew) }
				o.BrokerNow = func(ctx context.Context) (time.Time, error) {
					return stream.BrokerNow(ctx, e.js, e.assets.Deadlines, "operator")
				}
			})
			rs := e.send(t, `{"toNode":"ship1","method":"REQPing","deliveryDeadline":60}`)
			if !rs[0].OK() {
				t.Fatal(rs[0].Error)
			}
			rec, _, err := e.status.Get(t.Context(), rs[0].ID+".ship1")
			if err != nil {
				t.Fatal(err)
			}
			want := time.Now().Add(60 * time.Second)
			if d := rec.Deadline.Sub(want); d < -5*time.Second || d > 5*time.Second {
				t.Errorf("deadline %s is %s off the broker's now+60s", rec.Deadline, d)
			}
		})
	}
}

// A batch larger than a window, with bad messages among good ones: every
// message gets its receipt at its position, and one node's deliveries are
// stored in input order, each with the schedule it can claim.
func TestBatchKeepsItsOrder(t *testing.T) {
	e := newEnv(t, nil)
	const n = 2*sender.Window + 7
	var items []string
	for i := range n {
		switch {
		case i%50 == 13:
			items = append(items, `{"toNode":"ship1","method":"REQNope"}`)
		case i%2 == 0:
			items = append(items, fmt.Sprintf(`{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","%d"]}`, i))
		default:
			items = append(items, fmt.Sprintf(`{"toNodes":["ship1","ship2"],"method":"REQCliCommand","methodArgs":["echo","%d"]}`, i))
		}
	}
	rs := e.send(t, "["+strings.Join(items, ",")+"]")
	if len(rs) != n {
		t.Fatalf("%d receipts for %d messages", len(rs), n)
	}
	var want []string // IDs for ship1, in input order
	for i, r := range rs {
		if r.Index != i {
			t.Fatalf("receipt %d has index %d", i, r.Index)
		}
		if i%50 == 13 {
			if r.OK() {
				t.Errorf("message %d (unknown method) was sent", i)
			}
			continue
		}
		if !r.OK() {
			t.Fatalf("message %d: %s", i, r.Error)
		}
		want = append(want, r.ID)
	}
	c, err := e.assets.Messages.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{stream.MessageSubject("ship1")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range want {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		m := decodeMsg(t, msg.Data())
		sched := e.lastMsg(t, "steward.deadline.at."+message.DeliveryID(m.ID, "ship1"))
		if sched == nil || sched.Sequence != m.DeadlineSeq {
			t.Errorf("delivery %s carries schedule %d, which is not its schedule's (%v)", m.ID, m.DeadlineSeq, sched)
		}
		got = append(got, m.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ship1's deliveries are stored out of input order:\n got %v\nwant %v", got, want)
	}
}

// TestReceiptField: a refused message's receipt names the field its error
// is about, as the JSON message format spells it, and keeps the error
// text and code it had before receipts named fields.
func TestReceiptField(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, input string
		targets     []string
		noResolver  bool
		field, code string
		err         string
	}{
		{name: "negative timeout", input: `{"toNode":"ship1","method":"REQPing","methodTimeout":-3}`,
			field: "methodTimeout", code: "field_value", err: `field "methodTimeout": -3 seconds is negative: invalid field value`},
		{name: "unknown field", input: `{"toNode":"ship1","method":"REQPing","colour":"red"}`,
			field: "colour", code: "unknown_field", err: `field "colour" is not part of the message format: unknown field`},
		{name: "wrong type", input: `{"toNode":"ship1","method":"REQPing","retries":"3"}`,
			field: "retries", code: "field_type", err: `field "retries": expected a number, got string: wrong field type`},
		{name: "method's own check", input: `{"toNode":"ship1","method":"REQCliCommand"}`,
			field: "methodArgs", code: "field_value", err: `REQCliCommand needs methodArgs: the command and its arguments, e.g. ["sh", "-c", "uptime"]: invalid field value`},
		{name: "operation", input: `{"toNode":"ship1","method":"REQOpCommand"}`,
			field: "operation", code: "field_value", err: `REQOpCommand needs "operation": {"opCmd": "ps" | "startProc" | "stopProc", "opArg": {…}}: invalid field value`},
		{name: "past deadline", input: `{"toNode":"ship1","method":"REQPing","deliveryDeadline":"2001-01-01T00:00:00Z"}`,
			field: "deliveryDeadline", code: "field_value", err: `deliveryDeadline 2001-01-01T00:00:00Z is in the past: invalid field value`},
		{name: "bad node name", input: `{"toNodes":["ship1","ship.2"],"method":"REQPing"}`,
			field: "toNodes", code: "bad_node_name", err: `node name "ship.2" may hold only letters, digits, '-' and '_': invalid node name`},
		{name: "reserved", input: `{"toNode":"ship1","method":"REQPing","fromNode":"mine"}`,
			field: "fromNode", code: "reserved_field", err: `field "fromNode" is set by steward to the sending node: field set by steward`},
		{name: "no match", input: `{"toNodes":["role=cache"],"method":"REQPing"}`,
			field: "toNodes", code: "missing_target", err: `target role=cache matches no node of the registry (3 nodes): no node matches: missing toNode`},
		{name: "expression without resolver", input: `{"toNode":"*","method":"REQPing"}`, noResolver: true,
			field: "toNode", code: "unresolved_target", err: `target expressions such as "*" and role=db are resolved against the node registry by steward send and the central node's socket, not here: name the nodes: unresolved target`},
		{name: "expression of --target only", input: `{"toNodes":["ship1"],"method":"REQPing"}`, targets: []string{"role=cache"},
			field: "", code: "missing_target", err: `target role=cache matches no node of the registry (3 nodes): no node matches: missing toNode`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := sender.InputOptions{Targets: tt.targets, Resolver: testResolver(e.now)}
			if tt.noResolver {
				o.Resolver = nil
			}
			// A batch: the refused message is the second, after a good one.
			rs, err := e.sender.SendInputWith(t.Context(), []byte(`[{"toNode":"ship9","method":"REQPing"},`+tt.input+`]`), o)
			if err != nil {
				t.Fatal(err)
			}
			if tt.targets == nil && (!rs[0].OK() || rs[0].Field != "") { // --target applies to both
				t.Errorf("good message: %+v", rs[0])
			}
			r := rs[1]
			if r.Field != tt.field || r.Code != tt.code || r.Error != tt.err {
				t.Errorf("receipt field %q code %q error %q\nwant field %q code %q error %q", r.Field, r.Code, r.Error, tt.field, tt.code, tt.err)
			}
			if want := "error: message 2: " + tt.err + " (" + tt.code + ")"; r.Line() != want {
				t.Errorf("line %q, want %q", r.Line(), want)
			}
		})
	}

	t.Run("duplicate id", func(t *testing.T) {
		e.send(t, `{"id":"job7","toNode":"ship1","method":"REQPing"}`)
		r := e.send(t, `{"id":"job7","toNode":"ship1","method":"REQCliCommand","methodArgs":["true"]}`)[0]
		want := `id job7 is already used by another message (REQPing from operator): message id in use`
		if r.Field != "id" || r.Code != sender.CodeDuplicateID || r.Error != want {
			t.Errorf("receipt %+v, want field id, code duplicate_id, error %q", r, want)
		}
	})

	t.Run("json", func(t *testing.T) {
		rs := e.send(t, `[{"toNode":"ship1","method":"REQPing","methodTimeout":-3},{"toNode":"ship1","method":"REQPing"}]`)
		var got []map[string]any
		data, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if got[0]["field"] != "methodTimeout" || got[0]["code"] != "field_value" {
			t.Errorf("refused receipt %s", data)
		}
		if _, ok := got[1]["field"]; ok {
			t.Errorf("a sent message's receipt has a field: %s", data)
		}
	})
}

// A refresh of the broker clock's offset does not hold up other callers:
// while one caller waits for the broker, the others (and OnBrokerClock)
// go on with the offset measured before. (Replies take their sentAt from this clock too, so a
// slow broker would otherwise stall every send and reply of the node.)
func TestClockRefreshDoesNotBlock(t *testing.T) {
	var mu sync.Mutex
	local := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return local }
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	s := sender.New(sender.Options{Now: now, BrokerNow: func(ctx context.Context) (time.Time, error) {
		if calls.Add(1) > 1 {
			close(entered)
			<-release
		}
		return now().Add(5 * time.Minute), nil
	}})
	if got := s.Now(t.Context()).Sub(now()); got != 5*time.Minute {
		t.Fatalf("first offset %s, want 5m", got)
	}
	mu.Lock()
	local = local.Add(sender.ClockRefresh + time.Second)
	mu.Unlock()
	refreshed := make(chan time.Time)
	go func() { refreshed <- s.Now(context.Background()) }()
	<-entered
	other := make(chan time.Duration)
	go func() { other <- s.Now(t.Context()).Sub(now()) }()
	select {
	case got := <-other:
		if got != 5*time.Minute {
			t.Errorf("during the refresh: offset %s, want the one measured before (5m)", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("a caller waited for another's refresh of the clock")
	}
	if got := s.OnBrokerClock(now()).Sub(now()); got != 5*time.Minute {
		t.Errorf("OnBrokerClock during the refresh: offset %s, want 5m", got)
	}
	close(release)
	<-refreshed
	if n := calls.Load(); n != 2 {
		t.Errorf("the broker's clock was read %d times, want 2", n)
	}
}
