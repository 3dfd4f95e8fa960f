package socket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/socket"
)

// echo answers each JSON value with its length and its first byte.
func echo(_ context.Context, input []byte) []byte {
	return fmt.Appendf(nil, "got %d bytes starting %c\n", len(input), input[0])
}

// answer is what echo answers to value.
func answer(value string) string { return string(echo(context.Background(), []byte(value))) }

var discard = slog.New(slog.DiscardHandler)

// socketPath is a fresh socket path. Unix socket paths are limited to about
// 100 bytes, which a nested t.TempDir can exceed, so it lives in a short
// temporary folder.
func socketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "run", "steward.sock")
}

// serve listens on path with the default options and serves until the
// test ends. It returns a function that stops the server and returns
// Serve's error.
func serve(t testing.TB, path string, h socket.Handler) (stop func() error) {
	t.Helper()
	return serveWith(t, path, h, discard, socket.Options{})
}

// serveWith is serve with a logger and options.
func serveWith(t testing.TB, path string, h socket.Handler, log *slog.Logger, opts socket.Options) (stop func() error) {
	t.Helper()
	srv, err := socket.ListenWith(path, h, log, opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(60 * time.Second):
				t.Errorf("Serve did not return after its context was cancelled")
			}
		})
		return serveErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

// talk connects to path, writes input without closing its writing side
// (as nc -U does) and returns everything the server wrote until it closed
// the connection.
func talk(t testing.TB, path, input string) string {
	t.Helper()
	out, err := exchange(path, input)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exchange is talk for goroutines other than the test's.
func exchange(path, input string) (string, error) {
	return send(path, strings.NewReader(input))
}

// send is exchange for large input. It writes while it reads, as nc does:
// a refused input is not read to its end.
func send(path string, input io.Reader) (string, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return "", fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		io.Copy(c, input)
	}()
	// The test's own bound, not a timing assertion: a server that never
	// closes fails here instead of hanging the test binary.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	out, err := io.ReadAll(c)
	c.Close()
	<-wrote
	// A server that closes with input unread resets the connection after
	// its answer.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return string(out), fmt.Errorf("read the answer (the server did not close the connection?): %w; got %q", err, out)
	}
	return string(out), nil
}

// eventually polls cond until it returns true, and fails the test if
// timeout passes first.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	serve(t, path, echo)
	cases := []struct {
		name, input string
		want        string // the whole answer
		wantError   bool   // the answer ends in one "error:" line after want
	}{
		{"array", `[{"toNode":"ship1","method":"REQPing"}]`, answer(`[{"toNode":"ship1","method":"REQPing"}]`), false},
		{"object with newline", "{\"toNode\":\"ship1\"}\n", answer(`{"toNode":"ship1"}`), false},
		{"two values", `[{"a":1}] {"b":2}`, answer(`[{"a":1}]`) + answer(`{"b":2}`), false},
		{"two values on two lines", "[1]\n[2,3]\n", answer("[1]") + answer("[2,3]"), false},
		{"malformed", `[{"toNode": oops}]`, "", true},
		{"good then malformed", `[1] {x}`, answer("[1]"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := talk(t, path, tc.input)
			if !tc.wantError {
				if got != tc.want {
					t.Errorf("answer %q, want %q", got, tc.want)
				}
				return
			}
			rest, ok := strings.CutPrefix(got, tc.want)
			if !ok || !strings.HasPrefix(rest, "error: invalid JSON input") || !strings.HasSuffix(rest, "\n") ||
				strings.Count(rest, "\n") != 1 {
				t.Errorf("answer %q, want %q and one line \"error: invalid JSON input…\"", got, tc.want)
			}
		})
	}
}

// TestClosedWriteSide: a client that closes its writing side after the
// input (as `nc -N` or a script does) is answered too.
func TestClosedWriteSide(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	serve(t, path, echo)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, `[{"x":1}]`); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil || string(out) != "got 9 bytes starting [\n" {
		t.Errorf("answer %q, %v", out, err)
	}
}

