package cli

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/status"
)

// heldReceipt is what SendWith with Hold returns for one message.
func heldReceipt(id string, nodes ...string) client.Receipt {
	m := &message.Message{ID: id, Method: "REQCliCommand", ToNodes: nodes, FromNode: "central"}
	return client.Receipt{ID: id, Method: "REQCliCommand", Nodes: nodes, Message: m}
}

func sendFile(t *testing.T) string {
	t.Helper()
	msgs := filepath.Join(t.TempDir(), "msg.json")
	writeFile(t, msgs, `{"toNodes":["*"],"method":"REQCliCommand","methodArgs":["uptime"]}`)
	return msgs
}

// TestSendMaxConcurrency: never more than N deliveries under way, the
// next sent as one ends, every one under the message's ID; the progress
// counts deliveries per status.
func TestSendMaxConcurrency(t *testing.T) {
	clearEnv(t)
	nodes := []string{"s1", "s2", "s3", "s4", "s5"}
	f := &fakeFleet{now: testNow, simulate: true, receipts: []client.Receipt{heldReceipt("m1", nodes...)}}
	e := newTestEnv(t)
	e.useFleet(f)
	if err := e.run(t, "send", "-f", sendFile(t), "--max-concurrency", "2", "--config-folder", t.TempDir()); err != nil {
		t.Fatalf("%v\n%s", err, e.stderr)
	}
	if !f.sendOpts.Hold || !slices.Equal(f.published, nodes) || f.maxInflight != 2 {
		t.Fatalf("hold %v, published %v, at most %d at once", f.sendOpts.Hold, f.published, f.maxInflight)
	}
	if len(f.waitIDs) != 1 || f.waitIDs[0] != "m1" {
		t.Fatalf("waited for %v", f.waitIDs)
	}
	if !strings.Contains(e.stderr.String(), "0/5 deliveries done (s1: pending, never seen); 1 pending, 3 not sent yet\n") ||
		!strings.Contains(e.stderr.String(), "5/5 deliveries done (s5: succeeded); 5 succeeded\n") {
		t.Fatalf("progress:\n%s", e.stderr)
	}
	for _, n := range nodes {
		if !strings.Contains(e.stdout.String(), n+"    succeeded") {
			t.Fatalf("results lack %s:\n%s", n, e.stdout)
		}
	}

	// A percentage: 40% of 5 is 2.
	f = &fakeFleet{now: testNow, simulate: true, receipts: []client.Receipt{heldReceipt("m1", nodes...)}}
	e.useFleet(f)
	if err := e.run(t, "send", "-f", sendFile(t), "--max-concurrency", "40%", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if f.maxInflight != 2 || len(f.published) != 5 {
		t.Fatalf("40%%: %d at once, published %v", f.maxInflight, f.published)
	}
}

// TestSendMaxErrors: once N deliveries failed nothing more is sent; each
// node not sent to gets a line and a cancelled not_sent record.
func TestSendMaxErrors(t *testing.T) {
	clearEnv(t)
	nodes := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	f := &fakeFleet{now: testNow, simulate: true, receipts: []client.Receipt{heldReceipt("m1", nodes...)},
		outcomes: map[string]status.Status{"s1": status.Failed, "s2": status.Failed}}
	e := newTestEnv(t)
	e.useFleet(f)
	err := e.run(t, "send", "-f", sendFile(t), "--max-concurrency", "2", "--max-errors", "2", "-o", "json", "--config-folder", t.TempDir())
	wantCode(t, err, ExitFailed)
	// s1 and s2 fail; s3 and s4 were sent as they ended; then it stops.
	if !slices.Equal(f.published, []string{"s1", "s2", "s3"}) || !slices.Equal(f.withheld, []string{"s4", "s5", "s6"}) {
		t.Fatalf("published %v, withheld %v", f.published, f.withheld)
	}
	for _, n := range []string{"s4", "s5", "s6"} {
		if w := "m1 " + n + ": not sent: --max-errors 2 reached (2 deliveries did not succeed)\n"; !strings.Contains(e.stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, e.stderr)
		}
	}
	var res sendResult
	if err := json.Unmarshal(e.stdout.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, e.stdout)
	}
	got := map[string]status.Status{}
	for _, r := range res.Records {
		got[r.Node] = r.Status
	}
	want := map[string]status.Status{"s1": status.Failed, "s2": status.Failed, "s3": status.Succeeded,
		"s4": status.Cancelled, "s5": status.Cancelled, "s6": status.Cancelled}
	for n, st := range want {
		if got[n] != st {
			t.Errorf("%s: %s, want %s", n, got[n], st)
		}
	}
}

