package node_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/status"
)

// A message with repeat runs that many times, each run a message of its
// own with its own status, none before it is due.
func TestRepeat(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	ship1 := f.start(f.config("ship1"))
	c := f.client(central.cfg)
	receipts, err := c.Send(t.Context(), []byte(`{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo run >> runs"],
	  "repeat":3,"repeatInterval":2}`))
	if err != nil || len(receipts) != 1 || !receipts[0].OK() || len(receipts[0].Runs) != 2 {
		t.Fatalf("receipts %+v %v", receipts, err)
	}
	r := receipts[0]
	if r.Runs[0] != r.ID+"r2" || r.Runs[1] != r.ID+"r3" {
		t.Errorf("run IDs %v for %s", r.Runs, r.ID)
	}
	ids := append([]string{r.ID}, r.Runs...)
	recs := wait(t, c, ids, 60*time.Second)
	if len(recs) != 3 {
		t.Fatalf("records: %s", describe(recs))
	}
	for i, rec := range recs {
		due := recs[0].SentAt.Add(time.Duration(i) * 2 * time.Second)
		if rec.Status != status.Succeeded || rec.StartedAt.Before(due.Add(-50*time.Millisecond)) {
			t.Errorf("run %d: %s, started %s, due %s", i+1, rec.Status, rec.StartedAt.Format(time.RFC3339Nano), due.Format(time.RFC3339Nano))
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ship1.cfg.DataFolder, "runs")); strings.Count(string(b), "run\n") != 3 {
		t.Errorf("ran %q", b)
	}
	// Bad repeats are refused at once.
	for _, bad := range []string{`"repeat":3`, `"repeat":1001,"repeatInterval":1`, `"repeat":-1`, `"repeat":2,"repeatInterval":2592001`} {
		rs, err := c.Send(t.Context(), []byte(`{"toNode":"ship1","method":"REQPing",`+bad+`}`))
		if err != nil || len(rs) != 1 || rs[0].OK() || rs[0].Code != "field_value" {
			t.Errorf("%s: %+v %v", bad, rs, err)
		}
	}
}