func TestHandlerSeesEachValue(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	got := make(chan string, 10)
	serve(t, path, func(_ context.Context, in []byte) []byte {
		got <- string(in)
		return []byte("ok\n")
	})
	if out := talk(t, path, "  {\"a\": [1, 2]}\n\n[ 3 ]"); out != "ok\nok\n" {
		t.Errorf("answer %q", out)
	}
	for _, want := range []string{`{"a": [1, 2]}`, `[ 3 ]`} {
		select {
		case in := <-got:
			if in != want {
				t.Errorf("handler got %q, want %q", in, want)
			}
		default:
			t.Errorf("handler did not get %q", want)
		}
	}
}

func TestSocketMode(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	serve(t, path, echo)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s is not a socket: %s", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %o, want 600", perm)
	}
}

// TestStaleSocketIsReplaced: a socket file left by a crashed node (nobody
// listens) does not stop the next start.
func TestStaleSocketIsReplaced(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the stale socket is not there: %v", err)
	}
	serve(t, path, echo)
	if got := talk(t, path, `[1]`); got != "got 3 bytes starting [\n" {
		t.Errorf("answer %q", got)
	}
}

func TestSecondListenFails(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	serve(t, path, echo)
	srv, err := socket.Listen(path, echo, discard)
	if err == nil {
		t.Fatalf("a second Listen on a live socket succeeded (%v)", srv)
	}
	if !strings.Contains(err.Error(), "in use") || !errors.Is(err, socket.ErrInUse) {
		t.Errorf("error %q does not say the socket is in use", err)
	}
	// The first server is untouched.
	if got := talk(t, path, `[1]`); got != "got 3 bytes starting [\n" {
		t.Errorf("first server after the failed Listen: %q", got)
	}
}

func TestServeStops(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	stop := serve(t, path, echo)
	if got := talk(t, path, `[1]`); got == "" {
		t.Fatal("no answer")
	}
	if err := stop(); err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Serve returned: %v", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Error("a client could still connect")
	}
}

// TestServeWaitsForConnections: Serve returns only after the connections
// it is serving were answered.
func TestServeWaitsForConnections(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	stop := serve(t, path, func(_ context.Context, _ []byte) []byte {
		close(entered)
		<-release
		return []byte("late answer\n")
	})
	type result struct {
		out string
		err error
	}
	answered := make(chan result, 1)
	go func() {
		out, err := exchange(path, `[1]`)
		answered <- result{out, err}
	}()
	<-entered

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	eventually(t, 10*time.Second, "the socket to stop accepting", func() bool {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case <-stopped:
		t.Fatal("Serve returned while a connection was being served")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if got := <-answered; got.err != nil || got.out != "late answer\n" {
		t.Errorf("the connection in flight got %q, %v", got.out, got.err)
	}
}

// TestServeDoesNotWaitForSilentClients: a client that connected and sent
// nothing yet (an operator with `nc -U` open) is not being served; Serve
// must not wait for it, or it holds up the node's shutdown.
func TestServeDoesNotWaitForSilentClients(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	stop := serve(t, path, echo)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server has taken the connection once an answered one follows it.
	if got := talk(t, path, `[1]`); got != answer("[1]") {
		t.Fatalf("answer %q", got)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second): // a third of the 30 s read deadline
		t.Fatal("Serve did not return while a silent client stayed connected")
	}
}

// Under umask 000 the socket is still 0600, in a 0700 folder, and no
// temporary folder is left behind.
func TestSocketIsPrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "tmp")
	path := filepath.Join(dir, "steward.sock")
	srv, err := socket.Listen(path, func(context.Context, []byte) []byte { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	for file, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", file, st.Mode().Perm(), want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("socket folder holds %v, want the socket alone", entries)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the renamed socket: %v", err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Serve ended: %v", err)
	}
}