// TestSendDryRun: the resolved nodes are printed, nothing is sent.
func TestSendDryRun(t *testing.T) {
	clearEnv(t)
	f := &fakeFleet{now: testNow, receipts: []client.Receipt{heldReceipt("m1", "db1", "db2"),
		{Index: 1, Error: "target role=cache matches no node of the registry (3 nodes): no node matches: missing toNode", Code: "missing_target"}}}
	e := newTestEnv(t)
	e.useFleet(f)
	err := e.run(t, "send", "-f", sendFile(t), "--dry-run", "--target", "role=db", "--target", "site=north,role=web", "--config-folder", t.TempDir())
	wantCode(t, err, ExitFailed)
	if !f.sendOpts.Hold || !slices.Equal(f.sendOpts.Targets, []string{"role=db", "site=north,role=web"}) || f.sendOpts.Expiry != defaultNodeExpiry {
		t.Fatalf("send options %+v", f.sendOpts)
	}
	if len(f.published) != 0 || f.waitIDs != nil {
		t.Fatal("a dry run sent or waited")
	}
	if e.stdout.String() != "message 1: REQCliCommand to 2 nodes: db1,db2\n" {
		t.Fatalf("stdout %q", e.stdout)
	}
	if !strings.Contains(e.stderr.String(), "message 2: target role=cache matches no node") || !strings.Contains(e.stderr.String(), "(missing_target)") ||
		!strings.Contains(e.stderr.String(), "dry run: nothing was sent") {
		t.Fatalf("stderr %q", e.stderr)
	}

	f = &fakeFleet{now: testNow, receipts: []client.Receipt{heldReceipt("m1", "db1", "db2")}}
	e.useFleet(f)
	if err := e.run(t, "send", "-f", sendFile(t), "--dry-run", "-o", "json", "--node-expiry", "0", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	var res sendResult
	if err := json.Unmarshal(e.stdout.Bytes(), &res); err != nil || !res.DryRun || !slices.Equal(res.Receipts[0].Nodes, []string{"db1", "db2"}) {
		t.Fatalf("json %v %+v\n%s", err, res, e.stdout)
	}
	if f.sendOpts.Expiry != 0 {
		t.Fatalf("--node-expiry 0 gave %s", f.sendOpts.Expiry)
	}
}

// TestSendTargetFlags: bad selectors and limits are usage errors; a plain
// send passes --target on and does not hold the messages.
func TestSendTargetFlags(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"--target", "role=d b"},
		{"--target", "ship1"},
		{"--max-errors", "2"},
		{"--max-concurrency", "0"},
		{"--max-concurrency", "150%"},
		{"--max-concurrency", "x"},
	} {
		e := newTestEnv(t)
		e.useFleet(&fakeFleet{})
		err := e.run(t, append([]string{"send", "-f", sendFile(t), "--config-folder", t.TempDir()}, args...)...)
		wantCode(t, err, ExitUsage)
	}
	f := &fakeFleet{now: testNow, receipts: []client.Receipt{ok("m1", "db1")}}
	e := newTestEnv(t)
	e.useFleet(f)
	if err := e.run(t, "send", "-f", sendFile(t), "--target", "*", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if f.sendOpts.Hold || !slices.Equal(f.sendOpts.Targets, []string{"*"}) {
		t.Fatalf("send options %+v", f.sendOpts)
	}
	if strings.Contains(e.stderr.String(), "never been seen") {
		t.Fatalf("an expression warned about as a node:\n%s", e.stderr)
	}
}
