package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/status"
)

// steward send --wait of a repeated message prints its runs and waits for
// every one of them.
func TestRepeatFromTheCLI(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	f.WaitOnline("central", "ship1")
	file := filepath.Join(t.TempDir(), "repeat.json")
	if err := os.WriteFile(file, []byte(`{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","again"],"repeat":3,"repeatInterval":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res, code := f.sendWait(file)
	if code != 0 || len(res.Records) != 3 || len(res.Receipts) != 1 || len(res.Receipts[0].Runs) != 2 {
		t.Fatalf("exit %d, receipts %+v, records %+v", code, res.Receipts, res.Records)
	}
	for _, r := range res.Records {
		if r.Status != status.Succeeded || r.Output != "again\n" {
			t.Errorf("%s: %s %q", r.ID, r.Status, r.Output)
		}
	}
	out, _, _ := f.Steward("central", nil, "send", "-f", file)
	if fields := strings.Fields(out); len(fields) != 5 || fields[3] != "runs" || strings.Count(fields[4], ",") != 1 {
		t.Errorf("send printed %q, want <id> <method> <nodes> runs <id>r2,<id>r3", out)
	}
}
