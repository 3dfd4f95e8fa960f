package socket_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/socket"
)

// childEnv makes the test binary a child that serves the socket it names
// (see runChild).
const childEnv = "STEWARD_SOCKET_TEST_CHILD"

// childFiles is the child's open-file limit.
const childFiles = 32

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(runChild(path))
	}
	os.Exit(m.Run())
}

// runChild serves path with echo and the default options, with at most
// childFiles open files, until SIGTERM. It exits 0 when Serve returned nil.
func runChild(path string) int {
	lim := syscall.Rlimit{Cur: childFiles, Max: childFiles}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv, err := socket.Listen(path, echo, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 2
	}
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

// logBuffer collects what a logger writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newLog returns a debug logger and what it wrote.
func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// TestFDExhaustion: more idle clients than the node may open files do not
// stop it; once they leave it answers again.
func TestFDExhaustion(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+path)
	stderr := &logBuffer{}
	child.Stderr = stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	t.Cleanup(func() {
		child.Process.Kill()
		<-exited
	})
	alive := func() {
		t.Helper()
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the child exited (%v); its log:\n%s", err, stderr)
		default:
		}
	}
	eventually(t, 30*time.Second, "the child's socket", func() bool {
		alive()
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	var clients []net.Conn
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	for range 3 * childFiles {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("dial idle client %d: %v", len(clients), err)
		}
		clients = append(clients, c)
	}
	eventually(t, 30*time.Second, "the child to run out of files", func() bool {
		alive()
		return strings.Contains(stderr.String(), "too many open files")
	})
	alive()
	for _, c := range clients {
		c.Close()
	}
	if got := talk(t, path, `[1]`); got != answer("[1]") {
		t.Errorf("answer after the idle clients left %q, want %q", got, answer("[1]"))
	}
	alive()
	t.Logf("the child's log:\n%s", stderr)
	if log := stderr.String(); !strings.Contains(log, "socket accepting again") {
		t.Errorf("the child did not log its recovery:\n%s", log)
	}

	child.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("the child after SIGTERM: %v; its log:\n%s", err, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not stop after SIGTERM")
	}
}

// TestConnLimit: a client beyond MaxConns waits until a connection ends,
// here when a silent client is dropped.
func TestConnLimit(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	log, logs := newLog()
	const silence = 500 * time.Millisecond
	serveWith(t, path, echo, log, socket.Options{MaxConns: 2, Silence: silence})
	begin := time.Now()
	for range 2 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	eventually(t, 10*time.Second, "the server to reach its connection limit", func() bool {
		return strings.Contains(logs.String(), "socket connection limit reached")
	})
	if got := talk(t, path, `[1]`); got != answer("[1]") {
		t.Errorf("the third client got %q, want %q", got, answer("[1]"))
	}
	// A lower bound, which a server that keeps its limit cannot miss.
	if waited := time.Since(begin); waited < silence {
		t.Errorf("the third client was answered %s after two silent ones connected, before either was dropped", waited)
	}
}

// TestSilentClientDropped: a client that sends nothing is answered and
// dropped after Silence, which frees its connection for the next one.
func TestSilentClientDropped(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	serveWith(t, path, echo, discard, socket.Options{MaxConns: 1, Silence: 200 * time.Millisecond})
	silent, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if got := talk(t, path, `[1]`); got != answer("[1]") {
		t.Errorf("the next client got %q", got)
	}
	silent.SetReadDeadline(time.Now().Add(30 * time.Second))
	out, err := io.ReadAll(silent)
	if err != nil || string(out) != "error: no input for 200ms\n" {
		t.Errorf("the silent client got %q, %v", out, err)
	}
}

