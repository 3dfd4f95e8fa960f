package console

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Pages of output end on whole characters and add up to the output.
func TestPageEnd(t *testing.T) {
	out := []byte(strings.Repeat("aé€😀", 1000)) // 1, 2, 3 and 4 bytes
	for _, size := range []int{1, 2, 3, 4, 5, 7, 64, 1000} {
		var joined []byte
		for offset := 0; offset < len(out); {
			end := pageEnd(out, offset, size)
			if end <= offset {
				t.Fatalf("size %d: no progress at %d", size, offset)
			}
			if !utf8.Valid(out[offset:end]) {
				t.Fatalf("size %d: page %d..%d cuts a character", size, offset, end)
			}
			joined = append(joined, out[offset:end]...)
			offset = end
		}
		if !bytes.Equal(joined, out) {
			t.Fatalf("size %d: pages do not add up", size)
		}
	}
	if got := pageEnd([]byte("abc"), 0, 10); got != 3 {
		t.Errorf("a short output: %d", got)
	}
}

// The error log is read again when it changes, and not otherwise.
func TestErrorLogReadsChanges(t *testing.T) {
	dir := t.TempDir()
	l := &errorLog{dir: dir}
	file := filepath.Join(dir, "ship1", "errors.log")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write("2026-11-29T17:00:00Z ship1: first\n  more of it\n")
	got := l.read("ship1", time.Time{})
	if len(got) != 1 || got[0].Text != "first\nmore of it" {
		t.Fatalf("first read: %+v", got)
	}
	write("2026-11-29T17:01:00Z ship1: second\n")
	got = l.read("ship1", time.Date(2026, 11, 29, 17, 0, 30, 0, time.UTC))
	if len(got) != 1 || got[0].Text != "second" {
		t.Fatalf("after an append, entries since 17:00:30: %+v", got)
	}
	if n := len(l.recent("", 10)); n != 2 {
		t.Fatalf("recent: %d entries, want 2", n)
	}
}
