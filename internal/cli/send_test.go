package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/socket"
	"github.com/stewardfleet/steward/internal/status"
)

// fakeFleet stands in for a client.Client.
type fakeFleet struct {
	input    []byte
	receipts []client.Receipt
	sendErr  error
	records  []*status.Record
	// updates are what Wait reports as progress (records when nil).
	updates []*status.Record
	waitErr error
	// block makes Wait return only when its context ends, with records.
	block   bool
	waitIDs []string
	nodes   []*registry.Node
	removed []string
	now     time.Time // the broker's clock
	closed  bool

	// sendOpts is what SendWith was given.
	sendOpts client.SendOptions
	// simulate makes Publish and WaitWith play a fleet: each delivery
	// published is reported pending, then ends (in the order published)
	// with its node's outcome (succeeded when none is given).
	simulate    bool
	outcomes    map[string]status.Status
	published   []string
	withheld    []string
	events      []*status.Record
	inflight    int
	maxInflight int
}

func (f *fakeFleet) SendWith(ctx context.Context, input []byte, o client.SendOptions) ([]client.Receipt, error) {
	f.sendOpts = o
	return f.Send(ctx, input)
}

func (f *fakeFleet) Publish(_ context.Context, m *message.Message, nodes []string) error {
	for _, n := range nodes {
		f.published = append(f.published, n)
		f.events = append(f.events, rec(m.ID, n, status.Pending, ""))
		f.inflight++
		f.maxInflight = max(f.maxInflight, f.inflight)
	}
	return nil
}

func (f *fakeFleet) Withhold(_ context.Context, m *message.Message, nodes []string, reason string) error {
	f.withheld = append(f.withheld, nodes...)
	for _, n := range nodes {
		r := rec(m.ID, n, status.Cancelled, "")
		r.Error, r.ErrorCode, r.ExitCode = reason, sender.CodeNotSent, nil
		f.events = append(f.events, r)
	}
	return nil
}

func (f *fakeFleet) WaitWith(ctx context.Context, ids []string, o client.WaitOptions) ([]*status.Record, error) {
	if !f.simulate {
		return f.Wait(ctx, ids, o.Progress)
	}
	f.waitIDs = ids
	latest := map[string]*status.Record{}
	var order []string
	for len(f.events) > 0 {
		r := f.events[0]
		f.events = f.events[1:]
		if r.Status == status.Pending {
			end, ok := f.outcomes[r.Node]
			if !ok {
				end = status.Succeeded
			}
			f.events = append(f.events, rec(r.ID, r.Node, end, "out "+r.Node))
		} else if r.Status != status.Cancelled {
			f.inflight--
		}
		if _, ok := latest[r.Key()]; !ok {
			order = append(order, r.Key())
		}
		latest[r.Key()] = r
		o.Progress(r)
		if len(f.events) == 0 && (o.More == nil || !o.More()) {
			break
		}
	}
	if o.More != nil && o.More() {
		return nil, errors.New("fake: the rollout waits for more, but nothing is under way")
	}
	var out []*status.Record
	for _, k := range order {
		out = append(out, latest[k])
	}
	return out, nil
}

func (f *fakeFleet) Send(_ context.Context, input []byte) ([]client.Receipt, error) {
	f.input = input
	return f.receipts, f.sendErr
}

func (f *fakeFleet) Wait(ctx context.Context, ids []string, progress func(*status.Record)) ([]*status.Record, error) {
	f.waitIDs = ids
	updates := f.updates
	if updates == nil {
		updates = f.records
	}
	for _, r := range updates {
		progress(r)
	}
	if f.block {
		<-ctx.Done()
		return f.records, ctx.Err()
	}
	return f.records, f.waitErr
}

