package ledger_test

import (
	"os"
	"path/filepath"
	"strings"
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
	must(t, l.Complete("m2.ship1", 1, exp, &ledger.Outcome{Status: "failed", ExitCode: &code, Output: []byte("out")}))
	must(t, l.Complete("m3.ship1", 2, exp, &ledger.Outcome{Status: "succeeded", Output: []byte("big")}))
	must(t, l.Finish("m3.ship1"))
	must(t, l.Close())

	l = open(t, path, nil)
	if e, ok := l.Get("m2.ship1"); !ok || e.State != ledger.Completed || string(e.Outcome.Output) != "out" || *e.Outcome.ExitCode != 3 || !e.Expires.Equal(exp) {
		t.Errorf("m2: %+v %v", e, ok)
	}
	if e, ok := l.Get("m3.ship1"); !ok || e.State != ledger.Finished || e.Outcome != nil || e.Attempt != 2 {
		t.Errorf("m3 should be finished with its output dropped: %+v %v", e, ok)
	}
	if _, ok := l.Get("m4.ship1"); ok {
		t.Error("unknown id found")
	}
}

func TestCompleteIsOnDiskWhenItReturns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := open(t, path, nil)
	must(t, l.Complete("a", 1, time.Now().Add(time.Hour), &ledger.Outcome{Status: "succeeded"}))
	// No Close: a process killed now must still find the record.
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), `"id":"a","state":"completed"`) {
		t.Fatalf("completed record not in the file: %q %v", b, err)
	}
}

func TestFinishIsWrittenSoonWithoutAnotherRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := open(t, path, nil)
	must(t, l.Complete("a", 1, time.Now().Add(time.Hour), &ledger.Outcome{Status: "succeeded"}))
	must(t, l.Finish("a"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), `"state":"finished"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("finished record never written: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExpiredEntriesAreDroppedOnCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	now := time.Now()
	clock := func() time.Time { return now }
	l := open(t, path, clock)
	must(t, l.Complete("old", 1, now.Add(time.Minute), &ledger.Outcome{}))
	must(t, l.Complete("new", 1, now.Add(time.Hour), &ledger.Outcome{}))
	must(t, l.Close())
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
	must(t, l.Complete("a", 1, time.Now().Add(time.Hour), &ledger.Outcome{}))
	must(t, l.Close())
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
	must(t, l.Complete("c", 1, time.Now().Add(time.Hour), &ledger.Outcome{}))
	must(t, l.Close())
	l = open(t, path, nil)
	if _, ok := l.Get("c"); !ok {
		t.Error("entry written after recovery lost")
	}
}

func TestCompactionKeepsLiveEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := open(t, path, nil)
	big := make([]byte, 1<<20)
	exp := time.Now().Add(time.Hour)
	// 20 MiB of outputs, finished: the file is compacted on the way.
	for i := range 20 {
		id := "m" + string(rune('a'+i))
		must(t, l.Complete(id, 1, exp, &ledger.Outcome{Output: big}))
		must(t, l.Finish(id))
	}
	must(t, l.Close())
	if fi, err := os.Stat(path); err != nil || fi.Size() > 8<<20 {
		t.Fatalf("ledger not compacted: %v %v", fi.Size(), err)
	}
	l = open(t, path, nil)
	if l.Len() != 20 {
		t.Errorf("%d entries after compaction, want 20", l.Len())
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
