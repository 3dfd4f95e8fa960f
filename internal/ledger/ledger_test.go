package ledger_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/ledger"
)

// clock is a movable time for the ledger.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 29, 8, 30, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func open(t *testing.T, dir string, c *clock) *ledger.Ledger {
	t.Helper()
	opts := ledger.Options{}
	if c != nil {
		opts.Now = c.Now
	}
	l, err := ledger.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestStatesSurviveReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, nil)
	exp := time.Now().Add(time.Hour)
	code := 3
	for _, id := range []string{"m1.ship1", "m2.ship1", "m3.ship1", "m4.ship1"} {
		if _, err := l.Start(id, 0, exp); err != nil {
			t.Fatal(err)
		}
	}
	must(t, l.Complete("m2.ship1", exp, &ledger.Outcome{Status: "failed", ExitCode: &code, Output: []byte("out")}))
	must(t, l.Complete("m3.ship1", exp, &ledger.Outcome{Status: "succeeded", Output: []byte("big")}))
	must(t, l.Finish("m3.ship1"))
	must(t, l.Refuse("m4.ship1", 0, exp, &ledger.Outcome{Status: "undeliverable", Error: "retries spent"}))
	must(t, l.Close())

	l = open(t, dir, nil)
	if e, ok := l.Get("m1.ship1"); !ok || e.State != ledger.Started || e.Runs != 1 || e.State.Final() {
		t.Errorf("m1 should be started once: %+v %v", e, ok)
	}
	if e, ok := l.Get("m2.ship1"); !ok || e.State != ledger.Completed || string(e.Outcome.Output) != "out" || *e.Outcome.ExitCode != 3 || !e.Expires.Equal(exp) {
		t.Errorf("m2: %+v %v", e, ok)
	}
	if e, ok := l.Get("m3.ship1"); !ok || e.State != ledger.Finished || e.Outcome != nil || e.FinalStatus != "succeeded" {
		t.Errorf("m3 should be finished with its output dropped: %+v %v", e, ok)
	}
	if e, ok := l.Get("m4.ship1"); !ok || e.State != ledger.Refused || !e.State.Final() || e.Outcome.Status != "undeliverable" {
		t.Errorf("m4 should be refused: %+v %v", e, ok)
	}
	if _, ok := l.Get("m5.ship1"); ok {
		t.Error("unknown id found")
	}
}

func TestRunsAreCountedAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	exp := time.Now().Add(time.Hour)
	for want := 1; want <= 3; want++ {
		l := open(t, dir, nil)
		run, err := l.Start("crashy.ship1", 0, exp)
		if err != nil || run != want {
			t.Fatalf("run %d, %v; want %d", run, err, want)
		}
		// No Complete: the node "crashed" mid-run. Close only releases the files.
		l.Close()
	}
}

func TestTheMessagesSequenceIsKeptToTheEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, nil)
	exp := time.Now().Add(time.Hour)
	if _, err := l.Start("ran.ship1", 41, exp); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Start("ran.ship1", 99, exp); err != nil { // a rerun keeps the first sequence
		t.Fatal(err)
	}
	must(t, l.Complete("ran.ship1", exp, &ledger.Outcome{Status: "succeeded"}))
	must(t, l.Finish("ran.ship1"))
	must(t, l.Refuse("refused.ship1", 42, exp, &ledger.Outcome{Status: "rejected"}))
	must(t, l.Finish("refused.ship1"))
	must(t, l.Close())

	l = open(t, dir, nil)
	for id, want := range map[string]uint64{"ran.ship1": 41, "refused.ship1": 42} {
		if e, ok := l.Get(id); !ok || e.State != ledger.Finished || e.Seq != want {
			t.Errorf("%s: %+v %v; want finished with sequence %d", id, e, ok, want)
		}
	}
}

// The lines a streaming delivery numbered survive a crash and a rerun, so
// the rerun numbers on.
func TestStreamedLinesSurviveARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, nil)
	exp := time.Now().Add(time.Hour)
	if _, err := l.Start("cont.ship1", 7, exp); err != nil {
		t.Fatal(err)
	}
	must(t, l.Progress("cont.ship1", 120))
	must(t, l.Progress("cont.ship1", 250))
	if err := l.Progress("unknown.ship1", 1); !errors.Is(err, ledger.ErrUnknown) {
		t.Errorf("progress of an unknown delivery: %v", err)
	}
	l.Close() // a crash: no Complete

	l = open(t, dir, nil)
	if e, _ := l.Get("cont.ship1"); e.Lines != 250 || e.Runs != 1 {
		t.Fatalf("after the restart: %+v, want 250 lines numbered in run 1", e)
	}
	if run, err := l.Start("cont.ship1", 9, exp); err != nil || run != 2 {
		t.Fatalf("rerun: %d %v", run, err)
	}
	must(t, l.Complete("cont.ship1", exp, &ledger.Outcome{Status: "succeeded"}))
	if e, _ := l.Get("cont.ship1"); e.Lines != 250 || e.Seq != 7 {
		t.Errorf("completed: %+v, want its 250 lines and first sequence kept", e)
	}
}