func (f *fakeFleet) Status(_ context.Context, id string) ([]*status.Record, error) {
	var out []*status.Record
	for _, r := range f.records {
		if r.ID == id {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", client.ErrNotFound, id)
	}
	return out, nil
}

func (f *fakeFleet) Nodes(context.Context) ([]*registry.Node, error) { return f.nodes, nil }

// RemoveNode removes n from the fake registry, as registry.Delete does.
func (f *fakeFleet) RemoveNode(_ context.Context, n *registry.Node) error {
	for i, x := range f.nodes {
		if x.Name == n.Name {
			if !x.LastSeen.Equal(n.LastSeen) {
				return registry.ErrChanged
			}
			f.nodes = append(f.nodes[:i:i], f.nodes[i+1:]...)
			f.removed = append(f.removed, n.Name)
			return nil
		}
	}
	return jetstream.ErrKeyNotFound
}

// Now is the broker's clock; the fake broker's runs at the test's now.
func (f *fakeFleet) Now(context.Context) (time.Time, error) { return f.now, nil }

func (f *fakeFleet) Close() { f.closed = true }

func (e *testEnv) useFleet(f *fakeFleet) {
	e.app.connect = func(context.Context, config.Config) (fleet, error) { return f, nil }
}

func ok(id, node string) client.Receipt {
	return client.Receipt{ID: id, Method: "REQCliCommand", Nodes: []string{node}}
}

func rec(id, node string, st status.Status, out string) *status.Record {
	code := 0
	if st == status.Failed {
		code = 1
	}
	r := &status.Record{ID: id, Node: node, Method: "REQCliCommand", Status: st, ExitCode: &code, Output: out, Attempt: 1, UpdatedAt: testNow.Add(-5 * time.Second)}
	if st == status.Failed {
		r.Error = "exit status 1"
	}
	return r
}

func TestSend(t *testing.T) {
	tests := []struct {
		name       string
		fleet      *fakeFleet
		connectErr error
		args       []string
		code       int
		stdout     []string
		stderr     []string
	}{
		{
			name:   "all sent",
			fleet:  &fakeFleet{receipts: []client.Receipt{ok("m1", "ship1"), {Index: 1, ID: "m2", Method: "REQPing", Nodes: []string{"ship1", "ship2"}}}},
			code:   ExitOK,
			stdout: []string{"m1 REQCliCommand ship1\n", "m2 REQPing ship1,ship2\n"},
		},
		{
			name: "one rejected",
			fleet: &fakeFleet{receipts: []client.Receipt{ok("m1", "ship1"),
				{Index: 1, Error: `unknown method "REQNope"`, Code: "unknown_method"}}},
			code:   ExitFailed,
			stdout: []string{"m1 REQCliCommand ship1\n"},
			stderr: []string{"error: message 2: unknown method \"REQNope\" (unknown_method)\n", "1 of 2 messages rejected"},
		},
		{
			name:   "all rejected",
			fleet:  &fakeFleet{receipts: []client.Receipt{{Index: 0, Error: "message 1: missing toNode"}}},
			code:   ExitUsage,
			stderr: []string{"error: message 1: missing toNode\n", "no message was sent"},
		},
		{
			name:   "malformed input",
			fleet:  &fakeFleet{sendErr: fmt.Errorf("decode: %w", message.ErrMalformed)},
			code:   ExitUsage,
			stderr: []string{"malformed"},
		},
		{
			name:  "input too large",
			fleet: &fakeFleet{sendErr: errors.New("input is 70000000 bytes")},
			code:  ExitUsage,
		},
		{
			name: "broker stores nothing",
			fleet: &fakeFleet{receipts: []client.Receipt{{Index: 0, Method: "REQPing", Nodes: []string{"ship1"},
				Error: "publish: nats: timeout", Code: sender.CodePublishFailed}}},
			code:   ExitUnreachable,
			stderr: []string{"the broker stored no message"},
		},
		{
			name:  "broker lost while sending",
			fleet: &fakeFleet{sendErr: fmt.Errorf("publish: %w", client.ErrUnreachable)},
			code:  ExitUnreachable,
		},
		{
			name:       "no broker",
			connectErr: errors.New("connection refused"),
			code:       ExitUnreachable,
			stderr:     []string{"cannot reach the broker at nats://127.0.0.1:4222: connection refused"},
		},
		{
			name:       "no broker, from the client",
			connectErr: fmt.Errorf("%w at nats://x:1: refused", client.ErrUnreachable),
			code:       ExitUnreachable,
			stderr:     []string{"steward: cannot reach the broker at nats://x:1: refused\n"},
		},
		{
			name:       "client finds the config invalid",
			connectErr: fmt.Errorf("%w: node-name", config.ErrInvalid),
			code:       ExitUsage,
		},
		{
			name: "wait, all succeeded",
			fleet: &fakeFleet{receipts: []client.Receipt{ok("m1", "ship1")},
				updates: []*status.Record{rec("m1", "ship1", status.Running, ""), rec("m1", "ship1", status.Succeeded, "up 3 days\nload 0.1")},
				records: []*status.Record{rec("m1", "ship1", status.Succeeded, "up 3 days\nload 0.1")}},
			args:   []string{"--wait"},
			code:   ExitOK,
			stdout: []string{"NODE   STATUS     EXIT  OUTPUT\n", "ship1  succeeded  0     up 3 days…\n"},
			stderr: []string{"0/1 deliveries done (ship1: running)\n", "1/1 deliveries done (ship1: succeeded)\n"},
		},
		{
			name: "wait, one failed, several messages",
			fleet: &fakeFleet{receipts: []client.Receipt{ok("m1", "ship1"), ok("m2", "ship2")},
				records: []*status.Record{rec("m1", "ship1", status.Succeeded, "ok"), rec("m2", "ship2", status.Failed, "")}},
			args:   []string{"--wait"},
			code:   ExitFailed,
			stdout: []string{"MESSAGE  NODE   STATUS     EXIT  OUTPUT\n", "m2       ship2  failed     1     exit status 1\n"},
			stderr: []string{"(m2 ship2: failed)", "1 of 2 deliveries did not succeed"},
		},
		{
			name: "timeout",
			fleet: &fakeFleet{receipts: []client.Receipt{ok("m1", "ship1")}, block: true,
				records: []*status.Record{rec("m1", "ship1", status.Running, "")}},
			args:   []string{"--timeout", "50ms"},
			code:   ExitTimeout,
			stdout: []string{"ship1  running"},
			stderr: []string{"timeout 50ms passed"},
		},
		{
			name:   "wait loses the broker",
			fleet:  &fakeFleet{receipts: []client.Receipt{ok("m1", "ship1")}, waitErr: errors.New("connection closed")},
			args:   []string{"--wait"},
			code:   ExitUnreachable,
			stderr: []string{"wait: connection closed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			msgs := filepath.Join(t.TempDir(), "msg.json")
			writeFile(t, msgs, `[{"toNode":"ship1","method":"REQCliCommand","methodArgs":["uptime"]}]`)
			e := newTestEnv(t)
			if tt.fleet != nil {
				e.useFleet(tt.fleet)
			}
			if tt.connectErr != nil {
				e.app.connect = func(context.Context, config.Config) (fleet, error) { return nil, tt.connectErr }
			}
			err := e.run(t, append([]string{"send", "-f", msgs, "--config-folder", t.TempDir()}, tt.args...)...)
			wantCode(t, err, tt.code)
			Report(e.stderr, err)
			for _, s := range tt.stdout {
				if !strings.Contains(e.stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, e.stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(e.stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, e.stderr)
				}
			}
			if tt.fleet != nil {
				if !tt.fleet.closed {
					t.Error("client not closed")
				}
				if string(tt.fleet.input) != readFile(t, msgs) && tt.code != ExitUnreachable {
					t.Errorf("sent %q", tt.fleet.input)
				}
			}
		})
	}
}

func TestSendStdinJSON(t *testing.T) {
	clearEnv(t)
	f := &fakeFleet{
		receipts: []client.Receipt{ok("m1", "ship1"), {Index: 1, Error: "missing method", Code: "missing_method"}},
		records:  []*status.Record{rec("m1", "ship1", status.Succeeded, "hi")},
	}
	e := newTestEnv(t)
	e.useFleet(f)
	e.app.stdin = strings.NewReader(`[{"toNode":"ship1","method":"REQPing"},{"toNode":"ship1"}]`)
	err := e.run(t, "send", "-f", "-", "--wait", "-o", "json", "--config-folder", t.TempDir())
	wantCode(t, err, ExitFailed)
	if !strings.HasPrefix(string(f.input), `[{"toNode"`) {
		t.Fatalf("stdin not sent: %q", f.input)
	}
	var got sendResult
	if err := json.Unmarshal(e.stdout.Bytes(), &got); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, e.stdout)
	}
	if len(got.Receipts) != 2 || len(got.Records) != 1 || got.Records[0].Output != "hi" {
		t.Fatalf("json %+v", got)
	}
	if len(f.waitIDs) != 1 || f.waitIDs[0] != "m1" {
		t.Fatalf("waited for %v, want only the sent message", f.waitIDs)
	}
}

