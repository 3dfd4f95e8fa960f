package node_test

// Each test here breaks a delivery guarantee on purpose — cuts the link,
// loses the consumer, wipes the broker, skews clocks, fills the disk — and
// checks that the guarantee holds. Each reproduces a failure the review of
// the first design found (see docs/reliability.md).

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/metrics"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/netfault"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// viaProxy routes cfg's node to the broker through a cuttable link.
func (f *fleet) viaProxy(cfg *config.Config) *netfault.Proxy {
	f.t.Helper()
	p, err := netfault.Start(f.srv.Addr().String())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { p.Close() })
	cfg.BrokerAddress = p.URL()
	return p
}

// history is every stored state of a delivery, oldest first.
func history(t *testing.T, f *fleet, key string) []status.Status {
	t.Helper()
	_, js := natstest.Connect(t, f.srv)
	kv, err := js.KeyValue(t.Context(), stream.StatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := status.NewStore(js, kv).History(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	var out []status.Status
	for _, r := range recs {
		out = append(out, r.Status)
	}
	return out
}

// oneTerminal checks that a delivery's history ends in exactly one
// terminal state, want, and that nothing followed it.
func oneTerminal(t *testing.T, f *fleet, key string, want status.Status) {
	t.Helper()
	h := history(t, f, key)
	terminal := 0
	for _, s := range h {
		if s.Terminal() {
			terminal++
		}
	}
	if terminal != 1 || h[len(h)-1] != want {
		t.Errorf("history of %s: %v; want exactly one terminal state, %s, and nothing after it", key, h, want)
	}
}

// lines reads a file of lines written by commands (empty if missing).
func lines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

// A link cut longer than AckWait while a command runs loses the node's
// in-progress acks, and the broker delivers the message again. The node
// must not start a second run: the running one adopts the redelivery,
// and the delivery ends with one run and one terminal state. (Seen before:
// the second run started 5.3 s into the first; history pending running
// running succeeded succeeded.)
func TestLinkCutDuringACommandRunsItOnce(t *testing.T) {
	for _, mode := range []netfault.Mode{netfault.Reset, netfault.DropToTarget} {
		t.Run(mode.String(), func(t *testing.T) {
			f := newFleet(t)
			central := f.start(f.config("central"))
			cfg := f.config("ship1")
			link := f.viaProxy(&cfg)
			ship1 := f.start(cfg)
			c := f.client(central.cfg)
			ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","retries":3,"methodTimeout":60,
			  "methodArgs":["sh","-c","echo start >> runs.log; sleep 7; echo end >> runs.log; echo done"],
			  "directory":"cut","fileName":"out.log"}`)
			runs := filepath.Join(cfg.DataFolder, "runs.log")
			natstest.Eventually(t, 15*time.Second, "the command to start", func() bool { return len(lines(runs)) > 0 })
			link.Cut(mode)
			time.Sleep(5 * time.Second) // more than twice AckWait (2 s)
			link.Restore()

			recs := wait(t, c, ids, 60*time.Second)
			if recs[0].Status != status.Succeeded || recs[0].Attempt != 1 {
				t.Fatalf("delivery: %s (attempt %d)", describe(recs), recs[0].Attempt)
			}
			if got := lines(runs); strings.Join(got, " ") != "start end" {
				t.Errorf("runs.log %v: want exactly one run", got)
			}
			oneTerminal(t, f, ids[0]+".ship1", status.Succeeded)
			if got := readFile(t, filepath.Join(central.cfg.DataFolder, "cut", "ship1", "out.log")); got != "done\n" {
				t.Errorf("reply file %q, want one done", got)
			}
			// The cut did make the broker deliver again: the test exercised
			// the redelivery, not a quiet link.
			if !strings.Contains(ship1.logs.String(), "sent a delivery again") {
				t.Errorf("no redelivery reached ship1 during the cut; the test proved nothing")
			}
		})
	}
}

// A consumer deleted while its node is away is noticed when the node
// reconnects and created again within seconds; the node says so in its
// log, to central's error log and in the registry, and messages sent
// meanwhile run. (Seen before: after 75 s the consumer did not exist and
// the node still looked online.)
func TestQueueLostWhileAwayIsCreatedAgain(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	cfg := f.config("ship1")
	link := f.viaProxy(&cfg)
	f.start(cfg)
	c := f.client(central.cfg)
	wait(t, c, send(t, c, `{"toNode":"ship1","method":"REQPing"}`), 20*time.Second)

	link.Cut(netfault.Reset)
	_, js := natstest.Connect(t, f.srv)
	if err := js.DeleteConsumer(t.Context(), stream.MessagesStream, "ship1"); err != nil {
		t.Fatal(err)
	}
	ids := send(t, c, `{"toNode":"ship1","method":"REQPing"}`)
	link.Restore()
	start := time.Now()
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("message sent while the queue was gone: %s", describe(recs))
	}
	t.Logf("the queue was back and the message ran %s after the link returned", time.Since(start).Round(time.Millisecond))
	kv, err := js.KeyValue(t.Context(), stream.NodesBucket)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "the registry to say the queue was recreated", func() bool {
		n, err := registry.New(kv).Get(t.Context(), "ship1")
		return err == nil && n.QueueRecreations == 1 && n.QueueOK
	})
	natstest.Eventually(t, 10*time.Second, "central's error log to say so", func() bool {
		b, _ := os.ReadFile(filepath.Join(central.cfg.DataFolder, "errorLog", "ship1", "errors.log"))
		return strings.Contains(string(b), "had lost the queue of node ship1")
	})
}

// A broker restarted on an empty store loses every stream, consumer and
// bucket. The central node sets the broker up again, the ship creates its
// queue again, and new work runs.
func TestBrokerOnAnEmptyStore(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	wait(t, c, send(t, c, `{"toNode":"ship1","method":"REQPing"}`), 20*time.Second)

	f.srv.RestartEmpty()
	var ids []string
	natstest.Eventually(t, 30*time.Second, "a send to the fresh broker", func() bool {
		receipts, err := c.Send(natstest.Context(t, 3*time.Second), []byte(`{"toNode":"ship1","method":"REQPing"}`))
		if err != nil || !receipts[0].OK() {
			return false
		}
		ids = append(ids, receipts[0].ID)
		return true
	})
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("after the broker lost its store: %s", describe(recs))
	}
}

// A delivery that ended without running (undeliverable) stays ended when
// the broker hands it to the node again — here through a consumer created
// again at the start of the stream, whose delivery count starts from one.
// (Seen before: history undeliverable → running → succeeded.)
func TestRefusedDeliveryNeverRunsWhenItComesAgain(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	cfg := f.config("ship1")
	f.start(cfg)
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","retries":0,
	  "methodArgs":["sh","-c","echo start >> runs.log; sleep 3; echo end >> runs.log"]}`)
	runs := filepath.Join(cfg.DataFolder, "runs.log")
	natstest.Eventually(t, 15*time.Second, "the command to start", func() bool { return len(lines(runs)) > 0 })
	f.stop("ship1") // the run is killed; with retries 0 it cannot run again
	f.start(cfg)
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Undeliverable {
		t.Fatalf("want undeliverable, got %s", describe(recs))
	}
	f.stop("ship1")
	// The consumer is lost, and the node forgot where it had got to: the
	// new consumer hands it the whole stream again.
	_, js := natstest.Connect(t, f.srv)
	if err := js.DeleteConsumer(t.Context(), stream.MessagesStream, "ship1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg.StateFolder(), "queue.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	f.start(cfg)
	natstest.Eventually(t, 20*time.Second, "ship1's queue settled", func() bool {
		info, err := consumerInfo(t, f, "ship1")
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.Delivered.Stream > 0
	})
	if got := lines(runs); strings.Join(got, " ") != "start" {
		t.Errorf("runs.log %v: the refused delivery ran again", got)
	}
	oneTerminal(t, f, ids[0]+".ship1", status.Undeliverable)
}

// A consumer created again starts where the broker had last acknowledged
// everything, not at the beginning of the stream.
func TestRecreatedQueueStartsAtItsAckFloor(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	cfg := f.config("ship1")
	f.start(cfg)
	c := f.client(central.cfg)
	for range 3 {
		wait(t, c, send(t, c, `{"toNode":"ship1","method":"REQPing"}`), 20*time.Second)
	}
	// The floor to compare with is the one once every ack landed (read
	// before that, it may be behind the floor the node saves when it stops).
	var before *jetstream.ConsumerInfo
	natstest.Eventually(t, 10*time.Second, "the acks to land", func() bool {
		info, err := consumerInfo(t, f, "ship1")
		before = info
		return err == nil && info.NumAckPending == 0 && info.AckFloor.Stream == info.Delivered.Stream
	})
	f.stop("ship1") // a clean stop keeps the ack floor
	_, js := natstest.Connect(t, f.srv)
	if err := js.DeleteConsumer(t.Context(), stream.MessagesStream, "ship1"); err != nil {
		t.Fatal(err)
	}
	ship1 := f.start(cfg)
	var info *jetstream.ConsumerInfo
	natstest.Eventually(t, 10*time.Second, "the queue created again", func() bool {
		var err error
		info, err = consumerInfo(t, f, "ship1")
		return err == nil
	})
	if info.Config.OptStartSeq != before.AckFloor.Stream+1 {
		t.Errorf("recreated consumer starts at %d, want %d (after the ack floor)", info.Config.OptStartSeq, before.AckFloor.Stream+1)
	}
	// The node says so right after it created the queue.
	natstest.Eventually(t, 10*time.Second, "the node to say it created its queue again", func() bool {
		return strings.Contains(ship1.logs.String(), "created it again")
	})
	if recs := wait(t, c, send(t, c, `{"toNode":"ship1","method":"REQPing"}`), 20*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("after recreation: %s", describe(recs))
	}
}

// One judge decides the deadline, on the broker's clock: a node or central
// whose clock is ten minutes off decides exactly as one whose clock is
// right. (Seen before: the node judged lateness by its own clock; central
// dropped a due deadline as "came early"; the node overwrote central's
// delivery_timed_out.)
func TestClockSkewChangesNothing(t *testing.T) {
	for _, skew := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(fmt.Sprintf("skew %s", skew), func(t *testing.T) {
			f := newFleet(t)
			skewed := func() time.Time { return time.Now().Add(skew) }
			behind := func() time.Time { return time.Now().Add(-skew) }
			central := f.startWith(f.config("central"), behind)
			cfg := f.config("ship1")
			cfg.PromHostAndPort = natstest.FreePort(t)
			c := f.client(central.cfg)

			// Taken in time by a node whose clock says it is late (or
			// early): it runs.
			inTime := send(t, c, `{"toNode":"ship1","method":"REQPing","deliveryDeadline":120}`)
			// Sent while the node is down, deadline passes: central marks
			// it, the node never runs it when it comes.
			late := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo ran >> late.log"],"deliveryDeadline":1}`)
			if recs := wait(t, c, late, 30*time.Second); recs[0].Status != status.DeliveryTimedOut {
				t.Fatalf("late message before the node starts: %s", describe(recs))
			}
			f.startWith(cfg, skewed)
			if recs := wait(t, c, inTime, 30*time.Second); recs[0].Status != status.Succeeded {
				t.Fatalf("message taken in time: %s", describe(recs))
			}
			natstest.Eventually(t, 10*time.Second, "ship1's queue settled", func() bool {
				info, err := consumerInfo(t, f, "ship1")
				return err == nil && info.NumAckPending == 0 && info.NumPending == 0
			})
			if _, err := os.Stat(filepath.Join(cfg.DataFolder, "late.log")); err == nil {
				t.Error("the node ran a message after its deadline")
			}
			oneTerminal(t, f, late[0]+".ship1", status.DeliveryTimedOut)
			oneTerminal(t, f, inTime[0]+".ship1", status.Succeeded)
			// The pong's round trip is measured on the broker's clock at
			// both ends, so the two clocks' 20 minutes apart do not show.
			pongs := filepath.Join(central.cfg.DataFolder, "ping", "ship1", "pong.log")
			var line string
			natstest.Eventually(t, 10*time.Second, "the pong recorded", func() bool {
				b, _ := os.ReadFile(pongs)
				line = string(b)
				return strings.Contains(line, "round trip")
			})
			var stamp, trip string
			if _, err := fmt.Sscanf(line, "%s pong from ship1, round trip %s", &stamp, &trip); err != nil {
				t.Fatalf("pong line %q: %v", line, err)
			}
			rt, err := time.ParseDuration(strings.TrimSuffix(trip, ":"))
			if err != nil || rt < 0 || rt > time.Minute {
				t.Errorf("pong line %q: round trip %q carries the clocks' skew (%v)", line, trip, err)
			}
			at, err := time.Parse(time.RFC3339, stamp)
			if err != nil || at.Sub(time.Now()).Abs() > time.Minute {
				t.Errorf("pong line %q: dated %q, not on the broker's clock (%v)", line, stamp, err)
			}
			// So are the ship's delivery latencies: none near the skew. (The
			// ping is counted once its delivery ended, after its reply and
			// status went: wait for it.)
			var count, within float64
			natstest.Eventually(t, 10*time.Second, "ship1 to count the ping's latency", func() bool {
				body := scrape(t, "http://"+cfg.PromHostAndPort+"/metrics")
				count, _ = metricValue(body, metrics.DeliveryLatency+"_count", `method="REQPing"`)
				within, _ = metricValue(body, metrics.DeliveryLatency+"_bucket", `method="REQPing"`, `le="60"`)
				return count >= 1
			})
			if within != count {
				t.Errorf("ship1's REQPing latencies: %v of %v within a minute, want all (the clocks' skew counted)", within, count)
			}
		})
	}
}

// A delivery that finished costs nothing later: its deadline never fires.
// (Seen before: every message's schedule fired a day later and cost
// central a delivery and a KV listing.)
func TestAFinishedMessageCostsNothingLater(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQPing","deliveryDeadline":2}`)
	wait(t, c, ids, 20*time.Second)
	time.Sleep(4 * time.Second) // the deadline passes
	_, js := natstest.Connect(t, f.srv)
	s, err := js.Stream(t.Context(), stream.DeadlinesStream)
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{stream.DeadlineSubject(ids[0] + ".ship1"), stream.DeadlineDueSubject("central")} {
		if _, err := s.GetLastMsgForSubject(t.Context(), subj); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("%s: want nothing, got %v", subj, err)
		}
	}
}

// Only the central node sets the broker up: a ship that starts first waits
// for it, and a ship never changes the fleet-wide streams.
func TestOnlyCentralSetsTheBrokerUp(t *testing.T) {
	f := newFleet(t)
	cfg := f.config("ship1")
	started := make(chan *running, 1)
	go func() {
		r, err := f.launch(cfg, nil)
		if err != nil {
			t.Errorf("ship1: %v", err)
		}
		started <- r
	}()
	_, js := natstest.Connect(t, f.srv)
	time.Sleep(2 * time.Second)
	if _, err := js.Stream(t.Context(), stream.MessagesStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("a ship set the broker up: %v", err)
	}
	central := f.start(f.config("central"))
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("ship1 did not start once central had set the broker up")
	}
	// An operator raised a limit; a ship restarting must not put it back.
	s, err := js.Stream(t.Context(), stream.MessagesStream)
	if err != nil {
		t.Fatal(err)
	}
	cfgS := s.CachedInfo().Config
	cfgS.MaxConsumers = 2_000_000
	if _, err := js.UpdateStream(t.Context(), cfgS); err != nil {
		t.Fatal(err)
	}
	f.stop("ship1")
	f.start(cfg)
	s, _ = js.Stream(t.Context(), stream.MessagesStream)
	if got := s.CachedInfo().Config.MaxConsumers; got != 2_000_000 {
		t.Errorf("a ship's start changed the stream: MaxConsumers %d", got)
	}
	c := f.client(central.cfg)
	wait(t, c, send(t, c, `{"toNode":"ship1","method":"REQPing"}`), 20*time.Second)
}

// A node that stops cleanly says goodbye and shows offline at once; a
// second node under a name that is in use refuses to start.
func TestGoodbyeAndNameInUse(t *testing.T) {
	f := newFleet(t)
	f.start(f.config("central"))
	cfg := f.config("ship1")
	f.start(cfg)
	_, js := natstest.Connect(t, f.srv)
	kv, err := js.KeyValue(t.Context(), stream.NodesBucket)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(kv)
	natstest.Eventually(t, 10*time.Second, "ship1 in the registry", func() bool {
		n, err := reg.Get(t.Context(), "ship1")
		return err == nil && n.Instance != ""
	})

	// The same name from another data folder (another machine).
	other := f.config("ship1")
	_, err = f.launch(other, nil)
	if !errors.Is(err, node.ErrNameInUse) {
		t.Fatalf("a second ship1 started: %v", err)
	}

	f.stop("ship1")
	natstest.Eventually(t, 5*time.Second, "ship1 offline at once", func() bool {
		n, err := reg.Get(t.Context(), "ship1")
		return err == nil && !n.StoppedAt.IsZero() && !n.Online(time.Now())
	})
	// Once it said goodbye, the name is free.
	f.start(other)
}

// A reply that cannot be written (the folder is not usable) shows in the
// reply's status and is tried again, and written once the folder is
// fixed; send --wait waits for it. (Seen before: 60 of 60 replies lost
// for good while their deliveries said succeeded.)
func TestReplyThatCannotBeWrittenIsRetried(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	// A file where the reply's folder must go: every write fails.
	blocker := filepath.Join(central.cfg.DataFolder, "results")
	if err := os.WriteFile(blocker, []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","precious output"],
	  "directory":"results","fileName":"out.log"}`)
	done := make(chan []*status.Record, 1)
	go func() { done <- waitAll(t, c, ids, 60*time.Second) }()

	st := c // the client reads status
	natstest.Eventually(t, 20*time.Second, "the reply's failure in its status", func() bool {
		recs, err := st.Status(t.Context(), ids[0])
		if err != nil || len(recs) != 2 {
			return false
		}
		return recs[0].Status == status.Succeeded && recs[1].Reply && recs[1].Status == status.Delivered && recs[1].Error != ""
	})
	select {
	case recs := <-done:
		t.Fatalf("send --wait returned while the reply was not written: %s", describe(recs))
	default:
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	var recs []*status.Record
	select {
	case recs = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the reply was not written after the folder was fixed")
	}
	if len(recs) != 2 || recs[1].Status != status.Succeeded || recs[1].Attempt < 2 {
		t.Errorf("records: %s", describe(recs))
	}
	if got := readFile(t, filepath.Join(blocker, "ship1", "out.log")); got != "precious output\n" {
		t.Errorf("reply file %q", got)
	}
}

// mountTmpfs mounts a tmpfs of size bytes at dir (removed at cleanup), or
// skips the test where this machine does not allow mounts.
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small file system to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill writes to dir until the file system is full; the returned function
// frees the space again.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// No acknowledgement without the durable record: when the ledger's disk is
// full, a message is not run (its start cannot be recorded), and a
// method that ran holds its message until its outcome is recorded — it
// never runs twice and nothing is lost. (Seen before: a failed ledger
// write was logged and the message acked anyway.)
func TestFullLedgerDiskHoldsTheMessage(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	cfg := f.config("ship1")
	ledgerDir := filepath.Join(cfg.StateFolder(), "ledger")
	mountTmpfs(t, ledgerDir, 256<<10)
	f.start(cfg)
	c := f.client(central.cfg)
	runs := filepath.Join(cfg.DataFolder, "runs.log")

	// Full before the message arrives: it waits, pending, and runs once
	// there is room.
	free := fill(t, ledgerDir)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo start >> runs.log"]}`)
	time.Sleep(3 * time.Second)
	if recs, _ := c.Status(t.Context(), ids[0]); recs[0].Status != status.Pending || len(lines(runs)) != 0 {
		t.Fatalf("with the ledger full: %s, runs %v", describe(recs), lines(runs))
	}
	free()
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("after freeing the disk: %s", describe(recs))
	}

	// Full while the method runs: the outcome waits in the node, the
	// message stays unacknowledged, nothing runs twice. (The output is
	// larger than a page, so recording it needs space the full file
	// system does not have, even in the slack of the ledger's file.)
	ids = send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo second >> runs.log; sleep 2; head -c 20000 /dev/zero | tr '\\0' x"]}`)
	natstest.Eventually(t, 15*time.Second, "the second command to start", func() bool { return len(lines(runs)) == 2 })
	free = fill(t, ledgerDir)
	time.Sleep(5 * time.Second) // the method ends and cannot be recorded; AckWait passes twice
	recs, err := c.Status(t.Context(), ids[0])
	if err != nil || recs[0].Status.Terminal() {
		t.Fatalf("the outcome went out before it was recorded: %s %v", describe(recs), err)
	}
	free()
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("after freeing the disk: %s", describe(recs))
	}
	if got := lines(runs); strings.Join(got, " ") != "start second" {
		t.Errorf("runs.log %v: want each command run once", got)
	}
	oneTerminal(t, f, ids[0]+".ship1", status.Succeeded)
}

