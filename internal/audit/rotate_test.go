package audit_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/message"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 29, 8, 30, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openWith(t testing.TB, path, node string, o audit.Options) *audit.Log {
	t.Helper()
	l, err := audit.OpenWith(path, node, o)
	if err != nil {
		t.Fatalf("OpenWith: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func write(t testing.TB, l *audit.Log, r audit.Record) {
	t.Helper()
	if err := l.Write(r); err != nil {
		t.Fatalf("Write %s: %v", r.DeliveryID, err)
	}
}

// rotatedName is the name of a file rotated away from audit.jsonl.
var rotatedName = regexp.MustCompile(`^audit\.\d{8}T\d{6}\.\d{3}Z\.jsonl$`)

// logFiles lists the files of the log at path, oldest first: the rotated
// ones by name, then the live one. Any other file than these and the lock
// file fails the test.
func logFiles(t testing.TB, path string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	live := false
	for _, e := range entries {
		switch name := e.Name(); {
		case name == filepath.Base(path):
			live = true
		case name == filepath.Base(path)+".lock":
		case rotatedName.MatchString(name):
			files = append(files, filepath.Join(filepath.Dir(path), name))
		default:
			t.Errorf("unexpected file %s beside the log", name)
		}
	}
	sort.Strings(files)
	if live {
		files = append(files, path)
	}
	return files
}

// readAll reads the records of every file of the log, oldest first.
func readAll(t testing.TB, path string) []audit.Record {
	t.Helper()
	var all []audit.Record
	for _, f := range logFiles(t, path) {
		all = append(all, readLines(t, f)...)
	}
	return all
}

// checkBounded fails when a file holds more than one line and is larger
// than maxSize.
func checkBounded(t testing.TB, path string, maxSize int64) {
	t.Helper()
	for _, f := range logFiles(t, path) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(readLines(t, f)); fi.Size() > maxSize && n > 1 {
			t.Errorf("%s: %d bytes in %d lines, over the %d limit", filepath.Base(f), fi.Size(), n, maxSize)
		}
	}
}

func TestRotateBySize(t *testing.T) {
	cases := []struct {
		name    string
		maxSize int64
		each    int
	}{
		{"many lines a file", 64 << 10, 60},
		{"a few lines a file", 20 << 10, 40},
		{"lines larger than a file", 1000, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			c := newClock()
			l := openWith(t, path, "ship1", audit.Options{MaxSize: tc.maxSize, Keep: -1, Now: c.Now})
			for i := range tc.each {
				c.Add(time.Millisecond)
				write(t, l, bigRecord(0, i))
			}
			if n := len(logFiles(t, path)); n < 3 {
				t.Errorf("%d files: the log was not rotated", n)
			}
			lines := readAll(t, path)
			checkAll(t, lines, 1, tc.each)
			for i, r := range lines {
				if want := fmt.Sprintf("0.%d", i); r.DeliveryID != want {
					t.Fatalf("line %d across the files is %s, want %s: files out of order", i, r.DeliveryID, want)
				}
			}
			checkBounded(t, path, tc.maxSize)
		})
	}
}

func TestRotateByAge(t *testing.T) {
	cases := []struct {
		name   string
		maxAge time.Duration
		// steps are the clock moves before each write.
		steps []time.Duration
		// files is the number of lines in each file, oldest first.
		files []int
	}{
		{"younger than MaxAge", time.Hour, []time.Duration{0, 30 * time.Minute, 29 * time.Minute}, []int{3}},
		{"at MaxAge", time.Hour, []time.Duration{0, 30 * time.Minute, 30 * time.Minute, time.Minute}, []int{2, 2}},
		{"age counts from the first line", time.Hour, []time.Duration{0, 50 * time.Minute, 50 * time.Minute, 50 * time.Minute}, []int{2, 2}},
		{"every line late", time.Hour, []time.Duration{0, 2 * time.Hour, 2 * time.Hour}, []int{1, 1, 1}},
		{"default is a day", 0, []time.Duration{0, 23 * time.Hour, time.Hour}, []int{2, 1}},
		{"negative never", -1, []time.Duration{0, 1000 * time.Hour, 1000 * time.Hour}, []int{3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			c := newClock()
			l := openWith(t, path, "ship1", audit.Options{MaxAge: tc.maxAge, MaxSize: -1, Keep: -1, Now: c.Now})
			var rotatedAt []string
			for i, d := range tc.steps {
				c.Add(d)
				before := len(logFiles(t, path))
				write(t, l, audit.Record{Event: audit.Sent, DeliveryID: fmt.Sprint(i)})
				if len(logFiles(t, path)) > before && before > 0 {
					rotatedAt = append(rotatedAt, c.Now().Format("20060102T150405.000Z"))
				}
			}
			files := logFiles(t, path)
			var got []int
			for _, f := range files {
				got = append(got, len(readLines(t, f)))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.files) {
				t.Fatalf("lines per file %v, want %v", got, tc.files)
			}
			for i, at := range rotatedAt {
				if want := "audit." + at + ".jsonl"; filepath.Base(files[i]) != want {
					t.Errorf("rotated file %s, want %s (the rotation time)", filepath.Base(files[i]), want)
				}
			}
		})
	}
}