// TestIncompleteInput: input that stops in the middle of a value, by
// silence, by the end of the input or by the node stopping, gets an error.
func TestIncompleteInput(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	serveWith(t, path, echo, discard, socket.Options{Silence: 200 * time.Millisecond})
	if got := talk(t, path, `[1] [{"a":`); got != answer("[1]")+"error: incomplete JSON input: nothing more for 200ms after 6 bytes (malformed)\n" {
		t.Errorf("silence: %q", got)
	}

	path2 := socketPath(t)
	stop := serve(t, path2, echo)
	c, err := net.Dial("unix", path2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, `[1] [2`)
	c.(*net.UnixConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if out, err := io.ReadAll(c); err != nil || string(out) != answer("[1]")+"error: invalid JSON input: unexpected EOF (malformed)\n" {
		t.Errorf("end of input: %q, %v", out, err)
	}

	c2, err := net.Dial("unix", path2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, `[1] [{"a":`)
	c2.SetReadDeadline(time.Now().Add(30 * time.Second))
	first := make([]byte, len(answer("[1]")))
	if _, err := io.ReadFull(c2, first); err != nil || string(first) != answer("[1]") {
		t.Fatalf("first answer %q, %v", first, err)
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if rest, err := io.ReadAll(c2); err != nil || string(rest) != "error: steward is stopping: the input from here on was not sent\n" {
		t.Errorf("after stop: %q, %v", rest, err)
	}
}

// countBytes answers with the size of its input.
func countBytes(_ context.Context, input []byte) []byte {
	return fmt.Appendf(nil, "%d bytes\n", len(input))
}

// jsonOfSize is a JSON array of strings, n ≥ 4 bytes long.
func jsonOfSize(n int) []byte {
	b := append(make([]byte, 0, n), '[', '"')
	for len(b) < n-2 {
		if len(b)%1024 == 0 && len(b) < n-4 {
			b = append(b, '"', ',', '"')
		} else {
			b = append(b, 'x')
		}
	}
	return append(b, '"', ']')
}

func TestJSONOfSize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{4, 5, 6, 1000, 1024, 1025, 1026, 1027, 1028, 1029, 4096, 100 << 10} {
		b := jsonOfSize(n)
		if len(b) != n || !json.Valid(b) {
			t.Errorf("jsonOfSize(%d): %d bytes, %.40q", n, len(b), b)
		}
	}
}

// largeJSON streams a JSON array of about n bytes without holding it.
func largeJSON(n int) io.Reader {
	item := []byte(`"` + strings.Repeat("x", 1021) + `",`)
	return io.MultiReader(strings.NewReader("["), &repeated{b: item, n: n / len(item)}, strings.NewReader(`""]`))
}

// repeated reads as b, n times over.
type repeated struct {
	b   []byte
	n   int
	off int
}

func (r *repeated) Read(p []byte) (int, error) {
	read := 0
	for read < len(p) && r.n > 0 {
		c := copy(p[read:], r.b[r.off:])
		read += c
		if r.off += c; r.off == len(r.b) {
			r.off, r.n = 0, r.n-1
		}
	}
	if read == 0 {
		return 0, io.EOF
	}
	return read, nil
}

func TestLargeJSON(t *testing.T) {
	t.Parallel()
	b, err := io.ReadAll(largeJSON(100_000))
	if err != nil || !json.Valid(b) || len(b) < 99_000 || len(b) > 100_000 {
		t.Errorf("largeJSON(100000): %d bytes, valid %t, %v", len(b), json.Valid(b), err)
	}
}

// TestValueLimit: a value of MaxValue bytes is taken, one byte more is
// refused, with and without the budget for large values.
func TestValueLimit(t *testing.T) {
	t.Parallel()
	for _, max := range []int{1000, 100 << 10} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			t.Parallel()
			path := socketPath(t)
			// One value over 64 KiB at a time: the others wait for it.
			serveWith(t, path, countBytes, discard, socket.Options{MaxValue: max, MaxBuffered: max})
			atMax := string(jsonOfSize(max))
			refusal := fmt.Sprintf("error: input is too large: a JSON value may be at most %s (too_large)\n",
				map[int]string{1000: "1000 bytes", 100 << 10: "100 KiB"}[max])
			cases := []struct{ name, input, want string }{
				{"at the limit", atMax, fmt.Sprintf("%d bytes\n", max)},
				{"over the limit", string(jsonOfSize(max + 1)), refusal},
				{"two at the limit", atMax + atMax + "\n", strings.Repeat(fmt.Sprintf("%d bytes\n", max), 2)},
				{"white space is free", strings.Repeat(" ", 3*max) + atMax, fmt.Sprintf("%d bytes\n", max)},
				{"small then over", "[1]" + string(jsonOfSize(max+1)), "3 bytes\n" + refusal},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					// Several at once, to share the budget.
					var wg sync.WaitGroup
					for range 4 {
						wg.Go(func() {
							got, err := exchange(path, tc.input)
							if err != nil && !errors.Is(err, syscall.ECONNRESET) {
								t.Error(err)
							}
							if got != tc.want {
								t.Errorf("answer %q, want %q", got, tc.want)
							}
						})
					}
					wg.Wait()
				})
			}
		})
	}
}

// TestTooLargeValue: a value over the limit is refused once the limit is
// read, without reading the rest, while other clients are served.
func TestTooLargeValue(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	serve(t, path, countBytes)
	big := jsonOfSize(40 << 20)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wrote := make(chan int, 1)
	go func() {
		n, _ := c.Write(big)
		wrote <- n
	}()

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			in := fmt.Sprintf("[%d]", i)
			if got, err := exchange(path, in); err != nil || got != "3 bytes\n" {
				t.Errorf("client %d beside the large input: %q, %v", i, got, err)
			}
		})
	}

	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read: %v", err)
	}
	if want := "error: input is too large: a JSON value may be at most 16 MiB (too_large)\n"; string(out) != want {
		t.Errorf("answer %q, want %q", out, want)
	}
	// The rest was refused, not read: what the client managed to write is
	// the limit plus what the socket buffers hold.
	if n := <-wrote; n > socket.MaxInput+4<<20 {
		t.Errorf("the server took %d bytes of a %d byte value over a %d byte limit", n, len(big), socket.MaxInput)
	}
	wg.Wait()
}

