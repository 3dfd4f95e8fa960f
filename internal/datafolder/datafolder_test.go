package datafolder_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/message"
)

func TestReplyPath(t *testing.T) {
	cases := []struct {
		dir, node, name, want string
		err                   error
	}{
		{"cli-command-executed-result", "ship1", "some.log", "cli-command-executed-result/ship1/some.log", nil},
		{"/var/cli/command_result/", "ship1", "x.result", "var/cli/command_result/ship1/x.result", nil},
		{"", "ship2", "f", "ship2/f", nil},
		{"../../etc", "ship1", "passwd", "", message.ErrBadPath},
		{"a", "ship1", "../../x", "", message.ErrBadPath},
		{"a", "ship1", "", "", message.ErrBadPath},
		{"a", "../x", "f", "", message.ErrBadNodeName},
	}
	for _, tc := range cases {
		got, err := datafolder.ReplyPath(tc.dir, tc.node, tc.name)
		if got != tc.want || !errors.Is(err, tc.err) && !(tc.err == nil && err == nil) {
			t.Errorf("ReplyPath(%q,%q,%q) = %q, %v; want %q, %v", tc.dir, tc.node, tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestWriteAndAppend(t *testing.T) {
	f, err := datafolder.Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	abs, err := f.Write("a/b/file", []byte("one\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write("a/b/file", []byte("two\n"), true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(abs); string(b) != "one\ntwo\n" {
		t.Errorf("append gave %q", b)
	}
	if _, err := f.Write("a/b/file", []byte("three\n"), false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(abs); string(b) != "three\n" {
		t.Errorf("replace gave %q", b)
	}
}

func TestSymlinkOutOfTheFolderIsRefused(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := datafolder.Open(filepath.Join(base, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Symlink(outside, filepath.Join(base, "data", "escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write("escape/ship1/f", []byte("x"), false); err == nil {
		t.Fatal("write through a symlink that leaves the data folder succeeded")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("something was written outside: %v", entries)
	}
}

func TestWriteAfterTheFolderWasRemoved(t *testing.T) {
	f, err := datafolder.Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write("out/ship1/log", []byte("one\n"), true); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(f.Dir(), "out")); err != nil {
		t.Fatal(err)
	}
	abs, err := f.Write("out/ship1/log", []byte("two\n"), true)
	if err != nil {
		t.Fatalf("write after the folder was removed: %v", err)
	}
	if b, _ := os.ReadFile(abs); string(b) != "two\n" {
		t.Errorf("got %q", b)
	}
}

func TestFolderSwappedForASymlinkStaysConfined(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := datafolder.Open(filepath.Join(base, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write("a/ship1/f", []byte("one\n"), true); err != nil {
		t.Fatal(err)
	}
	// Swap the folder for a link out of the data folder between writes.
	if err := os.Rename(filepath.Join(f.Dir(), "a"), filepath.Join(f.Dir(), "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.Dir(), "a")); err != nil {
		t.Fatal(err)
	}
	f.Write("a/ship1/f", []byte("two\n"), true) // may succeed inside, or fail: never outside
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("written outside the data folder: %v", entries)
	}
}

// A link planted inside the data folder must not lead a write into
// steward's state folder (inside the data folder, so the root alone would
// allow it): not as a folder on the way, not as the file itself.
func TestSymlinkIntoTheStateFolderIsRefused(t *testing.T) {
	dir := t.TempDir()
	f, err := datafolder.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	state := filepath.Join(dir, message.ReservedDataPath)
	ledger := filepath.Join(state, "ledger.jsonl")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ledger, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(message.ReservedDataPath, filepath.Join(dir, "planted")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "out", "ship1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..", "..", message.ReservedDataPath, "ledger.jsonl"), filepath.Join(dir, "out", "ship1", "result")); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"planted/ledger.jsonl", "planted/x/y", "out/ship1/result"} {
		if _, err := f.Write(rel, []byte("overwritten\n"), false); !errors.Is(err, message.ErrBadPath) {
			t.Errorf("write %s: %v, want ErrBadPath", rel, err)
		}
	}
	if b, _ := os.ReadFile(ledger); string(b) != "precious\n" {
		t.Errorf("the ledger now holds %q", b)
	}
	if _, err := f.Write("out/ship1/fine", []byte("ok\n"), false); err != nil {
		t.Errorf("an ordinary write: %v", err)
	}
}

// A rerun of an append after a crash (the earlier run said where it would
// write, then died before it could say it had) appends the data once in
// all: not again when it is there, the rest when the run died while
// writing, all of it when it never wrote.
func TestAppendIsNotRepeatedByARerun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	f, err := datafolder.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := []byte("ck00033 output\n")
	var noted []int64
	note := func(off int64) error { noted = append(noted, off); return nil }
	for _, tc := range []struct {
		name   string
		before string // the file as the crashed run left it
		prior  int64
		want   string
		wrote  bool
		notes  []int64
	}{
		{"written, then others appended", "x\n" + string(data) + "later\n", 2, "x\n" + string(data) + "later\n", false, nil},
		{"written, at the end", "x\n" + string(data), 2, "x\n" + string(data), false, nil},
		{"died while writing", "x\n" + string(data[:5]), 2, "x\n" + string(data), true, nil},
		{"died before writing", "x\n", 2, "x\n" + string(data), true, nil}, // the data still starts where noted
		{"no earlier run", "x\n", -1, "x\n" + string(data), true, []int64{2}},
		{"something else there", "x\nother line\n", 2, "x\nother line\n" + string(data), true, []int64{13}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel := "r/" + strings.ReplaceAll(tc.name, " ", "-")
			if _, err := f.Write(rel, []byte(tc.before), false); err != nil {
				t.Fatal(err)
			}
			noted = nil
			abs, wrote, err := f.Append(rel, data, tc.prior, note)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(abs); string(b) != tc.want || wrote != tc.wrote || !slices.Equal(noted, tc.notes) {
				t.Errorf("file %q wrote %v noted %v; want %q, %v, %v", b, wrote, noted, tc.want, tc.wrote, tc.notes)
			}
		})
	}
	// A note that cannot be recorded writes nothing.
	if _, _, err := f.Append("r/refused", data, -1, func(int64) error { return os.ErrPermission }); err == nil {
		t.Fatal("append went on without its note")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "r", "refused")); len(b) != 0 {
		t.Errorf("wrote %q without the note", b)
	}
}

// Writes to one file take turns; a write to another file does not wait
// for them. An append is held between noting its offset and writing (as
// a node's ledger write holds it) while the others go on.
func TestWritesTakeTurnsPerFile(t *testing.T) {
	f, err := datafolder.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	noted, release := make(chan int64), make(chan struct{})
	appended := make(chan error)
	go func() {
		_, _, err := f.Append("r/ship1/out", []byte("first\n"), -1, func(offset int64) error {
			noted <- offset
			<-release
			return nil
		})
		appended <- err
	}()
	<-noted
	// Another file, while the append is held: not held up.
	other := make(chan error, 1)
	go func() {
		_, err := f.Write("r/ship2/out", []byte("other\n"), true)
		other <- err
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a write to another file waited for the held append")
	}
	// The same file waits for the held append.
	second := make(chan error)
	go func() {
		_, err := f.Write("r/ship1/out", []byte("second\n"), true)
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("a write to the file went ahead of the held append (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(f.Dir(), "r", "ship1", "out"))
	if err != nil || string(b) != "first\nsecond\n" {
		t.Errorf("file %q (%v), want the held append first", b, err)
	}
}
