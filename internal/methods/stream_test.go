package methods

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// lines collects what a streaming method sends, line by line, as a node
// would number them.
type lines struct {
	mu     sync.Mutex
	got    []string
	ignore string // a probe line all leaves out
}

func (l *lines) Lines() io.Writer { return &lineCollector{l: l} }

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(l.got), func(s string) bool { return l.ignore != "" && s == l.ignore })
}

type lineCollector struct {
	l       *lines
	partial []byte
}

func (c *lineCollector) Write(p []byte) (int, error) {
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		c.l.mu.Lock()
		c.l.got = append(c.l.got, string(c.partial[:i]))
		c.l.mu.Unlock()
		c.partial = c.partial[i+1:]
	}
}

func waitLines(t *testing.T, l *lines, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Equal(l.all(), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("lines %q, want %q", l.all(), want)
}

func TestCLICommandContStreamsOutputAndErrors(t *testing.T) {
	env := testEnv(t)
	l := &lines{}
	m := &message.Message{Method: "REQCliCommandCont", MethodArgs: []string{"sh", "-c", "echo one; echo oops >&2; sleep 0.2; echo two; printf last"}}
	res, err := cliCommandCont.Handler(context.Background(), &Request{Msg: m, Env: env, Stream: l, Log: slog.New(slog.DiscardHandler)})
	if err != nil || *res.ExitCode != 0 || len(res.Output) != 0 {
		t.Fatalf("result %+v, %v: want exit 0 and the output streamed, not returned", res, err)
	}
	got := l.all()
	if !slices.Contains(got, "oops") || slices.Index(got, "one") > slices.Index(got, "two") || len(got) != 3 {
		t.Errorf("streamed %q (a last line without newline stays with its writer until the node closes the stream)", got)
	}
	if string(res.Stderr) != "oops\n" {
		t.Errorf("stderr kept for the status: %q", res.Stderr)
	}
}

// A command that does not end is killed with its group at the deadline;
// what it printed until then was streamed.
func TestCLICommandContStopsAtItsTimeout(t *testing.T) {
	env := testEnv(t)
	l := &lines{}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	m := &message.Message{Method: "REQCliCommandCont", MethodArgs: []string{"sh", "-c", "echo started; exec sleep 60"}}
	_, err := cliCommandCont.Handler(ctx, &Request{Msg: m, Env: env, Stream: l, Log: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	waitLines(t, l, "started")
}

func TestTailFileFollowsRotationAndTruncation(t *testing.T) {
	tailPoll = 20 * time.Millisecond
	env := testEnv(t)
	path := filepath.Join(env.Files.Dir(), "app.log")
	write := func(name, s string, flag int) {
		t.Helper()
		f, err := os.OpenFile(name, flag|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(path, "before the tail\n", os.O_APPEND)
	l := &lines{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := tailFile.Handler(ctx, &Request{Msg: &message.Message{Method: "REQTailFile", MethodArgs: []string{"app.log"}},
			Env: env, Stream: l, Log: slog.New(slog.DiscardHandler)})
		done <- err
	}()
	// Once the tail has opened the file and gone to its end, a line written
	// comes back: write one until it does, then start from a clean slate.
	deadline := time.Now().Add(10 * time.Second)
	for len(l.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tail never saw a line written after it started")
		}
		write(path, "ready\n", os.O_APPEND)
		time.Sleep(20 * time.Millisecond)
	}
	// It saw only probe lines, never the line from before it started; from
	// here on the probes (one may still be on its way) are left out.
	for _, got := range l.all() {
		if got != "ready" {
			t.Fatalf("the tail gave %q, from before it started", got)
		}
	}
	l.mu.Lock()
	l.ignore = "ready"
	l.mu.Unlock()
	write(path, "one\ntw", os.O_APPEND)
	write(path, "o\n", os.O_APPEND)
	waitLines(t, l, "one", "two")
	// Rotation: the old file is renamed and gets a last line; a new one is made.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(path+".1", "three\n", os.O_APPEND)
	write(path, "four\n", os.O_APPEND)
	waitLines(t, l, "one", "two", "three", "four")
	// Truncation: the file starts again (shorter than what was read).
	write(path, "5\n", os.O_TRUNC)
	waitLines(t, l, "one", "two", "three", "four", "5")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("the end of the watch: %v, want success", err)
	}
}

func TestTailFileOfAMissingFileFails(t *testing.T) {
	env := testEnv(t)
	_, err := tailFile.Handler(context.Background(), &Request{Msg: &message.Message{Method: "REQTailFile", MethodArgs: []string{"nope.log"}},
		Env: env, Stream: &lines{}, Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "nope.log") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err %v, want the file named and not found", err)
	}
	if err := validateTailFile(&message.Message{MethodArgs: []string{"a", "b"}}); !errors.Is(err, message.ErrFieldValue) {
		t.Errorf("two paths: %v", err)
	}
}