func TestStatus(t *testing.T) {
	clearEnv(t)
	reply := rec("m1", "ship1", status.Succeeded, "")
	reply.Reply, reply.Method, reply.ExitCode, reply.Attempt = true, "REQToFileAppend", nil, 0
	f := &fakeFleet{records: []*status.Record{rec("m1", "ship2", status.Failed, ""), reply, rec("m1", "ship1", status.Succeeded, "line one\nline two")}}
	e := newTestEnv(t)
	e.useFleet(f)
	if err := e.run(t, "status", "m1", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	want := "NODE                       STATUS     ATTEMPT  EXIT  UPDATED  ERROR/OUTPUT\n" +
		"ship1                      succeeded  1        0     5s ago   line one…\n" +
		"  └ reply REQToFileAppend  succeeded  -        -     5s ago   \n" +
		"ship2                      failed     1        1     5s ago   exit status 1\n"
	if e.stdout.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", e.stdout, want)
	}

	if err := e.run(t, "status", "m1", "-o", "json", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	var recs []status.Record
	if err := json.Unmarshal(e.stdout.Bytes(), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("json: %v\n%s", err, e.stdout)
	}

	err := e.run(t, "status", "nosuch", "--config-folder", t.TempDir())
	wantCode(t, err, ExitFailed)
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("error %v", err)
	}
}

