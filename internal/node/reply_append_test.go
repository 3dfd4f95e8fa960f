package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/config"
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

	rerunStagedAppends(t, f, central.cfg, map[string]string{ids[0] + ".ship1.reply.0": ids[0] + ".ship1.reply.0"})
	if b, _ := os.ReadFile(out); string(b) != "hi\n" {
		t.Errorf("reply file %q: the rerun appended the data again", b)
	}
}

// rerunStagedAppends stages, in stopped central's ledger, the state a
// crash between an append and the ledger's record of it leaves (run 1
// started, about to append at offset 0) for each ledger key of staged,
// publishes the stream message whose Nats-Msg-Id is its value once more,
// restarts central and waits until it took them all and ran each again.
func rerunStagedAppends(t *testing.T, f *fleet, cfg config.Config, staged map[string]string) {
	t.Helper()
	_, js := natstest.Connect(t, f.srv)
	var last uint64
	for key, msgID := range staged {
		stageLedger(t, cfg, key, fmt.Sprintf(`{"id":%q,"state":"started","runs":1,"appendAt":0,"at":"%s"}`,
			key, time.Now().UTC().Format(time.RFC3339Nano)))
		last = max(last, publishAgain(t, js, msgID).Sequence)
	}
	restarted := f.start(cfg)
	natstest.Eventually(t, 20*time.Second, "central to take the staged messages again", func() bool {
		info, err := consumerInfo(t, f, "central")
		return err == nil && info.AckFloor.Stream >= last && info.NumAckPending == 0
	})
	if n := strings.Count(restarted.logs.String(), "running the method again"); n != len(staged) {
		t.Fatalf("%d of the %d were run again; central's log:\n%s", n, len(staged), restarted.logs.String())
	}
}
