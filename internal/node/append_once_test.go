package node_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/stream"
)

// The other methods that append to a file, REQPong and REQErrorLog, do
// not append again either when central dies between the append and its
// ledger's record of it: their lines are the same on every run (dated by
// the pong's and the report's sentAt), and a rerun finds them where the
// first run was about to write.
func TestPongAndReportAppendOnce(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `[{"toNode":"ship1","method":"REQPing"},{"toNode":"ship1","method":"REQCliCommand","methodArgs":["false"]}]`)
	waitAll(t, c, ids, 20*time.Second)
	pongs := filepath.Join(central.cfg.DataFolder, "ping", "ship1", "pong.log")
	errs := filepath.Join(central.cfg.DataFolder, methods.ErrorLogDir, "ship1", methods.ErrorLogFile)
	natstest.Eventually(t, 20*time.Second, "the error report in central's error log", func() bool {
		b, _ := os.ReadFile(errs)
		return strings.Contains(string(b), ids[1])
	})
	f.stop("central")
	pong, _ := os.ReadFile(pongs)
	report, _ := os.ReadFile(errs)
	if strings.Count(string(pong), "\n") != 1 || strings.Count(string(report), "\n") != 1 {
		t.Fatalf("before the crash is staged: pong.log %q, errors.log %q", pong, report)
	}

	_, js := natstest.Connect(t, f.srv)
	reportID := streamMessageID(t, js, "error.ship1."+ids[1]+".ship1")
	rerunStagedAppends(t, f, central.cfg, map[string]string{
		ids[0] + ".ship1.reply.0": ids[0] + ".ship1.reply.0",
		reportID + ".central":     "error.ship1." + ids[1] + ".ship1",
	})
	if b, _ := os.ReadFile(pongs); string(b) != string(pong) {
		t.Errorf("pong.log %q after the rerun, %q before: the rerun appended again", b, pong)
	}
	if b, _ := os.ReadFile(errs); string(b) != string(report) {
		t.Errorf("errors.log %q after the rerun, %q before: the rerun appended again", b, report)
	}
}

// streamMessageID is the steward message ID of the stream message whose
// Nats-Msg-Id is msgID.
func streamMessageID(t *testing.T, js jetstream.JetStream, msgID string) string {
	t.Helper()
	s, err := js.Stream(t.Context(), stream.MessagesStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		if m, err := s.GetMsg(t.Context(), seq); err == nil && m.Header.Get(jetstream.MsgIDHeader) == msgID {
			var body struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(m.Data, &body); err != nil {
				t.Fatal(err)
			}
			return body.ID
		}
	}
	t.Fatalf("%s is not in the stream", msgID)
	return ""
}