// TestMemoryBounded: many large inputs at once, some over the limit (the
// 8 × 60 MB that once took a node to 5 GiB), hold no more memory than the
// budget allows. Not parallel: it measures the heap of the process.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 24 values of 12 MiB and 8 of 60 MB")
	}
	path := socketPath(t)
	serve(t, path, countBytes)
	const clients, size = 24, 12 << 20
	const refused, refusedSize = 8, 60_000_000
	value := jsonOfSize(size)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	peak := make(chan runtime.MemStats, 1)
	go func() {
		var m, top runtime.MemStats
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > top.HeapInuse {
				top = m
			}
			select {
			case <-done:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range clients + refused {
		wg.Go(func() {
			var in io.Reader = bytes.NewReader(value)
			want := fmt.Sprintf("%d bytes\n", size)
			if i%4 == 3 {
				in, want = largeJSON(refusedSize), "error: input is too large: a JSON value may be at most 16 MiB (too_large)\n"
			}
			if got, err := send(path, in); err != nil || got != want {
				t.Errorf("answer %q, %v; want %q", got, err, want)
			}
		})
	}
	wg.Wait()
	close(done)
	top := <-peak

	// The input held is at most MaxBuffered, plus half of it while buffers
	// grow, plus 64 KiB per connection. The collector lets the heap reach
	// about twice what is live; a third share covers its pacing and the
	// test's own garbage. Without the budget, the values held at once are
	// about 750 MiB before any copy.
	bound := 3 * (socket.MaxBuffered*3/2 + socket.MaxConns*64<<10)
	grew := int(top.HeapInuse) - int(before.HeapInuse)
	t.Logf("%d × %d MiB and %d × %d MB: heap in use %d MiB before, peak %d MiB (+%d MiB, bound %d MiB); Sys %d → %d MiB",
		clients, size>>20, refused, refusedSize/1_000_000, before.HeapInuse>>20, top.HeapInuse>>20, grew>>20, bound>>20,
		before.Sys>>20, top.Sys>>20)
	if grew > bound {
		t.Errorf("the heap grew by %d MiB, over the %d MiB bound", grew>>20, bound>>20)
	}
}

// TestLargeAnswerSlowReader: a large answer reaches a client that reads
// slowly for much longer than WriteTimeout, all of it.
func TestLargeAnswerSlowReader(t *testing.T) {
	t.Parallel()
	const lines = 2_500_000 // 35 MB
	want := make([]byte, 0, 14*lines)
	for i := range lines {
		want = append(want, "line "...)
		want = strconv.AppendInt(want, int64(10_000_000+i), 10)
		want = append(want, '\n')
	}
	path := socketPath(t)
	const timeout = time.Second
	serveWith(t, path, func(context.Context, []byte) []byte { return want }, discard,
		socket.Options{WriteTimeout: timeout})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, `[1]`); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, 16<<10)
	for slow := time.Now().Add(3 * timeout); time.Now().Before(slow); {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got.Len(), err)
		}
		time.Sleep(10 * time.Millisecond) // a slow client, not a wait
	}
	rest, err := io.ReadAll(c)
	got.Write(rest)
	if err != nil {
		t.Errorf("read: %v", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("got %d bytes of a %d byte answer", got.Len(), len(want))
	}
}

// TestStuckReaderLogged: an answer the client does not read is cut after
// WriteTimeout, and the cut is logged.
func TestStuckReaderLogged(t *testing.T) {
	t.Parallel()
	want := bytes.Repeat([]byte("0123456789abcde\n"), 1<<19) // 8 MiB
	path := socketPath(t)
	log, logs := newLog()
	serveWith(t, path, func(context.Context, []byte) []byte { return want }, log,
		socket.Options{WriteTimeout: 200 * time.Millisecond})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, `[1]`); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the cut answer to be logged", func() bool {
		return strings.Contains(logs.String(), "socket answer not delivered in full")
	})
	if l := logs.String(); !strings.Contains(l, fmt.Sprintf("size=%d", len(want))) {
		t.Errorf("the log does not give the answer's size:\n%s", l)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Errorf("read: %v", err)
	}
	if len(got) >= len(want) || !bytes.HasPrefix(want, got) {
		t.Errorf("got %d bytes of the %d byte answer", len(got), len(want))
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts socket.Options
		ok   bool
	}{
		{"defaults", socket.Options{}, true},
		{"small", socket.Options{MaxValue: 1, MaxBuffered: 1, MaxConns: 1, Silence: 1, Idle: 1, WriteTimeout: 1}, true},
		{"value over the default budget", socket.Options{MaxValue: 100 << 20}, true},
		{"budget under a value", socket.Options{MaxValue: 2 << 20, MaxBuffered: 1 << 20}, false},
		{"budget under the default value", socket.Options{MaxBuffered: 1 << 20}, false},
		{"negative", socket.Options{Idle: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, socket.ErrOptions) {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}