// socketSend writes input to a node's socket as nc -U does and returns the
// answer.
func socketSend(t *testing.T, path, input string) string {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(input)); err != nil {
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
	return answer.String()
}

// A node cut off from the broker keeps what an operator gives it: the
// messages wait in its outbox on disk, with the IDs it answered, survive
// a restart of the node, and each runs exactly once when the link is back.
// (Seen before: 10 of 10 messages given to a cut-off node's socket were
// lost when it was then killed, with no ID and no error.)
func TestCutOffNodeKeepsItsInput(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	ship2 := f.start(f.config("ship2"))
	cfg := f.config("ship1")
	link := f.viaProxy(&cfg)
	f.start(cfg)
	c := f.client(central.cfg)
	wait(t, c, send(t, c, `{"toNode":"ship1","method":"REQPing"}`), 20*time.Second)

	link.Cut(netfault.Reset)
	var ids []string
	for i := range 10 {
		var answer string
		natstest.Eventually(t, 20*time.Second, "ship1 to queue its input", func() bool {
			answer = socketSend(t, cfg.SocketPath(), fmt.Sprintf(`{"id":"cut%d","toNode":"ship2","method":"REQCliCommand",
			  "methodArgs":["sh","-c","echo cut%d >> runs.log; echo ok%d"],"directory":"back","fileName":"cut%d"}`, i, i, i, i))
			return strings.Contains(answer, "queued")
		})
		if !strings.HasPrefix(answer, fmt.Sprintf("cut%d ", i)) {
			t.Fatalf("answer %q does not give the message's ID", answer)
		}
		ids = append(ids, fmt.Sprintf("cut%d", i))
	}
	f.stop("ship1") // with its messages still in the outbox
	entries, _ := os.ReadDir(cfg.OutboxFolder())
	if len(entries) != 10 {
		t.Fatalf("%d messages in the outbox of the stopped node, want 10", len(entries))
	}
	link.Restore()
	f.start(cfg)
	recs := wait(t, c, ids, 60*time.Second)
	for _, r := range recs {
		if r.Status != status.Succeeded {
			t.Errorf("%s", describe([]*status.Record{r}))
		}
	}
	got := lines(filepath.Join(ship2.cfg.DataFolder, "runs.log"))
	if len(got) != 10 {
		t.Errorf("runs.log %v: want each of the 10 messages once", got)
	}
	for i := range 10 {
		if b := readFile(t, filepath.Join(cfg.DataFolder, "back", "ship2", fmt.Sprintf("cut%d", i))); b != fmt.Sprintf("ok%d\n", i) {
			t.Errorf("reply %d on ship1: %q", i, b)
		}
	}
	natstest.Eventually(t, 10*time.Second, "the outbox emptied", func() bool {
		entries, _ := os.ReadDir(cfg.OutboxFolder())
		return len(entries) == 0
	})
}

