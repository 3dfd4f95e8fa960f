package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// testConfig is a client configuration for broker url with its folders in
// the test's temporary folder.
func testConfig(t testing.TB, url string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.NodeName = "operator"
	cfg.BrokerAddress = url
	cfg.DataFolder = filepath.Join(t.TempDir(), "data")
	cfg.SocketFolder = filepath.Join(t.TempDir(), "tmp")
	cfg.ConfigFolder = filepath.Join(t.TempDir(), "etc")
	return cfg
}

// fleet is a broker, a client on it, and a status store the test writes
// with, playing the nodes.
type fleet struct {
	client *client.Client
	status *status.Store
	nodes  *registry.Registry
	procs  jetstream.KeyValue // the process-table bucket
}

func newFleet(t testing.TB) *fleet {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	// The central node sets the broker up; a client only opens it.
	a, err := stream.Apply(natstest.Context(t, 20*time.Second), js, stream.Layout{}, nil)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	c, err := client.Connect(natstest.Context(t, 20*time.Second), testConfig(t, srv.URL()))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(c.Close)
	return &fleet{client: c, status: status.NewStore(js, a.Status), nodes: registry.New(a.Nodes), procs: a.Procs}
}

// send sends input and returns the IDs of the sent messages.
func (f *fleet) send(t testing.TB, input string) []string {
	t.Helper()
	rs, err := f.client.Send(t.Context(), []byte(input))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	var ids []string
	for _, r := range rs {
		if !r.OK() {
			t.Fatalf("message %d not sent: %s", r.Index, r.Error)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// set plays a node: it writes the delivery's status.
func (f *fleet) set(t testing.TB, id, node string, s status.Status) {
	t.Helper()
	r := &status.Record{ID: id, Node: node, FromNode: "operator", Method: "REQPing", Status: s, UpdatedAt: time.Now().UTC()}
	if err := f.status.Put(t.Context(), r, time.Hour); err != nil {
		t.Fatalf("put status: %v", err)
	}
}

// progressLog collects what Wait reports.
type progressLog struct {
	mu   sync.Mutex
	seen []string // "<id>.<node> <status>"
}

func (p *progressLog) add(r *status.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, r.Key()+" "+string(r.Status))
}

func (p *progressLog) has(entry string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.seen {
		if s == entry {
			return true
		}
	}
	return false
}

type waitResult struct {
	recs []*status.Record
	err  error
}

// summary renders records as "<node>:<status>" in order.
func summary(recs []*status.Record) string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Node+":"+string(r.Status))
	}
	return strings.Join(out, ",")
}

func TestConnectUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	cases := []struct{ name, url string }{
		{"closed port", "nats://" + closedAddr},
		{"bare host:port", closedAddr},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.Connect(natstest.Context(t, 10*time.Second), testConfig(t, tc.url))
			if err == nil {
				c.Close()
				t.Fatal("Connect to a closed port succeeded")
			}
			if !errors.Is(err, client.ErrUnreachable) {
				t.Errorf("want ErrUnreachable, got %v", err)
			}
			if !strings.Contains(err.Error(), closedAddr) {
				t.Errorf("error %q does not name the address", err)
			}
		})
	}
	t.Run("invalid configuration", func(t *testing.T) {
		cfg := testConfig(t, "nats://"+closedAddr)
		cfg.NodeName = "not a node name"
		_, err := client.Connect(t.Context(), cfg)
		if !errors.Is(err, config.ErrInvalid) || errors.Is(err, client.ErrUnreachable) {
			t.Errorf("want config.ErrInvalid, got %v", err)
		}
	})
}

// TestConnectNeedsTheLayout: a client never sets the broker up (only the
// central node or steward setup does): before that it says what to do;
// after, any number of clients open it.
func TestConnectNeedsTheLayout(t *testing.T) {
	srv := natstest.Start(t)
	_, err := client.Connect(natstest.Context(t, 20*time.Second), testConfig(t, srv.URL()))
	if !errors.Is(err, client.ErrNoLayout) || !strings.Contains(err.Error(), "steward setup") {
		t.Fatalf("Connect to a bare broker: want ErrNoLayout naming steward setup, got %v", err)
	}
	_, js := natstest.Connect(t, srv)
	if _, err := stream.Open(natstest.Context(t, 20*time.Second), js); !errors.Is(err, stream.ErrNoLayout) {
		t.Fatalf("the client created the layout: %v", err)
	}
	if _, err := stream.Apply(natstest.Context(t, 20*time.Second), js, stream.Layout{}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c, err := client.Connect(natstest.Context(t, 20*time.Second), testConfig(t, srv.URL()))
		if err != nil {
			t.Fatalf("Connect %d: %v", i+1, err)
		}
		c.Close()
	}
}

