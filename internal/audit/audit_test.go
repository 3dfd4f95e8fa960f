package audit_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/message"
)

func open(t testing.TB, path, node string) *audit.Log {
	t.Helper()
	l, err := audit.Open(path, node)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readLines decodes every line of path, failing on any that is not one
// JSON record.
func readLines(t testing.TB, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, audit.MaxLine+1)
	for n := 1; sc.Scan(); n++ {
		var r audit.Record
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %d is not one JSON record (%v): %.200q", n, err, sc.Text())
		}
		if dec.More() {
			t.Fatalf("line %d holds more than one record: %.200q", n, sc.Text())
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteFillsTimeAndNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", ".steward", "audit.jsonl") // the folder is created
	l := open(t, path, "ship1")
	given := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exit := 3
	cases := []struct {
		name string
		in   audit.Record
	}{
		{"no time", audit.Record{Event: audit.Sent, Message: &message.Message{ToNode: "ship2", Method: "REQPing", ID: "M1"}}},
		{"own time", audit.Record{Time: given, Event: audit.Processed, DeliveryID: "M1.ship1", Status: "failed", Attempt: 2, ExitCode: &exit}},
		{"node is overwritten", audit.Record{Node: "someone-else", Event: audit.Refused, Error: "bad input"}},
	}
	before := time.Now().UTC()
	for _, tc := range cases {
		if err := l.Write(tc.in); err != nil {
			t.Fatalf("Write %s: %v", tc.name, err)
		}
	}
	lines := readLines(t, path)
	if len(lines) != len(cases) {
		t.Fatalf("%d lines, want %d", len(lines), len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := lines[i]
			if got.Node != "ship1" {
				t.Errorf("node %q, want ship1", got.Node)
			}
			if got.Event != tc.in.Event {
				t.Errorf("event %q, want %q", got.Event, tc.in.Event)
			}
			switch {
			case !tc.in.Time.IsZero():
				if !got.Time.Equal(tc.in.Time) {
					t.Errorf("time %s, want the given %s", got.Time, tc.in.Time)
				}
			case got.Time.IsZero() || got.Time.Before(before.Add(-time.Second)):
				t.Errorf("time %s not filled in", got.Time)
			}
		})
	}
	if m := lines[0].Message; m == nil || m.ID != "M1" || m.ToNode != "ship2" || m.Method != "REQPing" {
		t.Errorf("the message did not survive: %+v", lines[0].Message)
	}
	if r := lines[1]; r.DeliveryID != "M1.ship1" || r.Status != "failed" || r.Attempt != 2 || r.ExitCode == nil || *r.ExitCode != 3 {
		t.Errorf("processed record: %+v", r)
	}
}

// TestFileMode: the log, its lock and the rotated files are readable by
// their owner only.
func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openWith(t, path, "ship1", audit.Options{MaxSize: 1, Now: newClock().Now})
	write(t, l, audit.Record{Event: audit.Sent})
	write(t, l, audit.Record{Event: audit.Sent}) // rotates the first away
	files := append(logFiles(t, path), path+".lock")
	if len(files) != 3 {
		t.Fatalf("files %v, want a rotated file, the log and its lock", files)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s mode %o: readable by others", filepath.Base(f), perm)
		}
	}
}

func TestNilLogIsANoOp(t *testing.T) {
	var l *audit.Log
	if err := l.Write(audit.Record{Event: audit.Sent}); err != nil {
		t.Errorf("Write on nil: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close on nil: %v", err)
	}
}

