package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
)

// A reply method that appended its data and died before its ledger said
// so (the ledger holds the run as started, with where it was about to
// write) does not append it again when the reply comes again. (Seen
// before: the fault suite's central kills doubled 2 of 572 reply files.)
func TestReplyAppendedBeforeACrashIsNotAppendedAgain(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","hi"],"directory":"r","fileName":"out"}`)
	waitAll(t, c, ids, 20*time.Second)
	f.stop("central")
	out := filepath.Join(central.cfg.DataFolder, "r", "ship1", "out")
	if b, _ := os.ReadFile(out); string(b) != "hi\n" {
		t.Fatalf("reply file %q before the crash is staged", b)
	}

	// The state a crash between the append and the ledger's record
	// leaves: run 1 started, about to append at offset 0.
	key := ids[0] + ".ship1.reply.0"
	stageLedger(t, central.cfg, key, fmt.Sprintf(`{"id":%q,"state":"started","runs":1,"appendAt":0,"at":"%s"}`,
		key, time.Now().UTC().Format(time.RFC3339Nano)))
	// The reply comes again.
	_, js := natstest.Connect(t, f.srv)
	again := publishAgain(t, js, key)
	restarted := f.start(central.cfg)
	natstest.Eventually(t, 20*time.Second, "central to take the reply again", func() bool {
		info, err := consumerInfo(t, f, "central")
		return err == nil && info.AckFloor.Stream >= again.Sequence && info.NumAckPending == 0
	})
	if !strings.Contains(restarted.logs.String(), "running the method again") {
		t.Fatalf("the reply was not run again; central's log:\n%s", restarted.logs.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "hi\n" {
		t.Errorf("reply file %q: the rerun appended the data again", b)
	}
}
