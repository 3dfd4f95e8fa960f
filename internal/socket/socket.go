// Package socket serves the node's stream inputs: steward.sock, the unix
// socket operators write messages to (`nc -U ./tmp/steward.sock < msg.json`),
// and the optional TCP listener (`nc 127.0.0.1 8090 < msg.json`). Both are
// listeners of one Server and take the same input through the same code. A
// connection carries one or more JSON values (each an array of messages or
// one message); each is answered on the same connection with one line per
// message: its ID, or its error (see Answer). nc does not close its writing
// side, so the connection is closed once no further value begins shortly
// after an answer, and nc exits.
//
// With the default Options the package guarantees, for all the listeners
// of a Server together:
//
//   - Size: a JSON value may be at most 16 MiB (MaxInput). A larger one is
//     answered with one line "error: input is too large: ... (too_large)"
//     as soon as 16 MiB + 1 of its bytes were read; the rest is not read
//     and the connection is closed. Invalid JSON is answered with one line
//     "error: invalid JSON input: ... (malformed)" on its first bad byte.
//     Both are given to Options.Refused (the node audits them).
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
//   - Shutdown: when its context ends Serve closes the listeners and stops
//     reading: a client that sent nothing is dropped at once, one in the
//     middle of a value gets "error: steward is stopping". Handlers in
//     progress finish and write their answers, then Serve returns nil.
//
// Who may connect: the unix socket is mode 0600 in a 0700 folder from its
// first instant (only the node's user). The TCP listener is on loopback
// unless its caller names the networks beyond loopback whose clients may
// connect (ListenTCP); clients from elsewhere are closed unread.
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
	// Refused, if not nil, is given what was read of a value refused
	// before it reached the handler (invalid JSON, too large) and why; the
	// node audits it. It must not keep input.
	Refused func(input []byte, err error)
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

// Server serves the JSON input of its listeners: steward.sock, and the TCP
// listener when the node has one. Its limits (connections, the memory
// budget) are shared by all of them: a second listener adds no memory.
type Server struct {
	handler Handler
	log     *slog.Logger
	opts    Options
	conns   chan struct{} // a token per connection being served
	budget  chan struct{} // a token per value over smallValue being held
	wg      sync.WaitGroup

	mu        sync.Mutex
	listeners []*listener
}

// listener is one of a Server's listeners.
type listener struct {
	ln   net.Listener
	path string // the unix socket's file, removed when it stops; "" for TCP
	// allowed says whether a client may be served; nil: every client.
	allowed func(net.Addr) bool
	refused refusals
}

// New returns a server with no listener yet (see ListenUnix, ListenTCP).
func New(h Handler, log *slog.Logger, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		handler: h, log: log, opts: opts,
		conns:  make(chan struct{}, opts.MaxConns),
		budget: make(chan struct{}, max(1, opts.MaxBuffered/opts.MaxValue)),
	}, nil
}

// Listen is ListenWith with the default Options.
func Listen(path string, h Handler, log *slog.Logger) (*Server, error) {
	return ListenWith(path, h, log, Options{})
}

// ListenWith returns a server listening on the unix socket path (see
// ListenUnix).
func ListenWith(path string, h Handler, log *slog.Logger, opts Options) (*Server, error) {
	s, err := New(h, log, opts)
	if err != nil {
		return nil, err
	}
	if err := s.ListenUnix(path); err != nil {
		return nil, err
	}
	return s, nil
}

// ListenUnix creates the socket at path (removing a stale one left by a
// crash) with mode 0600: only the node's user may send.
func (s *Server) ListenUnix(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("socket folder: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("socket %s: %w", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return err
	}
	s.add(&listener{ln: ln, path: path})
	return nil
}

func (s *Server) add(l *listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, l)
}

// Close closes the listeners of a server that is not serving (a node
// that failed to start) and removes its socket file.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, l := range s.listeners {
		if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		if l.path != "" {
			os.Remove(l.path)
		}
	}
	s.listeners = nil
	return errors.Join(errs...)
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

// Serve accepts connections on every listener until ctx ends, then closes
// them and waits for the connections being served. It returns an error
// only when a listener was closed by something else than ctx; then it
// stops accepting on all of them.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	lns := s.listeners
	s.mu.Unlock()
	if len(lns) == 0 {
		return ErrNoListener
	}
	// Accepting stops when ctx ends or one listener fails; connections
	// being served see only ctx.
	acceptCtx, stopAccepting := context.WithCancel(ctx)
	defer stopAccepting()
	stop := context.AfterFunc(acceptCtx, func() {
		for _, l := range lns {
			l.ln.Close()
		}
	})
	defer stop()
	errs := make([]error, len(lns))
	var loops sync.WaitGroup
	for i, l := range lns {
		loops.Go(func() {
			if errs[i] = s.accept(ctx, acceptCtx, l); errs[i] != nil {
				stopAccepting()
			}
		})
	}
	loops.Wait()
	s.wg.Wait()
	for i, l := range lns {
		if errs[i] == nil && l.path != "" {
			os.Remove(l.path)
		}
	}
	return errors.Join(errs...)
}

// accept serves l's connections until acceptCtx ends or l is closed. The
// connections are served until ctx ends.
func (s *Server) accept(ctx, acceptCtx context.Context, l *listener) error {
	var retry backoff
	for {
		if !s.reserveConn(acceptCtx) {
			return nil
		}
		c, err := l.ln.Accept()
		if err != nil {
			<-s.conns
			if acceptCtx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", l.ln.Addr(), err)
			}
			if !sleep(acceptCtx, retry.fail(s.log, err)) {
				return nil
			}
			continue
		}
		retry.ok(s.log)
		if l.allowed != nil && !l.allowed(c.RemoteAddr()) {
			l.refused.note(s.log, c.RemoteAddr())
			c.Close()
			<-s.conns
			continue
		}
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