// TestFor: Logs made with For write to the same file, each line with its
// own node, and share Close.
func TestFor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := open(t, path, "ship1")
	other := l.For("ship2")
	for i, w := range []*audit.Log{l, other, l, other} {
		if err := w.Write(audit.Record{Event: audit.Processed, DeliveryID: fmt.Sprintf("M%d.x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, path)
	want := []string{"ship1", "ship2", "ship1", "ship2"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, r := range lines {
		if r.Node != want[i] {
			t.Errorf("line %d: node %q, want %q", i+1, r.Node, want[i])
		}
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(audit.Record{Event: audit.Sent}); err != nil {
		t.Errorf("Write after the other Log's Close: %v", err)
	}
	if n := len(readLines(t, path)); n != len(want) {
		t.Errorf("%d lines after Close, want %d", n, len(want))
	}
	var none *audit.Log
	if none.For("ship3") != nil {
		t.Error("For of a nil Log is not nil")
	}
}

func TestWriteAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, "ship1")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(audit.Record{Event: audit.Sent}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(audit.Record{Event: audit.Sent}); err != nil {
		t.Errorf("Write after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := len(readLines(t, path)); n != 1 {
		t.Errorf("%d lines, want 1", n)
	}
}

// bigRecord is a record whose line is several pages long, so that a write
// that is not one call would show.
func bigRecord(writer, i int) audit.Record {
	data := strings.Repeat(fmt.Sprintf("w%d-%d ", writer, i), 1+(i%5)*600)
	return audit.Record{Event: audit.Processed, DeliveryID: fmt.Sprintf("%d.%d", writer, i),
		Message: &message.Message{ToNode: "ship1", Method: "REQCliCommand", Data: message.Data(data)}}
}

// checkAll verifies that every (writer, i) record is there exactly once,
// whole.
func checkAll(t testing.TB, lines []audit.Record, writers, each int) {
	t.Helper()
	if len(lines) != writers*each {
		t.Errorf("%d lines, want %d", len(lines), writers*each)
	}
	seen := map[string]bool{}
	for _, r := range lines {
		if seen[r.DeliveryID] {
			t.Errorf("record %s twice", r.DeliveryID)
		}
		seen[r.DeliveryID] = true
		var w, i int
		if _, err := fmt.Sscanf(r.DeliveryID, "%d.%d", &w, &i); err != nil {
			t.Fatalf("delivery id %q: %v", r.DeliveryID, err)
		}
		if want := bigRecord(w, i).Message.Data; r.Message == nil || string(r.Message.Data) != string(want) {
			t.Errorf("record %s: data damaged", r.DeliveryID)
		}
	}
}

func TestConcurrentWritersDoNotInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := open(t, path, "ship1")
	const writers, each = 16, 25
	writeAtOnce(t, writers, each, func(int) *audit.Log { return l })
	checkAll(t, readLines(t, path), writers, each)
}

// writeAtOnce has writers write each records at once, writer w through
// log(w).
func writeAtOnce(t *testing.T, writers, each int, log func(w int) *audit.Log) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		l := log(w)
		wg.Go(func() {
			for i := range each {
				if err := l.Write(bigRecord(w, i)); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestTwoLogsOnOneFile: a node and `steward send` beside it each open the
// file; their lines are appended without loss.
func TestTwoLogsOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const writers, each = 2, 100
	var wg sync.WaitGroup
	for w := range writers {
		l := open(t, path, fmt.Sprintf("proc%d", w))
		wg.Go(func() {
			for i := range each {
				if err := l.Write(bigRecord(w, i)); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	lines := readLines(t, path)
	checkAll(t, lines, writers, each)
	nodes := map[string]int{}
	for _, r := range lines {
		nodes[r.Node]++
	}
	if nodes["proc0"] != each || nodes["proc1"] != each {
		t.Errorf("lines per log: %v", nodes)
	}
}

// TestReopenAppends: opening the log again appends to it.
func TestReopenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	for i := range 2 {
		l, err := audit.Open(path, "ship1")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(audit.Record{Event: audit.Sent, DeliveryID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, path)
	if len(lines) != 2 || lines[0].DeliveryID != "0" || lines[1].DeliveryID != "1" {
		t.Errorf("after reopening: %+v", lines)
	}
}

// BenchmarkWrite is one sent record of a typical message, with rotation
// checks, to a log that does not rotate during the run.
func BenchmarkWrite(b *testing.B) {
	l, r := benchLog(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Write(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteParallel is BenchmarkWrite from 64 writers at once, as a
// node with 64 deliveries in flight writes.
func BenchmarkWriteParallel(b *testing.B) {
	l, r := benchLog(b)
	b.ReportAllocs()
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Write(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchLog(b *testing.B) (*audit.Log, audit.Record) {
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	l, err := audit.OpenWith(path, "ship1", audit.Options{MaxSize: -1, MaxAge: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	r := audit.Record{Event: audit.Sent, Message: &message.Message{
		ToNode: "ship1", Method: "REQCliCommand", MethodArgs: []string{"bash", "-c", "sleep 5 & tree ./"},
		ReplyMethod: "REQToFileAppend", ACKTimeout: 5, MethodTimeout: 10, ID: "01JDZ7Q1V2N3C4X5Y6Z7A8B9C0",
		FromNode: "central", Directory: "/var/cli/command_result/", FileName: "some-file-name.result",
		SentAt: time.Date(2026, 11, 29, 8, 30, 0, 0, time.UTC), Data: message.Data("some input\n"),
	}}
	return l, r
}