// TestAgeSurvivesReopen: the age is read from the file, so a process that
// opens an old file (a restarted node) rotates it.
func TestAgeSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	c := newClock()
	o := audit.Options{MaxAge: time.Hour, Now: c.Now}
	l, err := audit.OpenWith(path, "ship1", o)
	if err != nil {
		t.Fatal(err)
	}
	write(t, l, audit.Record{Event: audit.Sent, DeliveryID: "old"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c.Add(2 * time.Hour)
	write(t, openWith(t, path, "ship1", o), audit.Record{Event: audit.Sent, DeliveryID: "new"})
	files := logFiles(t, path)
	if len(files) != 2 {
		t.Fatalf("files %v, want the old one rotated", files)
	}
	if old, live := readLines(t, files[0]), readLines(t, files[1]); len(old) != 1 || old[0].DeliveryID != "old" || len(live) != 1 || live[0].DeliveryID != "new" {
		t.Errorf("rotated %+v, live %+v", old, live)
	}
}

func TestKeep(t *testing.T) {
	cases := []struct {
		name    string
		keep    int
		wantOld int // rotated files left
	}{
		{"keep one", 1, 1},
		{"keep three", 3, 3},
		{"default ten", 0, 10},
		{"negative keeps all", -1, 13},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			c := newClock()
			l := openWith(t, path, "ship1", audit.Options{MaxSize: 1, Keep: tc.keep, Now: c.Now})
			const n = 14 // every line after the first rotates
			for i := range n {
				c.Add(time.Second)
				write(t, l, audit.Record{Event: audit.Sent, DeliveryID: fmt.Sprint(i)})
			}
			files := logFiles(t, path)
			if len(files) != tc.wantOld+1 {
				t.Fatalf("%d files, want %d rotated and the live one", len(files), tc.wantOld)
			}
			for i, r := range readAll(t, path) {
				if want := fmt.Sprint(n - tc.wantOld - 1 + i); r.DeliveryID != want {
					t.Errorf("line %d is %s, want %s: not the newest kept", i, r.DeliveryID, want)
				}
			}
		})
	}
}

// TestRotatedNamesStayInOrder: names are unique and sort in rotation order
// when rotations share a millisecond or the clock steps back.
func TestRotatedNamesStayInOrder(t *testing.T) {
	cases := []struct {
		name  string
		steps []time.Duration
	}{
		{"same millisecond", []time.Duration{0, 0, 100 * time.Microsecond, 0, 0}},
		{"clock steps back", []time.Duration{0, time.Second, -time.Hour, time.Millisecond, -time.Minute}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			c := newClock()
			l := openWith(t, path, "ship1", audit.Options{MaxSize: 1, MaxAge: -1, Keep: -1, Now: c.Now})
			for i, d := range tc.steps {
				c.Add(d)
				write(t, l, audit.Record{Event: audit.Sent, DeliveryID: fmt.Sprint(i)})
			}
			files := logFiles(t, path)
			if len(files) != len(tc.steps) {
				t.Fatalf("%d files, want %d", len(files), len(tc.steps))
			}
			for i, f := range files {
				if r := readLines(t, f); len(r) != 1 || r[0].DeliveryID != fmt.Sprint(i) {
					t.Errorf("file %d (%s) holds %+v, want line %d", i, filepath.Base(f), r, i)
				}
			}
		})
	}
}

// TestTwoLogsRotating: two Log values on one path (as two processes)
// write at once, both rotating; every line lands once, whole.
func TestTwoLogsRotating(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const logs, each, maxSize = 2, 150, 64 << 10
	writeAtOnce(t, logs, each, func(w int) *audit.Log {
		return openWith(t, path, fmt.Sprintf("proc%d", w), audit.Options{MaxSize: maxSize, Keep: -1})
	})
	if n := len(logFiles(t, path)); n < 5 {
		t.Errorf("%d files: the log hardly rotated", n)
	}
	checkAll(t, readAll(t, path), logs, each)
	checkBounded(t, path, maxSize)
}