// A node that dies right after its command ended, before it recorded the
// outcome, does not run the command again, and the output is not lost: the
// process guard recorded the exit code, and the node kept the output as it
// read it (the fault suite found 36 such double runs in 50 SIGKILLs aimed at
// that moment). Here the guard's record is written by hand after a stop,
// as the guard writes it when the command ends.
func TestCommandThatEndedBeforeTheCrashIsNotRunAgain(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	cfg := f.config("ship1")
	f.start(cfg)
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","retries":3,
	  "methodArgs":["sh","-c","echo start >> runs.log; echo early output; sleep 3; echo end >> runs.log"],
	  "directory":"ended","fileName":"out"}`)
	runs := filepath.Join(cfg.DataFolder, "runs.log")
	record := filepath.Join(cfg.StateFolder(), "runs", ids[0]+".ship1")
	natstest.Eventually(t, 15*time.Second, "the command's output kept", func() bool {
		b, _ := os.ReadFile(record + ".run")
		return bytes.Contains(b, []byte("early output\n"))
	})
	f.stop("ship1")
	// As if the command had ended with code 0 just before the node died.
	endRecord(t, record, 0)
	f.start(cfg)
	recs := wait(t, c, ids, 30*time.Second)
	if recs[0].Status != status.Succeeded || recs[0].Output != "early output\n" || !strings.Contains(recs[0].Stderr, "ran once") {
		t.Fatalf("after the restart: %s (output %q, stderr %q)", describe(recs), recs[0].Output, recs[0].Stderr)
	}
	if got := readFile(t, filepath.Join(central.cfg.DataFolder, "ended", "ship1", "out")); got != "early output\n" {
		t.Errorf("reply %q: the output the node had read is the reply", got)
	}
	if got := lines(runs); strings.Join(got, " ") != "start" {
		t.Errorf("runs.log %v: the command ran again", got)
	}
	oneTerminal(t, f, ids[0]+".ship1", status.Succeeded)
	if _, err := os.Stat(record + ".run"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the run record was not removed once the delivery finished: %v", err)
	}
}

// endRecord appends the exit frame to a run record, as the process guard
// does when its command ends by itself (the format is procguard's).
func endRecord(t *testing.T, base string, code byte) {
	t.Helper()
	f, err := os.OpenFile(base+".run", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte{'x', 0, 0, 0, 4, 0, 0, 0, code}); err != nil {
		t.Fatal(err)
	}
}

// A reply whose method ran, and whose node died before it wrote the reply
// record, gets its record when the reply comes again and is finished from
// the ledger (the fault suite found one that never got it: send --wait
// would never have returned). The crash is staged: central's ledger is
// left saying "completed", the record deleted, the reply delivered again.
func TestReplyFinishedFromTheLedgerWritesItsRecord(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","hi"],"directory":"r","fileName":"out"}`)
	waitAll(t, c, ids, 20*time.Second)
	f.stop("central")

	key := ids[0] + ".ship1.reply.0"
	stageLedger(t, central.cfg, key, fmt.Sprintf(`{"id":%q,"state":"completed","at":"%s","outcome":{"status":"succeeded","replyRan":true}}`,
		key, time.Now().UTC().Format(time.RFC3339Nano)))
	_, js := natstest.Connect(t, f.srv)
	kv, err := js.KeyValue(t.Context(), stream.StatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(t.Context(), ids[0]+".ship1.reply"); err != nil {
		t.Fatal(err)
	}
	publishAgain(t, js, key)
	f.start(central.cfg)
	natstest.Eventually(t, 20*time.Second, "the reply record", func() bool {
		recs, err := c.Status(t.Context(), ids[0])
		return err == nil && len(recs) == 2 && recs[1].Reply && recs[1].Status == status.Succeeded
	})
}