func TestFinalDeliveriesCannotStartAgain(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger"), nil)
	exp := time.Now().Add(time.Hour)
	must(t, l.Refuse("r.ship1", 0, exp, &ledger.Outcome{Status: "rejected"}))
	if _, err := l.Start("r.ship1", 0, exp); err == nil {
		t.Error("a refused delivery started")
	}
	if _, err := l.Start("c.ship1", 0, exp); err != nil {
		t.Fatal(err)
	}
	must(t, l.Complete("c.ship1", exp, &ledger.Outcome{Status: "succeeded"}))
	if _, err := l.Start("c.ship1", 0, exp); err == nil {
		t.Error("a completed delivery started")
	}
}

func TestDurableRecordsAreOnDiskWhenTheyReturn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, nil)
	exp := time.Now().Add(time.Hour)
	read := func() string {
		t.Helper()
		var all strings.Builder
		names, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			all.Write(b)
		}
		return all.String()
	}
	// No Close: a process killed now must still find each record.
	if _, err := l.Start("a", 0, exp); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(read(), `"id":"a","state":"started","runs":1`) {
		t.Fatalf("started record not on disk: %q", read())
	}
	must(t, l.Complete("a", exp, &ledger.Outcome{Status: "succeeded"}))
	if !strings.Contains(read(), `"id":"a","state":"completed"`) {
		t.Fatalf("completed record not on disk: %q", read())
	}
	must(t, l.Refuse("b", 0, exp, &ledger.Outcome{Status: "rejected"}))
	if !strings.Contains(read(), `"id":"b","state":"refused"`) {
		t.Fatalf("refused record not on disk: %q", read())
	}
}