func TestNodes(t *testing.T) {
	clearEnv(t)
	// The broker's clock is an hour ahead of this machine's: online is
	// judged on the broker's.
	broker := testNow.Add(time.Hour)
	f := &fakeFleet{now: broker, nodes: []*registry.Node{
		{Name: "central", Version: "v1.0.0", Methods: []string{"REQPing", "REQHello"}, LastSeen: broker.Add(-3 * time.Second), HelloInterval: 30 * time.Second,
			Labels: map[string]string{"site": "north", "role": "hub"}},
		{Name: "ship1", LastSeen: broker.Add(-3 * time.Hour), HelloInterval: 30 * time.Second},
		{Name: "ship2", LastSeen: broker.Add(-5 * time.Second), StoppedAt: broker.Add(-5 * time.Second), HelloInterval: 30 * time.Second},
		{Name: "ship3", LastSeen: broker.Add(-5 * time.Second), HelloInterval: 30 * time.Second, Instance: "B", Conflict: "instances A and B"},
	}}
	e := newTestEnv(t)
	e.useFleet(f)
	if err := e.run(t, "nodes", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	want := "NODE     STATE                                 LAST SEEN  VERSION  METHODS  LABELS\n" +
		"central  online                                3s ago     v1.0.0   2        role=hub,site=north\n" +
		"ship1    offline                               3h ago     -        0        -\n" +
		"ship2    stopped                               5s ago     -        0        -\n" +
		"ship3    online, name conflict, queue missing  5s ago     -        0        -\n"
	if e.stdout.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", e.stdout, want)
	}
	if err := e.run(t, "nodes", "-o", "json", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	var nodes []registry.Node
	if err := json.Unmarshal(e.stdout.Bytes(), &nodes); err != nil || len(nodes) != 4 || nodes[0].Labels["role"] != "hub" {
		t.Fatalf("json: %v\n%s", err, e.stdout)
	}
}

// failedWithStderr is a delivery whose command was not found: the node
// reports exit status 127 and the shell's complaint on standard error.
func failedWithStderr(id, node, stderr string) *status.Record {
	r := rec(id, node, status.Failed, "")
	code := 127
	r.ExitCode, r.Error, r.Stderr = &code, "exit status 127", stderr
	return r
}

// TestFailedDeliveryShowsStderr: the tables of send --wait and status say
// why a delivery failed (the first non-empty line of its standard error,
// after the exit status), made safe for the terminal.
func TestFailedDeliveryShowsStderr(t *testing.T) {
	clearEnv(t)
	records := []*status.Record{
		failedWithStderr("m1", "ship1", "\n  bash: line 1: tree: command not found\nsecond line\n"),
		failedWithStderr("m1", "ship2", "\x1b]0;owned\x07evil"),
		rec("m1", "ship3", status.Succeeded, "fine"),
	}
	want := []string{
		"ship1  failed     127   exit status 127: bash: line 1: tree: command not found…\n",
		`ship2  failed     127   exit status 127: \x1b]0;owned\x07evil` + "\n",
		"ship3  succeeded  0     fine\n",
	}
	msgs := filepath.Join(t.TempDir(), "msg.json")
	writeFile(t, msgs, `{"toNodes":["ship1","ship2","ship3"],"method":"REQCliCommand","methodArgs":["tree"]}`)
	e := newTestEnv(t)
	f := &fakeFleet{receipts: []client.Receipt{{ID: "m1", Method: "REQCliCommand", Nodes: []string{"ship1", "ship2", "ship3"}}}, records: records,
		nodes: []*registry.Node{{Name: "ship1"}, {Name: "ship2"}, {Name: "ship3"}}}
	e.useFleet(f)
	err := e.run(t, "send", "-f", msgs, "--wait", "--config-folder", t.TempDir())
	wantCode(t, err, ExitFailed)
	for _, w := range want {
		if !strings.Contains(e.stdout.String(), w) {
			t.Errorf("send --wait lacks %q:\n%s", w, e.stdout)
		}
	}
	if err := e.run(t, "status", "m1", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"ship1  failed     1        127   5s ago   exit status 127: bash: line 1: tree: command not found…\n",
		"ship3  succeeded  1        0     5s ago   fine\n",
	} {
		if !strings.Contains(e.stdout.String(), w) {
			t.Errorf("status lacks %q:\n%s", w, e.stdout)
		}
	}
	if strings.Contains(e.stdout.String(), "\x1b") {
		t.Error("a raw escape reached the terminal")
	}
}

func TestSummary(t *testing.T) {
	code := func(n int) *int { return &n }
	tests := []struct {
		name string
		r    status.Record
		want string
	}{
		{"succeeded shows output", status.Record{Status: status.Succeeded, Output: "out", Stderr: "warn"}, "out"},
		{"succeeded without output shows stderr", status.Record{Status: status.Succeeded, Stderr: "warn"}, "warn"},
		{"failed, error and stderr", status.Record{Status: status.Failed, Error: "exit status 2", ExitCode: code(2), Stderr: "\n\nls: x: No such file\n"}, "exit status 2: ls: x: No such file"},
		{"failed, no error", status.Record{Status: status.Failed, ExitCode: code(3), Stderr: "boom"}, "exit status 3: boom"},
		{"failed, no stderr", status.Record{Status: status.Failed, Error: "exit status 1", Output: "partial"}, "exit status 1"},
		{"timed out, only stderr", status.Record{Status: status.ExecutionTimedOut, Stderr: "slow"}, "slow"},
		{"undeliverable", status.Record{Status: status.Undeliverable, Error: "no such node"}, "no such node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := oneLine(summary(&tt.r), cellWidth); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSendUnknownTarget: a target the registry has never seen (shp1 for
// ship1) is warned about and still sent; --strict refuses and sends
// nothing.
func TestSendUnknownTarget(t *testing.T) {
	clearEnv(t)
	fleetNodes := func() []*registry.Node {
		return []*registry.Node{
			{Name: "ship1", LastSeen: testNow.Add(-time.Second), HelloInterval: 30 * time.Second},
			{Name: "ship2", LastSeen: testNow.Add(-time.Second), HelloInterval: 30 * time.Second},
		}
	}
	msgs := filepath.Join(t.TempDir(), "msg.json")
	writeFile(t, msgs, `[{"toNodes":["shp1","ship2"],"method":"REQPing"},{"toNode":"nowhere","method":"REQPing"}]`)

	e := newTestEnv(t)
	f := &fakeFleet{now: testNow, nodes: fleetNodes(),
		receipts: []client.Receipt{{ID: "m1", Method: "REQPing", Nodes: []string{"shp1", "ship2"}}, {Index: 1, ID: "m2", Method: "REQPing", Nodes: []string{"nowhere"}}}}
	e.useFleet(f)
	if err := e.run(t, "send", "-f", msgs, "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`warning: node "shp1" has never been seen (it is not in the node registry); did you mean "ship1" or "ship2"?; its messages wait for it until their deadline (--strict refuses)` + "\n",
		`warning: node "nowhere" has never been seen (it is not in the node registry); its messages wait`,
	} {
		if !strings.Contains(e.stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, e.stderr)
		}
	}
	if strings.Contains(e.stderr.String(), `"ship2" has never`) {
		t.Errorf("a known node warned about:\n%s", e.stderr)
	}
	if f.input == nil {
		t.Fatal("not sent without --strict")
	}

	e = newTestEnv(t)
	f = &fakeFleet{now: testNow, nodes: fleetNodes(), receipts: []client.Receipt{ok("m1", "shp1")}}
	e.useFleet(f)
	err := e.run(t, "send", "-f", msgs, "--strict", "--config-folder", t.TempDir())
	wantCode(t, err, ExitUsage)
	if f.input != nil {
		t.Fatal("sent with --strict")
	}
	if !strings.Contains(err.Error(), `--strict: node "shp1" has never been seen`) || !strings.Contains(err.Error(), "nothing was sent") {
		t.Fatalf("error %v", err)
	}

	// Every target known: --strict sends, and nothing is warned.
	writeFile(t, msgs, `{"toNode":"ship1","method":"REQPing"}`)
	e = newTestEnv(t)
	f = &fakeFleet{now: testNow, nodes: fleetNodes(), receipts: []client.Receipt{ok("m1", "ship1")}}
	e.useFleet(f)
	if err := e.run(t, "send", "-f", msgs, "--strict", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if f.input == nil || e.stderr.Len() != 0 {
		t.Fatalf("sent %q, stderr %q", f.input, e.stderr)
	}
}

// TestSendWaitSaysWhoIsOffline: while --wait waits for a node that is
// offline, its progress says since when.
func TestSendWaitSaysWhoIsOffline(t *testing.T) {
	clearEnv(t)
	msgs := filepath.Join(t.TempDir(), "msg.json")
	writeFile(t, msgs, `{"toNodes":["ship1","ship2","ship3"],"method":"REQCliCommand","methodArgs":["uptime"]}`)
	e := newTestEnv(t)
	f := &fakeFleet{now: testNow,
		nodes: []*registry.Node{
			{Name: "ship1", LastSeen: testNow.Add(-time.Second), HelloInterval: 30 * time.Second},
			{Name: "ship2", LastSeen: testNow.Add(-3 * time.Hour), HelloInterval: 30 * time.Second},
			{Name: "ship3", LastSeen: testNow.Add(-2 * time.Minute), StoppedAt: testNow.Add(-2 * time.Minute), HelloInterval: 30 * time.Second},
		},
		receipts: []client.Receipt{{ID: "m1", Method: "REQCliCommand", Nodes: []string{"ship1", "ship2", "ship3"}}},
		updates: []*status.Record{
			rec("m1", "ship1", status.Pending, ""), rec("m1", "ship2", status.Pending, ""), rec("m1", "ship3", status.Pending, ""),
			rec("m1", "ship1", status.Succeeded, "up"),
		},
		block:   true,
		records: []*status.Record{rec("m1", "ship1", status.Succeeded, "up"), rec("m1", "ship2", status.Pending, ""), rec("m1", "ship3", status.Pending, "")},
	}
	e.useFleet(f)
	err := e.run(t, "send", "-f", msgs, "--timeout", "50ms", "--config-folder", t.TempDir())
	wantCode(t, err, ExitTimeout)
	for _, w := range []string{
		"waiting for nodes that are not online: ship2 offline since 2025-03-01 09:00 UTC (3h ago); ship3 stopped since 2025-03-01 11:58 UTC (2m ago)\n",
		"0/3 deliveries done (ship1: pending)\n",
		"0/3 deliveries done (ship2: pending, offline since 2025-03-01 09:00 UTC (3h ago))\n",
		"0/3 deliveries done (ship3: pending, stopped since 2025-03-01 11:58 UTC (2m ago))\n",
		"1/3 deliveries done (ship1: succeeded)\n",
	} {
		if !strings.Contains(e.stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, e.stderr)
		}
	}
}

func TestProgressTerminalLine(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b, 2, false)
	p.tty = true
	p.absent = map[string]string{"ship2": "offline since 2025-03-01 09:00 UTC (3h ago)"}
	p.update(rec("m1", "ship2", status.Pending, ""))
	p.update(rec("m1", "ship1", status.Succeeded, ""))
	want := "\r0/2 deliveries done; waiting for ship2 offline since 2025-03-01 09:00 UTC (3h ago)\x1b[K"
	if !strings.HasPrefix(b.String(), want) || !strings.HasSuffix(b.String(), "\r1/2 deliveries done; waiting for ship2 offline since 2025-03-01 09:00 UTC (3h ago)\x1b[K") {
		t.Fatalf("terminal line %q", b.String())
	}
}

// TestSendLinesAreTheSocketAnswer: steward send prints each receipt as the
// node's socket answers it, sent or queued on standard output, refused on
// standard error.
func TestSendLinesAreTheSocketAnswer(t *testing.T) {
	refused := client.Receipt{Index: 1, Error: `unknown method "REQNope"`, Code: "unknown_method"}
	tests := []struct {
		name     string
		receipts []client.Receipt
		queue    bool
		code     int
	}{
		{"sent", []client.Receipt{{ID: "m1", Method: "REQPing", Nodes: []string{"ship1", "ship2"}}, refused}, false, ExitFailed},
		{"queued", []client.Receipt{{ID: "m1", Method: "REQPing", Nodes: []string{"ship1", "ship2"}, Queued: true}, refused}, true, ExitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			e := newTestEnv(t)
			if tt.queue {
				e.app.connect = func(context.Context, config.Config) (fleet, error) {
					return nil, fmt.Errorf("%w at nats://x:1: refused", client.ErrUnreachable)
				}
				e.app.queue = func(context.Context, config.Config, []byte) ([]client.Receipt, error) { return tt.receipts, nil }
			} else {
				e.useFleet(&fakeFleet{receipts: tt.receipts, nodes: []*registry.Node{{Name: "ship1"}, {Name: "ship2"}}})
			}
			e.app.stdin = strings.NewReader(`[{"toNodes":["ship1","ship2"],"method":"REQPing"},{"toNode":"ship1","method":"REQNope"}]`)
			err := e.run(t, "send", "-f", "-", "--config-folder", t.TempDir())
			wantCode(t, err, tt.code)
			answer := strings.Split(strings.TrimSuffix(string(socket.Answer(tt.receipts, nil)), "\n"), "\n")
			if got := e.stdout.String(); got != answer[0]+"\n" {
				t.Errorf("stdout %q, want the socket's line %q", got, answer[0])
			}
			if !strings.HasPrefix(e.stderr.String(), answer[1]+"\n") {
				t.Errorf("stderr %q, want the socket's line %q first", e.stderr, answer[1])
			}
		})
	}
}