func TestWaitReturnsWhenAllTerminal(t *testing.T) {
	f := newFleet(t)
	id := f.send(t, `{"toNodes":["ship2","ship1"],"method":"REQPing"}`)[0]

	var progress progressLog
	done := make(chan waitResult, 1)
	go func() {
		recs, err := f.client.Wait(t.Context(), []string{id}, progress.add)
		done <- waitResult{recs, err}
	}()
	natstest.Eventually(t, 10*time.Second, "progress with both pending records", func() bool {
		return progress.has(id+".ship1 pending") && progress.has(id+".ship2 pending")
	})

	steps := []struct {
		node   string
		status status.Status
	}{
		{"ship1", status.Delivered},
		{"ship1", status.Running},
		{"ship1", status.Succeeded},
		{"ship2", status.Running},
	}
	for _, s := range steps {
		f.set(t, id, s.node, s.status)
		natstest.Eventually(t, 10*time.Second, "progress "+s.node+" "+string(s.status), func() bool {
			return progress.has(id + "." + s.node + " " + string(s.status))
		})
		select {
		case r := <-done:
			t.Fatalf("Wait returned with %s still running: %s, %v", "ship2", summary(r.recs), r.err)
		default:
		}
	}

	f.set(t, id, "ship2", status.Failed)
	var r waitResult
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return when every delivery was terminal")
	}
	if r.err != nil {
		t.Fatalf("Wait: %v", r.err)
	}
	if got := summary(r.recs); got != "ship1:succeeded,ship2:failed" {
		t.Errorf("Wait returned %s", got)
	}
}

func TestWaitOrdersByIDsThenNode(t *testing.T) {
	f := newFleet(t)
	ids := f.send(t, `[{"toNodes":["b","a"],"method":"REQPing"},{"toNodes":["c","a"],"method":"REQPing"}]`)
	for _, d := range []struct{ id, node string }{{ids[0], "a"}, {ids[0], "b"}, {ids[1], "a"}, {ids[1], "c"}} {
		f.set(t, d.id, d.node, status.Succeeded)
	}
	// Asked for in the reverse order of sending.
	recs, err := f.client.Wait(natstest.Context(t, 20*time.Second), []string{ids[1], ids[0]}, nil)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Key())
	}
	want := []string{ids[1] + ".a", ids[1] + ".c", ids[0] + ".a", ids[0] + ".b"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order\n got %v\nwant %v", got, want)
	}
}

func TestWaitWithoutIDs(t *testing.T) {
	f := newFleet(t)
	recs, err := f.client.Wait(t.Context(), nil, nil)
	if recs != nil || err != nil {
		t.Errorf("Wait of nothing: %v, %v", recs, err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	f := newFleet(t)
	id := f.send(t, `{"toNodes":["ship1","ship2"],"method":"REQPing"}`)[0]
	f.set(t, id, "ship1", status.Succeeded)

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var progress progressLog
		done := make(chan waitResult, 1)
		go func() {
			recs, err := f.client.Wait(ctx, []string{id}, progress.add)
			done <- waitResult{recs, err}
		}()
		natstest.Eventually(t, 10*time.Second, "the current records", func() bool {
			return progress.has(id+".ship1 succeeded") && progress.has(id+".ship2 pending")
		})
		cancel()
		var r waitResult
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Wait did not return when its context was cancelled")
		}
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("Wait: want context.Canceled, got %v", r.err)
		}
		if got := summary(r.recs); got != "ship1:succeeded,ship2:pending" {
			t.Errorf("records so far: %s", got)
		}
	})

	// The deadline may pass before or after the current records arrive, so
	// the records returned are checked only for what they hold.
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		recs, err := f.client.Wait(ctx, []string{id}, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait: want context.DeadlineExceeded, got %v", err)
		}
		for _, r := range recs {
			if want := map[string]status.Status{"ship1": status.Succeeded, "ship2": status.Pending}[r.Node]; r.Status != want {
				t.Errorf("record %s: %s, want %s", r.Key(), r.Status, want)
			}
		}
	})
}

