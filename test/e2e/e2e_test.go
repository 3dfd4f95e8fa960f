// Package e2e runs the steward binary as separate processes — a central
// node with its embedded broker, and ship nodes connected to it — and
// drives it the way operators do: steward send, steward status, steward
// nodes, and the unix socket. Faults are real: SIGKILL of a node in the
// middle of a command, and of the central node that holds the broker.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/netfault"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

var (
	fakeBinDir string // holds a `tree` for nodes, so the original examples run anywhere
	examples   = filepath.Join("..", "..", "testdata", "examples")
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if examples, err = filepath.Abs(examples); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The original examples run `bash -c "sleep 3 & tree ./"`; tree is not
	// on every machine, so the nodes get a small stand-in.
	if fakeBinDir, err = os.MkdirTemp("", "steward-e2e-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(fakeBinDir)
	if err := os.WriteFile(filepath.Join(fakeBinDir, "tree"), []byte("#!/bin/sh\necho 'tree stand-in:'; ls -R \"${1:-.}\"\n"), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return fleettest.Run(m)
}

// fleet is a set of steward processes in one temporary folder, with what
// the e2e tests ask of them beyond fleettest.
type fleet struct {
	*fleettest.Fleet
	t *testing.T
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: runs several steward processes")
	}
	env := []string{"PATH=" + fakeBinDir + ":" + os.Getenv("PATH")}
	return &fleet{Fleet: fleettest.New(t, fleettest.Options{Env: env}), t: t}
}

type sendResult struct {
	Receipts []sender.Receipt `json:"receipts"`
	Records  []*status.Record `json:"records"`
	Replies  []*status.Record `json:"-"`
}

// sendWait sends a file with `steward send --wait -o json` as central. The
// result's Records are the deliveries; Replies how central handled their
// replies.
func (f *fleet) sendWait(file string) (sendResult, int) {
	f.t.Helper()
	out, errOut, code := f.Steward("central", nil, "send", "--wait", "--timeout", "60s", "-o", "json", "-f", file)
	var res sendResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		f.t.Fatalf("send output is not JSON: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	res.Records, res.Replies = split(res.Records)
	return res, code
}

// split separates delivery records from reply records.
func split(recs []*status.Record) (deliveries, replies []*status.Record) {
	for _, r := range recs {
		if r.Reply {
			replies = append(replies, r)
		} else {
			deliveries = append(deliveries, r)
		}
	}
	return deliveries, replies
}

func (f *fleet) status(id string) []*status.Record {
	f.t.Helper()
	out, errOut, code := f.Steward("central", nil, "status", id, "-o", "json")
	if code != 0 {
		f.t.Fatalf("steward status %s: exit %d: %s", id, code, errOut)
	}
	var recs []*status.Record
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		f.t.Fatalf("status output: %v: %s", err, out)
	}
	deliveries, _ := split(recs)
	return deliveries
}

// socketSend writes input to a node's socket like `nc -U` (without closing
// its writing side) and returns the answer.
func (f *fleet) socketSend(name string, input []byte) string {
	f.t.Helper()
	c, err := net.Dial("unix", filepath.Join(f.Dir(name), "tmp", "steward.sock"))
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(input); err != nil {
		f.t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func read(t *testing.T, path string) string {
	t.Helper()
	var s string
	fleettest.Eventually(t, 20*time.Second, path, func() bool {
		b, err := os.ReadFile(path)
		s = string(b)
		return err == nil && len(b) > 0
	})
	return s
}

func TestFleetRunsTheExamples(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	f.Start("ship2")
	f.WaitOnline("central", "ship1", "ship2")

	// Through steward send: the two-node example.
	res, code := f.sendWait(filepath.Join(examples, "cli-command-two-nodes.json"))
	if code != 0 || len(res.Records) != 2 || len(res.Replies) != 2 {
		t.Fatalf("exit %d, records %+v, replies %+v", code, res.Records, res.Replies)
	}
	for _, r := range res.Records {
		if r.Status != status.Succeeded || !strings.Contains(r.Output, "tree stand-in") {
			t.Errorf("%s: %s %q %s", r.Node, r.Status, r.Output, r.Error)
		}
		// send --wait returns once the reply is written: the file is
		// there now, without waiting for it.
		out, err := os.ReadFile(filepath.Join(f.Dir("central"), "data", "cli-command-executed-result", r.Node, "some.log"))
		if err != nil || !strings.Contains(string(out), "tree stand-in") {
			t.Errorf("reply file of %s when send --wait returned: %q %v", r.Node, out, err)
		}
	}
	for _, r := range res.Replies {
		if r.Status != status.Succeeded || r.FromNode != "central" || r.Method != "REQToFileAppend" {
			t.Errorf("reply record %+v", r)
		}
	}
	// hello.json registers the sender.
	if res, code := f.sendWait(filepath.Join(examples, "hello.json")); code != 0 || res.Records[0].Status != status.Succeeded {
		t.Errorf("hello.json: exit %d %+v", code, res.Records)
	}

	// Through the socket, as `nc -U ./tmp/steward.sock < msg.json`.
	for _, ex := range []struct{ file, node, reply string }{
		{"cli-command.json", "ship1", "cli-command-executed-result/ship1/some.log"},
		{"cli-command-reply-options.json", "ship1", "var/cli/command_result/ship1/some-file-name.result"},
	} {
		input, err := os.ReadFile(filepath.Join(examples, ex.file))
		if err != nil {
			t.Fatal(err)
		}
		answer := f.socketSend("central", input)
		fields := strings.Fields(answer)
		if len(fields) < 2 || fields[1] != "REQCliCommand" {
			t.Fatalf("socket answer to %s: %q", ex.file, answer)
		}
		id := fields[0]
		fleettest.Eventually(t, 30*time.Second, ex.file+" done", func() bool {
			recs := f.status(id)
			return len(recs) == 1 && recs[0].Status.Terminal()
		})
		if recs := f.status(id); recs[0].Status != status.Succeeded || recs[0].Node != ex.node {
			t.Errorf("%s: %+v", ex.file, recs[0])
		}
		if out := read(t, filepath.Join(f.Dir("central"), "data", ex.reply)); !strings.Contains(out, "tree stand-in") {
			t.Errorf("%s reply: %q", ex.file, out)
		}
	}

	// Every reference file is a valid message for this steward (each runs
	// end to end in its own test: http_get_test, stream_test, procs_test).
	files, _ := filepath.Glob(filepath.Join(examples, "*.json"))
	if len(files) != 10 {
		t.Errorf("%d reference files, want the 10 of the original", len(files))
	}
	for _, file := range files {
		if out, errOut, code := f.Steward("central", nil, "send", "--dry-run", "-f", file); code != 0 {
			t.Errorf("%s: exit %d, %s %s", filepath.Base(file), code, out, errOut)
		}
	}
}

func TestNodeDownWhenSentGetsItWhenItStarts(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	msg := []byte(`[{"toNode":"ship2","method":"REQCliCommand","methodArgs":["sh","-c","echo hello from the late node"],
	  "directory":"late","fileName":"late.log"}]`)
	out, errOut, code := f.Steward("central", msg, "send", "-f", "-")
	if code != 0 {
		t.Fatalf("send: exit %d %s", code, errOut)
	}
	id := strings.Fields(out)[0]
	if recs := f.status(id); recs[0].Status != status.Pending {
		t.Fatalf("before ship2 starts: %+v", recs[0])
	}
	f.Start("ship2")
	fleettest.Eventually(t, 30*time.Second, "delivery to ship2", func() bool { return f.status(id)[0].Status.Terminal() })
	if r := f.status(id)[0]; r.Status != status.Succeeded || r.Attempt != 1 {
		t.Fatalf("after ship2 started: %+v", r)
	}
	if got := read(t, filepath.Join(f.Dir("central"), "data", "late", "ship2", "late.log")); got != "hello from the late node\n" {
		t.Errorf("reply: %q", got)
	}
}

// TestSIGKILLMidCommand kills a node with SIGKILL while it runs a command.
// The command's processes die with it. After the node restarts, the message
// runs again, and the delivery ends with exactly one terminal status and
// exactly one reply.
func TestSIGKILLMidCommand(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	msg := []byte(`{"toNode":"ship1","method":"REQCliCommand","retries":3,"methodTimeout":60,
	  "methodArgs":["sh","-c","echo $$ > cmd.pid; echo started >> runs.log; sleep 5; echo done"],
	  "directory":"killed","fileName":"out.log"}`)
	out, errOut, code := f.Steward("central", msg, "send", "-f", "-")
	if code != 0 {
		t.Fatalf("send: exit %d %s", code, errOut)
	}
	id := strings.Fields(out)[0]
	data := filepath.Join(f.Dir("ship1"), "data")
	read(t, filepath.Join(data, "runs.log"))
	pid, err := strconv.Atoi(strings.TrimSpace(read(t, filepath.Join(data, "cmd.pid"))))
	if err != nil {
		t.Fatal(err)
	}
	f.Kill("ship1")
	fleettest.Eventually(t, 10*time.Second, "the command to die with its node", func() bool { return !alive(pid) })

	f.Start("ship1")
	fleettest.Eventually(t, 60*time.Second, "the delivery to end", func() bool { return f.status(id)[0].Status.Terminal() })
	r := f.status(id)[0]
	if r.Status != status.Succeeded || r.Attempt != 2 || r.Output != "done\n" {
		t.Fatalf("after restart: %+v", r)
	}
	if got := read(t, filepath.Join(f.Dir("central"), "data", "killed", "ship1", "out.log")); got != "done\n" {
		t.Errorf("reply file %q, want exactly one done", got)
	}
	if got, _ := os.ReadFile(filepath.Join(data, "runs.log")); string(got) != "started\nstarted\n" {
		t.Errorf("runs.log %q: want the interrupted run and one rerun", got)
	}
	// The status history holds exactly one terminal state.
	terminal := 0
	for _, st := range statusHistory(t, f.BrokerURL(), id+".ship1") {
		if st.Terminal() {
			terminal++
		}
	}
	if terminal != 1 {
		t.Errorf("%d terminal states in the history, want 1", terminal)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func statusHistory(t *testing.T, url, key string) []status.Status {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, stream.StatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := kv.History(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var out []status.Status
	for _, e := range entries {
		var r status.Record
		if json.Unmarshal(e.Value(), &r) == nil {
			out = append(out, r.Status)
		}
	}
	t.Logf("history of %s: %v", key, out)
	return out
}

// TestCentralAndBrokerKilled kills the central node, and with it the
// broker, while a ship is connected. The ship keeps reconnecting; when
// central comes back, work sent before and after the outage completes.
func TestCentralAndBrokerKilled(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	f.WaitOnline("ship1")
	// A message for ship2 waits in the broker across the outage.
	out, _, code := f.Steward("central", []byte(`{"toNode":"ship2","method":"REQPing"}`), "send", "-f", "-")
	if code != 0 {
		t.Fatal("send before the outage failed")
	}
	before := strings.Fields(out)[0]

	f.Kill("central")
	// Sent beside ship1 while the broker is down: ship1 keeps it.
	out, errOut, code := f.Steward("ship1", []byte(`{"toNode":"ship1","method":"REQPing"}`), "send", "-f", "-")
	if code != 0 || !strings.Contains(out, "queued") {
		t.Fatalf("send with the broker down: exit %d, %s%s", code, out, errOut)
	}
	queued := strings.Fields(out)[0]
	// Where no node runs, there is nowhere to keep it: unreachable.
	if err := os.MkdirAll(f.Dir("operator"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, code := f.Steward("operator", []byte(`{"toNode":"ship1","method":"REQPing"}`), "send", "-f", "-",
		"--broker-address", f.BrokerURL()); code != 3 {
		t.Errorf("send with the broker down and no node beside it: exit %d, want 3", code)
	}
	f.Start("central")
	f.Start("ship2")
	f.WaitOnline("ship1", "ship2")
	fleettest.Eventually(t, 30*time.Second, "the message sent before the outage", func() bool {
		return f.status(before)[0].Status == status.Succeeded
	})
	fleettest.Eventually(t, 30*time.Second, "the message queued during the outage", func() bool {
		out, _, code := f.Steward("central", nil, "status", queued, "-o", "json")
		var recs []*status.Record
		return code == 0 && json.Unmarshal([]byte(out), &recs) == nil && len(recs) > 0 && recs[0].Status == status.Succeeded
	})
	res, code := f.sendWait(writeTemp(t, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","after"]}`))
	if code != 0 || res.Records[0].Output != "after\n" {
		t.Fatalf("after the outage: exit %d %+v", code, res.Records)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "msg.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCutOffShipKeepsItsInputAcrossSIGKILL: ship1's link is cut; an
// operator gives it messages through its socket and with steward send
// beside it. Both say the messages are queued, with their IDs. ship1 is
// then killed with SIGKILL, the link comes back, ship1 starts again, and
// every message runs exactly once.
func TestCutOffShipKeepsItsInputAcrossSIGKILL(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship2")
	link, err := netfault.Start(f.BrokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	f.Start("ship1", "--broker-address", link.URL())
	f.WaitOnline("ship1", "ship2")

	link.Cut(netfault.Reset)
	runs := filepath.Join(t.TempDir(), "runs.log")
	msg := func(id string) []byte {
		return []byte(fmt.Sprintf(`{"id":%q,"toNode":"ship2","method":"REQCliCommand","methodArgs":["sh","-c","echo %s >> %s"]}`, id, id, runs))
	}
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("sock%d", i)
		fleettest.Eventually(t, 30*time.Second, "ship1's socket to queue "+id, func() bool {
			// The socket answers the line steward send prints below.
			return strings.HasPrefix(f.socketSend("ship1", msg(id)), id+" REQCliCommand ship2 queued: ")
		})
		ids = append(ids, id)
	}
	for i := range 5 {
		id := fmt.Sprintf("cli%d", i)
		out, errOut, code := f.Steward("ship1", msg(id), "send", "-f", "-")
		if code != 0 || !strings.Contains(out, id+" REQCliCommand ship2 queued") {
			t.Fatalf("steward send beside a cut-off ship1: exit %d\n%s%s", code, out, errOut)
		}
		ids = append(ids, id)
	}
	f.Kill("ship1")
	link.Restore()
	f.Start("ship1")
	for _, id := range ids {
		fleettest.Eventually(t, 60*time.Second, id+" to run", func() bool {
			out, _, code := f.Steward("central", nil, "status", id, "-o", "json")
			var recs []*status.Record
			if code != 0 || json.Unmarshal([]byte(out), &recs) != nil {
				return false // not sent yet
			}
			deliveries, _ := split(recs)
			return len(deliveries) == 1 && deliveries[0].Status.Terminal()
		})
		if r := f.status(id)[0]; r.Status != status.Succeeded || r.FromNode != "ship1" {
			t.Errorf("%s: %+v", id, r)
		}
	}
	got := strings.Fields(read(t, runs))
	slices.Sort(got)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("runs %v, want each of %v once", got, want)
	}
}

// TestCentralBrokerOnAFullDisk fills the disk under central's embedded
// broker. steward send --timeout returns within its timeout (it used to
// hang until killed), and once space is freed sending works again without
// restarting central (it used to stay broken until a restart).
func TestCentralBrokerOnAFullDisk(t *testing.T) {
	f := newFleet(t)
	store := filepath.Join(f.Dir("central"), "data", ".steward", "jetstream")
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", store).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small file system to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", store).Run() })
	f.Start("central", "--log-level", "warn")
	f.Start("ship1")
	f.WaitOnline("ship1")
	if res, code := f.sendWait(writeTemp(t, `{"toNode":"ship1","method":"REQPing"}`)); code != 0 {
		t.Fatalf("before the disk is full: exit %d %+v", code, res.Records)
	}

	filler := filepath.Join(store, "filler")
	fd, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := fd.Write(chunk); err != nil {
			break
		}
	}
	fd.Close()
	// Messages with data, so the broker must write and finds no room.
	big := `{"toNode":"ship1","method":"REQToFile","fileName":"big","data":"` + strings.Repeat("x", 200_000) + `"}`
	start := time.Now()
	for range 5 {
		_, _, code := f.Steward("central", []byte(big), "send", "-f", "-", "--timeout", "10s")
		if took := time.Since(start); took > 30*time.Second {
			t.Fatalf("send took %s with --timeout 10s", took)
		}
		if code != 0 {
			break // the broker refused: the full disk is felt
		}
		start = time.Now()
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	fleettest.Eventually(t, 60*time.Second, "sending to work again without a restart", func() bool {
		res, code := f.sendWait(writeTemp(t, `{"toNode":"ship1","method":"REQPing"}`))
		return code == 0 && len(res.Records) == 1 && res.Records[0].Status == status.Succeeded
	})
}
