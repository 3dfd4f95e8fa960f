package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/stream"
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
	segments, _ := filepath.Glob(filepath.Join(central.cfg.StateFolder(), "ledger", "*.jsonl"))
	staged := false
	for _, seg := range segments {
		b, _ := os.ReadFile(seg)
		if !strings.Contains(string(b), `"id":"`+key+`"`) {
			continue
		}
		fh, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(fh, `{"id":%q,"state":"started","runs":1,"appendAt":0,"at":"%s"}`+"\n", key, time.Now().UTC().Format(time.RFC3339Nano))
		fh.Close()
		staged = true
	}
	if !staged {
		t.Fatalf("no ledger segment holds %s", key)
	}
	// The reply comes again.
	_, js := natstest.Connect(t, f.srv)
	s, err := js.Stream(t.Context(), stream.MessagesStream)
	if err != nil {
		t.Fatal(err)
	}
	var raw *jetstream.RawStreamMsg
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		if m, err := s.GetMsg(t.Context(), seq); err == nil && m.Header.Get(jetstream.MsgIDHeader) == key {
			raw = m
			break
		}
	}
	if raw == nil {
		t.Fatalf("the reply %s is not in the stream", key)
	}
	again, err := js.Publish(t.Context(), raw.Subject, raw.Data, jetstream.WithMsgID("again-"+key))
	if err != nil {
		t.Fatal(err)
	}
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
