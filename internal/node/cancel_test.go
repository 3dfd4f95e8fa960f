package node_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
)

// steward cancel: a message its node has not taken is taken away (the node,
// back later, does not run it); one that runs is stopped where it runs.
func TestCancel(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	c := f.client(central.cfg)
	cfg := f.config("ship1")

	// ship1 is offline: the message waits for it.
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["touch","ran"]}`)
	res, err := c.Cancel(t.Context(), ids[0])
	if err != nil || len(res) != 1 || res[0].Outcome != "cancelled" {
		t.Fatalf("cancel while ship1 is away: %+v %v", res, err)
	}
	f.start(cfg)
	natstest.Eventually(t, 30*time.Second, "ship1 takes the cancelled message and lets it go", func() bool {
		b, _ := os.ReadFile(filepath.Join(cfg.StateFolder(), "audit.jsonl"))
		return strings.Contains(string(b), ids[0]+".ship1") && strings.Contains(string(b), `"status":"cancelled"`)
	})
	if _, err := os.Stat(filepath.Join(cfg.DataFolder, "ran")); err == nil {
		t.Fatal("the cancelled command ran")
	}
	if recs, err := c.Status(t.Context(), ids[0]); err != nil || recs[0].Status != status.Cancelled || !strings.Contains(recs[0].Error, "cancelled by central before it ran") {
		t.Errorf("its status: %v %s", err, describe(recs))
	}

	// A command that runs is stopped.
	ids = send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","exec sleep 60"],"methodTimeout":120}`)
	natstest.Eventually(t, 30*time.Second, "the command running", func() bool {
		recs, err := c.Status(t.Context(), ids[0])
		return err == nil && recs[0].Status == status.Running
	})
	res, err = c.Cancel(t.Context(), ids[0])
	if err != nil || len(res) != 1 || res[0].Outcome != "stopping" || res[0].StopID == "" {
		t.Fatalf("cancel while it runs: %+v %v", res, err)
	}
	if r := wait(t, c, ids, 30*time.Second)[0]; r.Status != status.Cancelled || !strings.Contains(r.Error, "stopped by REQOpProcessStop from central") {
		t.Errorf("the stopped command: %s %s", r.Status, r.Error)
	}
	// A message that ended is left as it is.
	res, err = c.Cancel(t.Context(), ids[0])
	if err != nil || res[0].Outcome != "cancelled" || res[0].Detail != "it had already ended" {
		t.Errorf("cancel again: %+v %v", res, err)
	}
}
