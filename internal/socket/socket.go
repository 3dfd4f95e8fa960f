// Package socket serves steward.sock, the unix socket operators write
// messages to (`nc -U ./tmp/steward.sock < msg.json`). A connection carries
// one or more JSON values (each an array of messages or one message); each
// is answered on the same connection with one line per message: its ID, or
// its error. nc does not close its writing side, so the connection is closed
// once no further value begins shortly after an answer, and nc exits.
//
// With the default Options the package guarantees:
//
//   - Size: a JSON value may be at most 16 MiB (MaxInput). A larger one is
//     answered with one line "error: input is too large: ..." as soon as
//     16 MiB + 1 of its bytes were read; the rest is not read and the
//     connection is closed. Invalid JSON is answered with one line
//     "error: invalid JSON input: ..." on its first bad byte.
//   - Memory: a value is read into a per-connection buffer of up to 64 KiB;
//     one that grows beyond that first reserves MaxValue bytes of a 64 MiB
//     budget (MaxBuffered), waiting while the budget is spent, and keeps the
//     reservation until its answer is written. Input held at once is thus at
//     most MaxBuffered + MaxConns × 64 KiB, and half as much again for a
//     moment while buffers grow; at most MaxBuffered / MaxValue (4) large
//     values are in a handler at once. The handler's own memory is the
//     handler's to bound.
//   - Connections: at most 64 (MaxConns) are served at once; others wait in
//     the kernel's listen backlog until one ends (they are not refused
//     unless the backlog, net.core.somaxconn, is full).
//   - Silence: a client that sends nothing for 30 s before its first value
//     is complete, or in the middle of a value, gets one "error:" line and is
//     dropped. After an answer the connection is closed when no further value
//     begins within 300 ms.
//   - Answers: written in 64 KiB chunks, each with a fresh 10 s deadline, so
//     an answer is cut only when the client reads less than 64 KiB of it in
//     10 s. A cut answer is logged with the bytes delivered; it is never cut
//     silently.
//   - File descriptors: accept errors (EMFILE, ENFILE and any other but a
//     closed listener) never stop Serve: it logs, backs off from 5 ms
//     doubling to 1 s, and accepts again.
//   - Shutdown: when its context ends Serve closes the socket and stops
//     reading: a client that sent nothing is dropped at once, one in the
//     middle of a value gets "error: steward is stopping". Handlers in
//     progress finish and write their answers, then Serve returns nil.
package socket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Handler takes one JSON value and returns the answer to write back. The
// input is the handler's to keep.
type Handler func(ctx context.Context, input []byte) []byte

// Default limits (see Options).
const (
	// MaxInput bounds one JSON value.
	MaxInput = 16 << 20
	// MaxBuffered bounds the input held at once across connections.
	MaxBuffered = 64 << 20
	// MaxConns bounds the connections served at once.
	MaxConns = 64
)

const (
	defaultSilence      = 30 * time.Second
	defaultIdle         = 300 * time.Millisecond
	defaultWriteTimeout = 10 * time.Second
)

// Options are a server's limits; a zero field takes its default.
type Options struct {
	// MaxValue bounds one JSON value, in bytes (MaxInput).
	MaxValue int
	// MaxBuffered bounds the bytes of values over 64 KiB held at once; each
	// such value reserves MaxValue of it (MaxBuffered, or MaxValue if more).
	MaxBuffered int
	// MaxConns bounds the connections served at once (MaxConns).
	MaxConns int
	// Silence is how long a client may send nothing before its first value
	// is complete or in the middle of a value (30 s).
	Silence time.Duration
	// Idle is how long a further value may take to begin after an answer
	// (300 ms).
	Idle time.Duration
	// WriteTimeout is how long a chunk of an answer may wait for the client
	// to read (10 s).
	WriteTimeout time.Duration
}

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	orDefault(&o.MaxValue, MaxInput)
	orDefault(&o.MaxBuffered, max(MaxBuffered, o.MaxValue))
	orDefault(&o.MaxConns, MaxConns)
	orDefault(&o.Silence, defaultSilence)
	orDefault(&o.Idle, defaultIdle)
	orDefault(&o.WriteTimeout, defaultWriteTimeout)
	return o
}

func orDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Validate reports a negative field, or a budget smaller than one value.
func (o Options) Validate() error {
	if o.MaxValue < 0 || o.MaxBuffered < 0 || o.MaxConns < 0 || o.Silence < 0 || o.Idle < 0 || o.WriteTimeout < 0 {
		return fmt.Errorf("%w: a limit is negative: %+v", ErrOptions, o)
	}
	if d := o.withDefaults(); d.MaxBuffered < d.MaxValue {
		return fmt.Errorf("%w: MaxBuffered %d is less than MaxValue %d", ErrOptions, d.MaxBuffered, d.MaxValue)
	}
	return nil
}

// Server is a listening socket.
type Server struct {
	path    string
	ln      net.Listener
	handler Handler
	log     *slog.Logger
	opts    Options
	conns   chan struct{} // a token per connection being served
	budget  chan struct{} // a token per value over smallValue being held
	wg      sync.WaitGroup
}

// Listen is ListenWith with the default Options.
func Listen(path string, h Handler, log *slog.Logger) (*Server, error) {
	return ListenWith(path, h, log, Options{})
}

// ListenWith creates the socket at path (removing a stale one left by a
// crash) with mode 0600: only the node's user may send.
func ListenWith(path string, h Handler, log *slog.Logger, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("socket %s: %w", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		path: path, ln: ln, handler: h, log: log, opts: opts,
		conns:  make(chan struct{}, opts.MaxConns),
		budget: make(chan struct{}, max(1, opts.MaxBuffered/opts.MaxValue)),
	}, nil
}

// listenPrivate listens on a unix socket at path that is mode 0600 from
// its first instant, whatever the umask: it is made in a new folder that
// only this user can enter (mode 0700), made 0600 there, and then renamed
// into place.
func listenPrivate(path string) (*net.UnixListener, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".steward-sock-")
	if err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}
	bound := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The file moves: Serve removes it at its final path.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(bound, 0o600); err == nil {
		err = os.Rename(bound, path)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return ln, nil
}

// Serve accepts connections until ctx ends, then closes the socket and
// waits for the connections being served. It returns an error only when
// the socket was closed by something else than ctx.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	err := s.accept(ctx)
	s.wg.Wait()
	if err != nil {
		return err
	}
	os.Remove(s.path)
	return nil
}

// accept serves connections until ctx ends or the listener is closed.
func (s *Server) accept(ctx context.Context) error {
	var retry backoff
	for {
		if !s.reserveConn(ctx) {
			return nil
		}
		c, err := s.ln.Accept()
		if err != nil {
			<-s.conns
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			if !sleep(ctx, retry.fail(s.log, err)) {
				return nil
			}
			continue
		}
		retry.ok(s.log)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.conns }()
			s.serveConn(ctx, c)
		}()
	}
}

// reserveConn waits for a free connection slot; false if ctx ended.
func (s *Server) reserveConn(ctx context.Context) bool {
	select {
	case s.conns <- struct{}{}:
		return true
	default:
	}
	s.log.Debug("socket connection limit reached; waiting", "max_conns", cap(s.conns))
	select {
	case s.conns <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// backoff paces the retries of a failing Accept. It logs a run of
// failures and its end, at most one run a minute.
type backoff struct {
	delay    time.Duration
	failures int       // in this run
	since    time.Time // when this run began
	logged   bool      // this run was logged
	lastLog  time.Time
}

// fail counts a failure and returns how long to wait before the next try.
func (b *backoff) fail(log *slog.Logger, err error) time.Duration {
	now := time.Now()
	if b.failures == 0 {
		b.since, b.delay, b.logged = now, minBackoff, false
	} else {
		b.delay = min(2*b.delay, maxBackoff)
	}
	b.failures++
	if now.Sub(b.lastLog) >= time.Minute {
		b.logged, b.lastLog = true, now
		log.Warn("socket accept failing; retrying", "error", err, "failures", b.failures,
			"duration", now.Sub(b.since).Round(time.Millisecond))
	}
	return b.delay
}

// ok ends a run of failures.
func (b *backoff) ok(log *slog.Logger) {
	if b.failures == 0 {
		return
	}
	if b.logged {
		log.Info("socket accepting again", "failures", b.failures,
			"duration", time.Since(b.since).Round(time.Millisecond))
	}
	b.failures = 0
}

// sleep waits for d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
