package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Lines queued while another Write holds the file go out in one write
// call, and each Write returns only once its own line is in the file.
// The write calls are counted by the kernel (/proc/self/io).
func TestQueuedLinesShareOneWrite(t *testing.T) {
	if _, ok := writeCalls(t); !ok {
		t.Skip("no /proc/self/io here")
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, "ship1")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const writers = 50
	l.f.mu.Lock() // a Write in progress: the others queue
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if err := l.Write(Record{Event: Processed, DeliveryID: strconv.Itoa(i)}); err != nil {
				t.Errorf("Write: %v", err)
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		l.f.qmu.Lock()
		n := len(l.f.queue)
		l.f.qmu.Unlock()
		if n == writers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines queued", n, writers)
		}
		time.Sleep(time.Millisecond)
	}
	before, _ := writeCalls(t)
	l.f.mu.Unlock()
	wg.Wait()
	after, _ := writeCalls(t)
	// One write for the lines; anything else in the process (the test's
	// own output, the runtime) may add a few.
	if calls := after - before; calls >= writers/2 {
		t.Errorf("%d write calls for %d queued lines: they were not written together", calls, writers)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for line := range bytes.Lines(b) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		seen[r.DeliveryID] = true
	}
	if len(seen) != writers || bytes.Count(b, []byte("\n")) != writers {
		t.Errorf("%d lines, %d distinct, want %d", bytes.Count(b, []byte("\n")), len(seen), writers)
	}
}

// writeCalls is the number of write calls the process has made.
func writeCalls(t *testing.T) (int64, bool) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "syscw: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n, true
		}
	}
	return 0, false
}