// A run that ended just before its node died is finished from its record
// even when the message allows no retries: it did not need one.
func TestEndedRunNeedsNoRetry(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	cfg := f.config("ship1")
	f.start(cfg)
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","retries":0,
	  "methodArgs":["sh","-c","echo start >> runs.log; echo out; sleep 3"]}`)
	record := filepath.Join(cfg.StateFolder(), "runs", ids[0]+".ship1")
	natstest.Eventually(t, 15*time.Second, "the command's output recorded", func() bool {
		b, _ := os.ReadFile(record + ".run")
		return bytes.Contains(b, []byte("out\n"))
	})
	f.stop("ship1")
	endRecord(t, record, 0)
	f.start(cfg)
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded || recs[0].Output != "out\n" {
		t.Fatalf("after the restart: %s", describe(recs))
	}
}

// stageLedger appends line to the segment of node cfg's ledger that holds
// key: the state a crash at some point would have left.
func stageLedger(t *testing.T, cfg config.Config, key, line string) {
	t.Helper()
	segments, _ := filepath.Glob(filepath.Join(cfg.StateFolder(), "ledger", "*.jsonl"))
	for _, seg := range segments {
		b, _ := os.ReadFile(seg)
		if !strings.Contains(string(b), `"id":"`+key+`"`) {
			continue
		}
		fh, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		if _, err := fh.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no ledger segment holds %s", key)
}

// publishAgain publishes the stream message whose Nats-Msg-Id is key once
// more, as a new message: the delivery comes again.
func publishAgain(t *testing.T, js jetstream.JetStream, key string) *jetstream.PubAck {
	t.Helper()
	s, err := js.Stream(t.Context(), stream.MessagesStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		if m, err := s.GetMsg(t.Context(), seq); err == nil && m.Header.Get(jetstream.MsgIDHeader) == key {
			ack, err := js.Publish(t.Context(), m.Subject, m.Data, jetstream.WithMsgID("again-"+key))
			if err != nil {
				t.Fatal(err)
			}
			return ack
		}
	}
	t.Fatalf("%s is not in the stream", key)
	return nil
}
