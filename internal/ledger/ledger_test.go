package ledger_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/ledger"
)

func open(t *testing.T, path string, now func() time.Time) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(path, ledger.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestStatesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := open(t, path, nil)
	exp := time.Now().Add(time.Hour)
	code := 3
	must(t, l.Start("m1.ship1", 1, exp))
	must(t, l.Start("m2.ship1", 1, exp))
	must(t, l.Complete("m2.ship1", &ledger.Outcome{Status: "failed", ExitCode: &code, Output: []byte("out")}))
	must(t, l.Start("m3.ship1", 2, exp))
	must(t, l.Complete("m3.ship1", &ledger.Outcome{Status: "succeeded"}))
	must(t, l.Finish("m3.ship1"))
	l.Close()

	l = open(t, path, nil)
	if e, ok := l.Get("m1.ship1"); !ok || e.State != ledger.Started || e.Attempt != 1 || !e.Expires.Equal(exp) {
		t.Errorf("m1: %+v %v", e, ok)
	}
	if e, ok := l.Get("m2.ship1"); !ok || e.State != ledger.Completed || string(e.Outcome.Output) != "out" || *e.Outcome.ExitCode != 3 {
		t.Errorf("m2: %+v %v", e, ok)
	}
	if e, ok := l.Get("m3.ship1"); !ok || e.State != ledger.Finished || e.Outcome != nil || e.Attempt != 2 {
		t.Errorf("m3 should be finished with payload dropped: %+v %v", e, ok)
	}
	if _, ok := l.Get("m4.ship1"); ok {
		t.Error("unknown id found")
	}
	if got := len(l.Unfinished()); got != 2 {
		t.Errorf("Unfinished = %d, want 2", got)
	}
}

func TestExpiredEntriesAreDroppedOnCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	now := time.Now()
	clock := func() time.Time { return now }
	l := open(t, path, clock)
	must(t, l.Start("old", 1, now.Add(time.Minute)))
	must(t, l.Start("new", 1, now.Add(time.Hour)))
	l.Close()
	now = now.Add(10 * time.Minute)
	l = open(t, path, clock)
	if _, ok := l.Get("old"); ok {
		t.Error("expired entry kept")
	}
	if _, ok := l.Get("new"); !ok {
		t.Error("live entry dropped")
	}
}

func TestTornLastLineIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := open(t, path, nil)
	must(t, l.Start("a", 1, time.Now().Add(time.Hour)))
	l.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"b","state":"comp`) // a crash mid-write
	f.Close()
	l = open(t, path, nil)
	if _, ok := l.Get("a"); !ok {
		t.Error("entry before the torn line lost")
	}
	if _, ok := l.Get("b"); ok {
		t.Error("torn entry applied")
	}
	must(t, l.Start("c", 1, time.Now().Add(time.Hour)))
	l.Close()
	l = open(t, path, nil)
	if _, ok := l.Get("c"); !ok {
		t.Error("entry written after recovery lost")
	}
}

func TestClosedLedgerRefusesWrites(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "l.jsonl"), nil)
	l.Close()
	if err := l.Finish("x"); err == nil {
		t.Error("write after close succeeded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
