package datafolder_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

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
