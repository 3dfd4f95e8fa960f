package node_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/stream"
)

// dirSize is the bytes of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// The central node holds a fleet's hellos without growing: a hello only
// updates the sender's registry record, so it is neither in central's
// ledger nor in its audit log, the registry keeps one record per node, and
// the broker keeps a hello only for three intervals. (Seen before: every
// hello cost 187 B of ledger, 627 B of audit log and 179 B of heap, about
// 29 M live entries and 23 GB of writes a day at 10,000 nodes.)
func TestCentralStaysBoundedUnderHellos(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 10,000 hellos")
	}
	f := newFleet(t)
	cfg := f.config("central")
	cfg.HelloInterval = 0
	central := f.start(cfg)
	state := central.cfg.StateFolder()
	_, js := natstest.Connect(t, f.srv)

	const nodes, rounds = 2000, 5
	hello := func(round int) {
		t.Helper()
		var futures []jetstream.PubAckFuture
		for i := range nodes {
			info, _ := json.Marshal(methods.HelloInfo{Version: "test", Methods: []string{"REQPing"},
				HelloInterval: 30 * time.Second, Instance: fmt.Sprintf("inst%05d", i)})
			now := time.Now().UTC()
			m := &message.Message{ToNode: "central", Method: "REQHello", Data: info, ID: nuid.Next(),
				FromNode: fmt.Sprintf("n%05d", i), SentAt: now, Deadline: now.Add(90 * time.Second), Event: true}
			fut, err := sender.PublishPrepared(t.Context(), js, m, "hello."+m.ID, 90*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			futures = append(futures, fut)
		}
		for _, fut := range futures {
			select {
			case <-fut.Ok():
			case err := <-fut.Err():
				t.Fatal(err)
			}
		}
	}
	settled := func() {
		t.Helper()
		natstest.Eventually(t, 120*time.Second, "central to take every hello", func() bool {
			info, err := consumerInfo(t, f, "central")
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		})
	}
	hello(0)
	settled()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapAfterFirst := ms.HeapAlloc
	ledgerAfterFirst, auditAfterFirst := dirSize(t, filepath.Join(state, "ledger")), fileSize(filepath.Join(state, "audit.jsonl"))
	start := time.Now()
	for r := 1; r < rounds; r++ {
		hello(r)
	}
	settled()
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%d hellos from %d nodes in %s (%.0f/s); heap %d → %d bytes (the test process holds the broker and the node)",
		nodes*(rounds-1), nodes, elapsed.Round(time.Millisecond), float64(nodes*(rounds-1))/elapsed.Seconds(), heapAfterFirst, ms.HeapAlloc)

	if got := dirSize(t, filepath.Join(state, "ledger")); got != ledgerAfterFirst || got != 0 {
		t.Errorf("central's ledger is %d bytes after the hellos (%d after the first round), want 0", got, ledgerAfterFirst)
	}
	if got := fileSize(filepath.Join(state, "audit.jsonl")); got != auditAfterFirst {
		t.Errorf("central's audit log grew from %d to %d bytes with hellos", auditAfterFirst, got)
	}
	b, _ := os.ReadFile(filepath.Join(state, "audit.jsonl"))
	if strings.Contains(string(b), "REQHello") {
		t.Error("hellos are in the audit log")
	}
	kv, err := js.Stream(t.Context(), "KV_"+stream.NodesBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := kv.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs < nodes || info.State.Msgs > nodes+1 {
		t.Errorf("the registry holds %d records for %d nodes", info.State.Msgs, nodes)
	}
}

// fileSize is the size of a file, 0 if it does not exist.
func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// A node's first hello usually goes before its queue works; the registry
// learns that it works from a hello as soon as it does, not one hello
// interval later (steward nodes said "queue missing" for 30 s).
func TestRegistryLearnsTheQueueWorksAtOnce(t *testing.T) {
	f := newFleet(t)
	centralCfg := f.config("central")
	f.start(centralCfg)
	ship := f.config("ship1")
	ship.HelloInterval = time.Hour
	f.start(ship)
	c := f.client(centralCfg)
	eventually(t, 15*time.Second, "ship1's queue working in the registry", func() bool {
		nodes, err := c.Nodes(t.Context())
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.Name == "ship1" && n.QueueOK {
				return true
			}
		}
		return false
	})
}