// TestRotatedAwayWriterReopens: a Log whose file was rotated away by
// another, moved away or deleted writes its next line to path.
func TestRotatedAwayWriterReopens(t *testing.T) {
	cases := []struct {
		name string
		// away takes the file from b: a is another log on the path.
		away func(t *testing.T, path string, a *audit.Log)
		// old is where b's first line ends up ("" when deleted).
		old string
	}{
		{"rotated by another log", func(t *testing.T, _ string, a *audit.Log) {
			write(t, a, audit.Record{Event: audit.Sent, DeliveryID: "a0",
				Message: &message.Message{Method: "REQPing", Data: message.Data(make([]byte, 2000))}})
		}, "audit.20261129T083000.000Z.jsonl"},
		{"moved away", func(t *testing.T, path string, _ *audit.Log) {
			if err := os.Rename(path, path+".old"); err != nil {
				t.Fatal(err)
			}
		}, "audit.jsonl.old"},
		{"deleted", func(t *testing.T, path string, _ *audit.Log) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.jsonl")
			c := newClock()
			a := openWith(t, path, "a", audit.Options{MaxSize: 1000, Keep: -1, Now: c.Now})
			b := openWith(t, path, "b", audit.Options{Now: c.Now})
			write(t, b, audit.Record{Event: audit.Sent, DeliveryID: "b0"})
			tc.away(t, path, a)
			write(t, b, audit.Record{Event: audit.Sent, DeliveryID: "b1"})
			live := readLines(t, path)
			if n := len(live); n == 0 || live[n-1].DeliveryID != "b1" {
				t.Fatalf("live file %+v does not end with b1", live)
			}
			for _, r := range live {
				if r.DeliveryID == "b0" {
					t.Errorf("b0 still in the live file")
				}
			}
			if tc.old != "" {
				if old := readLines(t, filepath.Join(dir, tc.old)); len(old) != 1 || old[0].DeliveryID != "b0" {
					t.Errorf("%s holds %+v, want b0 only", tc.old, old)
				}
			}
		})
	}
}

// TestFailedRotationKeepsTheLine: when the file cannot be renamed, the line
// still goes to the log and the error says the log was not rotated.
func TestFailedRotationKeepsTheLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	c := newClock()
	// A folder where the rotated file would go.
	if err := os.Mkdir(filepath.Join(dir, "audit.20261129T083000.000Z.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := openWith(t, path, "ship1", audit.Options{MaxSize: 1, Now: c.Now})
	write(t, l, audit.Record{Event: audit.Sent, DeliveryID: "0"})
	if err := l.Write(audit.Record{Event: audit.Sent, DeliveryID: "1"}); !errors.Is(err, audit.ErrNotRotated) {
		t.Errorf("Write: %v, want ErrNotRotated", err)
	}
	if lines := readLines(t, path); len(lines) != 2 || lines[1].DeliveryID != "1" {
		t.Errorf("log holds %+v, want both lines", lines)
	}
	c.Add(time.Millisecond) // a free name: rotation works again
	write(t, l, audit.Record{Event: audit.Sent, DeliveryID: "2"})
	if lines := readLines(t, path); len(lines) != 1 || lines[0].DeliveryID != "2" {
		t.Errorf("log holds %+v after rotating, want line 2", lines)
	}
}

// Processes writing in TestProcessesRotating.
const procWriters, procEach, procMaxSize = 3, 100, 64 << 10

// TestProcessesRotating: separate processes (this test binary run again)
// write to one log at once, each rotating; every line lands once, whole.
func TestProcessesRotating(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cmds := make([]*exec.Cmd, procWriters)
	for w := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), "AUDIT_TEST_PATH="+path, "AUDIT_TEST_WRITER="+strconv.Itoa(w))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[w] = cmd
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer: %v", err)
		}
	}
	if n := len(logFiles(t, path)); n < 5 {
		t.Errorf("%d files: the log hardly rotated", n)
	}
	checkAll(t, readAll(t, path), procWriters, procEach)
	checkBounded(t, path, procMaxSize)
}

// TestHelperWriter is one writer process of TestProcessesRotating.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv("AUDIT_TEST_PATH")
	if path == "" {
		t.Skip("a writer process of TestProcessesRotating")
	}
	w, err := strconv.Atoi(os.Getenv("AUDIT_TEST_WRITER"))
	if err != nil {
		t.Fatal(err)
	}
	l := openWith(t, path, fmt.Sprintf("proc%d", w), audit.Options{MaxSize: procMaxSize, Keep: -1})
	for i := range procEach {
		write(t, l, bigRecord(w, i))
	}
}

// Lines that concurrent writers bring at once go out together, and still
// rotate as single lines would: every line whole and once, no file over
// MaxSize unless one line alone is.
func TestConcurrentWritersRotateBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const maxSize = 20 << 10
	l := openWith(t, path, "ship1", audit.Options{MaxSize: maxSize, Keep: -1})
	const writers, each = 16, 25
	writeAtOnce(t, writers, each, func(int) *audit.Log { return l })
	if n := len(logFiles(t, path)); n < 3 {
		t.Errorf("%d files: the log was not rotated", n)
	}
	checkAll(t, readAll(t, path), writers, each)
	checkBounded(t, path, maxSize)
}