func TestFinishIsWrittenSoonWithoutAnotherRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, nil)
	exp := time.Now().Add(time.Hour)
	must(t, l.Complete("a", exp, &ledger.Outcome{Status: "succeeded"}))
	must(t, l.Finish("a"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		names, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		var all []byte
		for _, n := range names {
			b, _ := os.ReadFile(n)
			all = append(all, b...)
		}
		if strings.Contains(string(all), `"state":"finished"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("finished record not written: %q", all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFinishOfAnUnknownDeliveryIsAnError(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger"), nil)
	if err := l.Finish("never.seen"); !errors.Is(err, ledger.ErrUnknown) {
		t.Errorf("got %v", err)
	}
}

// The ledger is shaped for expiry: a segment per expiry hour, deleted
// whole once the hour has passed, with the entries it held.
func TestExpiredSegmentsAreDeletedWhole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	c := newClock()
	l := open(t, dir, c)
	soon, later := c.Now().Add(30*time.Minute), c.Now().Add(5*time.Hour)
	for i := range 100 {
		id := fmt.Sprintf("soon%d.ship1", i)
		must(t, l.Complete(id, soon, &ledger.Outcome{Status: "succeeded"}))
		must(t, l.Finish(id))
	}
	must(t, l.Complete("later.ship1", later, &ledger.Outcome{Status: "succeeded"}))
	if got := len(l.Segments()); got != 2 {
		t.Fatalf("%d segments, want 2: %v", got, l.Segments())
	}
	c.Add(2 * time.Hour)
	must(t, l.Complete("trigger.ship1", later, &ledger.Outcome{Status: "succeeded"})) // a write sweeps
	if got := l.Len(); got != 2 {
		t.Errorf("%d entries after the sweep, want 2", got)
	}
	if _, ok := l.Get("soon7.ship1"); ok {
		t.Error("an expired entry is still remembered")
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if len(names) != 1 {
		t.Errorf("files on disk: %v, want one segment", names)
	}
	must(t, l.Close())

	// Reopened past the expiry of everything: nothing is left.
	c.Add(10 * time.Hour)
	l = open(t, dir, c)
	if l.Len() != 0 {
		t.Errorf("%d entries remembered past their expiry", l.Len())
	}
	names, _ = filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if len(names) != 0 {
		t.Errorf("expired segments left on disk: %v", names)
	}
}

func TestTornLastLineIsIgnored(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, nil)
	exp := time.Now().Add(time.Hour)
	must(t, l.Complete("a", exp, &ledger.Outcome{Status: "succeeded"}))
	must(t, l.Close())
	names, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	f, err := os.OpenFile(names[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"b","state":"compl`)
	f.Close()
	l = open(t, dir, nil)
	if _, ok := l.Get("a"); !ok {
		t.Error("entry before the torn line lost")
	}
	if _, ok := l.Get("b"); ok {
		t.Error("torn entry read")
	}
}

func TestLegacyLedgerIsImported(t *testing.T) {
	state := t.TempDir()
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	old := `{"id":"done.ship1","state":"finished","expires":"` + exp + `","at":"2026-11-28T10:00:00Z"}
{"id":"half.ship1","state":"completed","attempt":1,"expires":"` + exp + `","at":"2026-11-28T10:00:00Z","outcome":{"status":"succeeded","output":"aGk="}}
{"id":"gone.ship1","state":"finished","expires":"2020-01-01T00:00:00Z","at":"2019-12-31T00:00:00Z"}
`
	if err := os.WriteFile(filepath.Join(state, "ledger.jsonl"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	l := open(t, filepath.Join(state, "ledger"), nil)
	if e, ok := l.Get("done.ship1"); !ok || e.State != ledger.Finished {
		t.Errorf("done: %+v %v", e, ok)
	}
	if e, ok := l.Get("half.ship1"); !ok || e.State != ledger.Completed || string(e.Outcome.Output) != "hi" {
		t.Errorf("half: %+v %v", e, ok)
	}
	if _, ok := l.Get("gone.ship1"); ok {
		t.Error("expired legacy entry imported")
	}
	if _, err := os.Stat(filepath.Join(state, "ledger.jsonl")); !os.IsNotExist(err) {
		t.Errorf("legacy file left behind: %v", err)
	}
}

// A full disk: the segment the record goes to is /dev/full, where every
// write fails with ENOSPC.
func TestFailedWriteRecordsNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, nil)
	exp := time.Now().Add(time.Hour)
	must(t, os.Symlink("/dev/full", filepath.Join(dir, exp.UTC().Format("20060102T15")+".jsonl")))
	if _, err := l.Start("x", 0, exp); err == nil {
		t.Fatal("start succeeded on a full disk")
	}
	if _, ok := l.Get("x"); ok {
		t.Error("a started record that was not written is remembered")
	}
	if err := l.Complete("y", exp, &ledger.Outcome{Status: "succeeded"}); err == nil {
		t.Fatal("complete succeeded on a full disk")
	}
	if _, ok := l.Get("y"); ok {
		t.Error("a completed record that was not written is remembered")
	}
}

func TestClosedLedgerRefusesWrites(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger"), nil)
	must(t, l.Close())
	if _, err := l.Start("a", 0, time.Now().Add(time.Hour)); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("got %v", err)
	}
}

func BenchmarkCompleteFinish(b *testing.B) {
	l, err := ledger.Open(filepath.Join(b.TempDir(), "ledger"), ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	exp := time.Now().Add(time.Hour)
	o := &ledger.Outcome{Status: "succeeded", Output: []byte("hello\n")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("m%d.ship1", i)
		i++
		if _, err := l.Start(id, 0, exp); err != nil {
			b.Fatal(err)
		}
		if err := l.Complete(id, exp, o); err != nil {
			b.Fatal(err)
		}
		if err := l.Finish(id); err != nil {
			b.Fatal(err)
		}
	}
}

// Where a run was about to append to a file survives a crash, and a
// rerun (run 2) still finds it: the rerun looks there before appending.
func TestAppendOffsetSurvivesARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, nil)
	exp := time.Now().Add(time.Hour)
	if _, err := l.Start("rep.central.reply.0", 3, exp); err != nil {
		t.Fatal(err)
	}
	if e, _ := l.Get("rep.central.reply.0"); e.AppendAt != nil {
		t.Fatalf("an offset before any was noted: %d", *e.AppendAt)
	}
	must(t, l.NoteAppend("rep.central.reply.0", 0)) // a new file: offset 0 is an offset
	if err := l.NoteAppend("unknown.ship1", 5); !errors.Is(err, ledger.ErrUnknown) {
		t.Errorf("note of an unknown delivery: %v", err)
	}
	l.Close() // a crash: no Complete

	l = open(t, dir, nil)
	if run, err := l.Start("rep.central.reply.0", 3, exp); err != nil || run != 2 {
		t.Fatalf("rerun: %d %v", run, err)
	}
	if e, _ := l.Get("rep.central.reply.0"); e.AppendAt == nil || *e.AppendAt != 0 {
		t.Fatalf("after the restart and the rerun's start: %+v, want the offset 0 kept", e)
	}
}