// TestWaitCancelledFromProgress: a caller that stops waiting from its
// progress callback (say, at the first failure) gets ctx's error. The
// watch beneath Wait also ends with the context, so when Wait next looks,
// both have happened.
func TestWaitCancelledFromProgress(t *testing.T) {
	f := newFleet(t)
	id := f.send(t, `{"toNode":"ship1","method":"REQPing"}`)[0]
	for i := range 10 {
		ctx, cancel := context.WithCancel(t.Context())
		recs, err := f.client.Wait(ctx, []string{id}, func(*status.Record) {
			cancel()
			// A slow callback (a terminal, a log) lets the watch close.
			time.Sleep(100 * time.Millisecond)
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: Wait returned %v, want context.Canceled", i+1, err)
		}
		if got := summary(recs); got != "ship1:pending" {
			t.Errorf("run %d: records %s", i+1, got)
		}
	}
}

func TestStatus(t *testing.T) {
	f := newFleet(t)
	id := f.send(t, `{"toNodes":["ship2","ship1"],"method":"REQPing"}`)[0]
	f.set(t, id, "ship2", status.Succeeded)

	t.Run("known", func(t *testing.T) {
		recs, err := f.client.Status(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := summary(recs); got != "ship1:pending,ship2:succeeded" {
			t.Errorf("Status = %s", got)
		}
	})
	for _, unknown := range []string{"NoSuchMessage123", id[:len(id)-1], "*", ">", id + ".*", ""} {
		t.Run("unknown "+unknown, func(t *testing.T) {
			recs, err := f.client.Status(t.Context(), unknown)
			if !errors.Is(err, client.ErrNotFound) {
				t.Errorf("want ErrNotFound, got %v (%d records)", err, len(recs))
			}
		})
	}
}

func TestNodes(t *testing.T) {
	f := newFleet(t)
	nodes, err := f.client.Nodes(t.Context())
	if err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes of a new fleet: %v, %v", nodes, err)
	}
	for _, n := range []string{"ship1", "central"} {
		if err := f.nodes.Put(t.Context(), &registry.Node{Name: n, LastSeen: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err = f.client.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "central" || nodes[1].Name != "ship1" {
		t.Errorf("Nodes = %+v", nodes)
	}
}

// TestSendIsAudited: on a machine where a node runs (its state folder
// exists), what the client sends goes to the node's audit log.
func TestSendIsAudited(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if _, err := stream.Apply(natstest.Context(t, 20*time.Second), js, stream.Layout{}, nil); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, srv.URL())
	if err := os.MkdirAll(cfg.StateFolder(), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(natstest.Context(t, 20*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.Send(t.Context(), []byte(`[{"toNode":"ship1","method":"REQPing"},{"toNode":"ship1","method":"REQNope"}]`))
	c.Close()
	if err != nil || len(rs) != 2 {
		t.Fatalf("Send: %v %v", rs, err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.StateFolder(), "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Node != "operator" {
			t.Errorf("audit line by %q", r.Node)
		}
		events = append(events, string(r.Event))
	}
	// In the order they happened: a batch's refusals are known before its
	// messages are stored.
	slices.Sort(events)
	if strings.Join(events, ",") != "refused,sent" {
		t.Errorf("audit events %v, want one sent and one refused", events)
	}
}

// TestWaitWaitsForTheReply: a delivery that sent its output back is done
// only once its reply is handled on the sending node (the reply file
// exists), not when its own status is terminal.
func TestWaitWaitsForTheReply(t *testing.T) {
	f := newFleet(t)
	id := f.send(t, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["true"]}`)[0]
	done := make(chan waitResult, 1)
	go func() {
		recs, err := f.client.Wait(t.Context(), []string{id}, nil)
		done <- waitResult{recs, err}
	}()
	r := &status.Record{ID: id, Node: "ship1", FromNode: "operator", Method: "REQCliCommand", Status: status.Succeeded,
		ReplySent: true, UpdatedAt: time.Now().UTC()}
	if err := f.status.Put(t.Context(), r, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A reply still being retried is not done either.
	reply := &status.Record{ID: id, Node: "ship1", FromNode: "operator", Method: "REQToFileAppend", Status: status.Delivered,
		Reply: true, Error: "read-only file system (try 1)", UpdatedAt: time.Now().UTC()}
	if err := f.status.Put(t.Context(), reply, time.Hour); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		t.Fatalf("Wait returned before the reply was handled: %+v %v", res.recs, res.err)
	case <-time.After(500 * time.Millisecond):
	}
	reply.Status, reply.Error = status.Succeeded, ""
	if err := f.status.Put(t.Context(), reply, time.Hour); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.err != nil || len(res.recs) != 2 || res.recs[0].Reply || !res.recs[1].Reply {
			t.Fatalf("Wait: %+v %v", res.recs, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the reply was handled")
	}
}

// A message with no delivery recorded yet (it waits in a node's outbox) is
// not done: Wait returns only once it was sent and ended too.
func TestWaitWaitsForAMessageNotSentYet(t *testing.T) {
	f := newFleet(t)
	f.set(t, "sent", "ship1", status.Succeeded)
	done := make(chan waitResult, 1)
	go func() {
		recs, err := f.client.Wait(t.Context(), []string{"sent", "queued", "sent"}, nil)
		done <- waitResult{recs, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Wait returned before the queued message had a record: %s, %v", summary(r.recs), r.err)
	case <-time.After(500 * time.Millisecond):
	}
	f.set(t, "queued", "ship2", status.Pending)
	f.set(t, "queued", "ship2", status.Succeeded)
	select {
	case r := <-done:
		if r.err != nil || summary(r.recs) != "ship1:succeeded,ship2:succeeded" {
			t.Errorf("Wait: %s, %v", summary(r.recs), r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return once both messages ended")
	}
}
