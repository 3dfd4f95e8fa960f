package node_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// With the fleet's queues in the broker's memory (queue-storage memory),
// a broker restart forgets every queue. Each node makes its own again,
// from the floor it last read (here: none, so the whole stream comes
// again), and its ledger settles what it already ran: nothing runs twice,
// later messages run, central judges deadlines again, and the lost queue
// is no error.
func TestQueuesInMemoryComeBackAfterABrokerRestart(t *testing.T) {
	f := newFleet(t)
	centralCfg := f.config("central")
	centralCfg.QueueStorage = stream.QueuesInMemory
	central := f.start(centralCfg)
	cfg := f.config("ship1")
	ship1 := f.start(cfg)
	c := f.client(central.cfg)

	const cmd = `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo ran >> runs.log"]}`
	for range 3 {
		if recs := wait(t, c, send(t, c, cmd), 20*time.Second); recs[0].Status != status.Succeeded {
			t.Fatalf("before the restart: %s", describe(recs))
		}
	}
	info, err := consumerInfo(t, f, "ship1")
	if err != nil {
		t.Fatal(err)
	}
	if !info.Config.MemoryStorage {
		t.Fatal("ship1's queue is on file; the layout says memory")
	}

	f.srv.Restart()
	natstest.Eventually(t, 30*time.Second, "ship1's queue made again in memory", func() bool {
		info, err := consumerInfo(t, f, "ship1")
		return err == nil && info.Config.MemoryStorage && info.NumPending == 0 && info.NumAckPending == 0
	})
	var ids []string
	natstest.Eventually(t, 30*time.Second, "a send after the restart", func() bool {
		receipts, err := c.Send(natstest.Context(t, 3*time.Second), []byte(cmd))
		if err != nil || !receipts[0].OK() {
			return false
		}
		ids = append(ids, receipts[0].ID)
		return true
	})
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("after the restart: %s", describe(recs))
	}
	if got := lines(filepath.Join(cfg.DataFolder, "runs.log")); len(got) != 4 {
		t.Errorf("runs.log has %d runs, want 4 (3 before the restart, 1 after): the replayed queue ran something again", len(got))
	}
	// Central's queue of due deadlines is back too.
	late := send(t, c, `{"toNode":"nobody","method":"REQPing","deliveryDeadline":1}`)
	if recs := wait(t, c, late, 30*time.Second); recs[0].Status != status.DeliveryTimedOut {
		t.Fatalf("a deadline after the restart: %s", describe(recs))
	}
	if !strings.Contains(ship1.logs.String(), "created this node's queue again") {
		t.Error("ship1 did not log that it made its queue again")
	}
	b, _ := os.ReadFile(filepath.Join(central.cfg.DataFolder, "errorLog", "ship1", "errors.log"))
	if strings.Contains(string(b), "lost the queue") {
		t.Errorf("a queue forgotten by design was reported as an error:\n%s", b)
	}

	// Central's queue of due deadlines keeps its floor too: made again
	// after a stop and a broker restart, it starts after the deadlines it
	// judged, not at the beginning of the stream.
	_, js := natstest.Connect(t, f.srv)
	natstest.Eventually(t, 10*time.Second, "central to ack the due deadline", func() bool {
		ctx := natstest.Context(t, 5*time.Second)
		cons, err := js.Consumer(ctx, stream.DeadlinesStream, "central")
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.AckFloor.Stream > 1 && info.AckFloor.Stream == info.Delivered.Stream
	})
	f.stop("central") // a clean stop keeps the floor
	f.srv.Restart()
	central = f.start(centralCfg)
	natstest.Eventually(t, 30*time.Second, "central's queue of due deadlines made again after its floor", func() bool {
		ctx := natstest.Context(t, 5*time.Second)
		cons, err := js.Consumer(ctx, stream.DeadlinesStream, "central")
		if err != nil {
			return false
		}
		cfg := cons.CachedInfo().Config
		return cfg.MemoryStorage && cfg.OptStartSeq > 1
	})
	c = f.client(central.cfg)
	late = send(t, c, `{"toNode":"nobody","method":"REQPing","deliveryDeadline":1}`)
	if recs := wait(t, c, late, 30*time.Second); recs[0].Status != status.DeliveryTimedOut {
		t.Fatalf("a deadline after central's restart: %s", describe(recs))
	}
}
