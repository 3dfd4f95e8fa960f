package fleettest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLineHas(t *testing.T) {
	out := "NODE   STATE    LAST SEEN\ncentral online   1s\nship1  offline  5s\nship10 online 1s\n"
	for _, tc := range []struct {
		first, word string
		want        bool
	}{
		{"central", "online", true},
		{"ship1", "online", false},
		{"ship1", "offline", true},
		{"ship10", "online", true},
		{"ship", "online", false},
		{"NODE", "online", false},
	} {
		if got := LineHas(out, tc.first, tc.word); got != tc.want {
			t.Errorf("LineHas(%q, %q) = %v, want %v", tc.first, tc.word, got, tc.want)
		}
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if !Poll(5*time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("Poll gave up on a condition that came true")
	}
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
	began := time.Now()
	if Poll(250*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
	if d := time.Since(began); d < 250*time.Millisecond {
		t.Errorf("Poll gave up after %s, before its timeout", d)
	}
}

func TestNoteAndLogTail(t *testing.T) {
	f := &Fleet{t: t, root: t.TempDir()}
	if err := os.MkdirAll(f.Dir("ship1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.Dir("ship1"), "node.log"), []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.Note("ship1", "stopped with %s", "SIGKILL")
	got := f.LogTail("ship1", 2)
	lines := strings.Split(got, "\n")
	if len(lines) != 3 || lines[0] != "--- ship1's log (tail):" || lines[1] != "three" ||
		!strings.HasPrefix(lines[2], "=== harness ") || !strings.HasSuffix(lines[2], ": stopped with SIGKILL") {
		t.Errorf("LogTail:\n%s", got)
	}
}
