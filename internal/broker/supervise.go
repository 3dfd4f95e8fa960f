package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults for SuperviseOptions.
const (
	DefaultCheckInterval = 2 * time.Second
	DefaultMinFree       = 64 << 20
	DefaultMaxBackoff    = time.Minute
)

// SuperviseOptions configure a Supervisor. Zero values take the defaults.
type SuperviseOptions struct {
	// Interval is the time between checks (default 2 s).
	Interval time.Duration
	// MinFree is how many bytes must be free on the store's file system
	// before JetStream is restarted (default 64 MiB; never more than a
	// tenth of the file system, so a small disk can recover too).
	MinFree int64
	// MaxBackoff caps the wait after failed restarts, which doubles from
	// Interval with each failure in a row (default 1 min).
	MaxBackoff time.Duration
	// Logger receives what the supervisor sees and does (nil: discarded).
	Logger *slog.Logger
	// OnChange, when set, is called from Run each time Status.Up flips. It
	// must return quickly: the next check waits for it.
	OnChange func(Status)
}

func (o *SuperviseOptions) setDefaults() {
	if o.Interval == 0 {
		o.Interval = DefaultCheckInterval
	}
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
}

// Validate reports the first option that is out of range.
func (o SuperviseOptions) Validate() error {
	switch {
	case o.Interval < 0:
		return fmt.Errorf("%w: check interval %s is negative", ErrInvalidOptions, o.Interval)
	case o.MinFree < 0:
		return fmt.Errorf("%w: minimum free space %d is negative", ErrInvalidOptions, o.MinFree)
	case o.MaxBackoff < 0:
		return fmt.Errorf("%w: maximum backoff %s is negative", ErrInvalidOptions, o.MaxBackoff)
	}
	return nil
}

// Status is what the supervisor saw at its last check.
type Status struct {
	// Up: JetStream runs and no stream refuses writes.
	Up bool
	// Err says why JetStream is not Up; it wraps ErrJetStreamOff or
	// ErrStreamWrite.
	Err error
	// FreeBytes is the free space on the store's file system, measured at
	// each check while JetStream is not Up (-1: not measured).
	FreeBytes int64
	// Since is when Up last flipped, or when the supervisor was made.
	Since time.Time
	// Checked is when the last check ran; Checks counts them.
	Checked time.Time
	Checks  uint64
}

// Supervisor keeps the embedded server's JetStream running through a full
// disk; see the package comment for what it guarantees. Make one per server
// with NewSupervisor and run it with Run.
type Supervisor struct {
	srv *server.Server
	o   SuperviseOptions
	log *slog.Logger
	// started is JetStream's configuration when the supervisor was made;
	// storeDir is the store folder the server was given (started.StoreDir
	// is the "jetstream" folder that nats-server makes in it).
	started  server.JetStreamConfig
	storeDir string
	running  atomic.Bool

	mu     sync.Mutex
	status Status

	// failures counts restarts that failed in a row; only Run touches it.
	failures int
}

// NewSupervisor returns a supervisor for srv. Make it while JetStream runs,
// right after Start: it keeps the configuration JetStream has then, limits
// included, to restart it with.
func NewSupervisor(srv *server.Server, o SuperviseOptions) (*Supervisor, error) {
	if srv == nil {
		return nil, fmt.Errorf("%w: no server", ErrInvalidOptions)
	}
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := srv.JetStreamConfig()
	if cfg == nil || !srv.JetStreamEnabled() {
		return nil, fmt.Errorf("supervise the embedded broker: %w", ErrJetStreamOff)
	}
	if filepath.Base(cfg.StoreDir) != server.JetStreamStoreDir {
		return nil, fmt.Errorf("%w: JetStream stores in %s, not in a %q folder", ErrInvalidOptions, cfg.StoreDir, server.JetStreamStoreDir)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		srv:      srv,
		o:        o,
		log:      log.With("component", "broker"),
		started:  *cfg,
		storeDir: filepath.Dir(cfg.StoreDir),
		status:   Status{Up: true, FreeBytes: -1, Since: time.Now()},
	}, nil
}

// Status returns what the last check saw.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run checks the server every Interval, and restarts JetStream when it is
// down and the store has room, until ctx ends; then it returns nil. Once
// the server has been shut down the checks do nothing; still, end ctx
// before shutting the server down, so that no restart can overlap it.
func (s *Supervisor) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrSupervisorRunning
	}
	defer s.running.Store(false)
	for ctx.Err() == nil {
		t := time.NewTimer(s.check())
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return nil
}

// check looks at the server once, restarts JetStream if it is down and can
// be brought back, and says how long to wait before the next check.
func (s *Supervisor) check() time.Duration {
	if !s.srv.Running() {
		// Shut down, or on its way: there is nothing left to keep up, and
		// enabling JetStream now would fight the shutdown.
		s.touch()
		return s.o.Interval
	}
	fault := s.fault()
	if fault == nil {
		s.failures = 0
		s.up()
		return s.o.Interval
	}
	// A full disk is cured by a restart once there is room; other write
	// errors need an operator.
	restartable := errors.Is(fault, ErrJetStreamOff) || isSpaceError(fault.Error())
	free, total, freeErr := freeBytes(s.storePath())
	if freeErr != nil {
		free = -1
	}
	need := s.o.MinFree
	if total > 0 {
		need = min(need, total/10)
	}
	s.down(fault, free, freeErr, restartable)
	switch {
	case !restartable:
		return s.o.Interval
	case freeErr == nil && free < need:
		return s.o.Interval
	case !s.srv.Running():
		// Shut down since the first look: JetStream is off for that.
		return s.o.Interval
	case errors.Is(fault, ErrJetStreamOff) && s.srv.JetStreamConfig() != nil:
		// nats-server has marked JetStream disabled but is still tearing
		// it down (it does so on a goroutine of its own); a new one
		// enabled now would be thrown away when the teardown ends.
		return s.o.Interval
	}
	if err := s.restart(fault); err != nil {
		s.failures++
		wait := backoff(s.o.Interval, s.o.MaxBackoff, s.failures)
		s.log.Warn("embedded JetStream restart failed", "error", err,
			"store_dir", s.storeDir, "free_bytes", free, "retry_in", wait)
		return wait
	}
	s.failures = 0
	s.up()
	return s.o.Interval
}

// fault says why JetStream cannot store messages (nil: it can).
func (s *Supervisor) fault() error {
	if !s.srv.JetStreamEnabled() {
		return ErrJetStreamOff
	}
	// A stream's write error is only visible through the health check,
	// which reports it in words: "JetStream stream 'A > S' write error: …".
	h := s.srv.Healthz(&server.HealthzOptions{Details: true})
	var errs []error
	for _, e := range h.Errors {
		if e.Type == server.HealthzErrorStream && strings.Contains(e.Error, "write error") {
			errs = append(errs, fmt.Errorf("%w: %s", ErrStreamWrite, e.Error))
		}
	}
	return errors.Join(errs...)
}

// isSpaceError: the error text is the file system saying it is full (or
// the writer's quota is), as nats-server itself decides it.
func isSpaceError(text string) bool {
	return strings.Contains(text, "no space left") || strings.Contains(text, "quota exceeded")
}

// restart brings JetStream back with the configuration it started with.
// JetStream reads streams and consumers back from the store as it starts.
func (s *Supervisor) restart(fault error) error {
	if errors.Is(fault, ErrStreamWrite) {
		// A stream keeps its write error for good; only a new JetStream,
		// which reads the stream back from the store, is rid of it.
		if err := s.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("stop JetStream: %w", err)
		}
		if s.srv.JetStreamConfig() != nil {
			// nats-server turned JetStream off itself meanwhile and is still
			// tearing it down; see check.
			return errors.New("stop JetStream: nats-server is still stopping it")
		}
	}
	if err := s.srv.EnableJetStream(s.config()); err != nil {
		// A failed enable can leave a half-made JetStream that calls itself
		// enabled; take it down so the next check sees JetStream off.
		// (nats-server's own restart, on a config reload, does the same.)
		if serr := s.srv.ShutdownJetStream(); serr != nil {
			err = errors.Join(err, serr)
		}
		return fmt.Errorf("enable JetStream in %s: %w", s.storeDir, err)
	}
	return nil
}

// config is a fresh copy of the configuration JetStream started with, for
// EnableJetStream (which changes what it is given).
//
// The limits are the ones JetStream had, not zero: given zero, nats-server
// would size them again from the disk space free now, which after a full
// disk can be less than the store already holds, and JetStream would then
// refuse every message until the next restart. Given limits, EnableJetStream
// puts its "jetstream" folder into StoreDir itself, so StoreDir is the
// folder above it.
func (s *Supervisor) config() *server.JetStreamConfig {
	cfg := s.started
	cfg.StoreDir = s.storeDir
	return &cfg
}

// storePath is where JetStream writes: its "jetstream" folder, or the
// store folder above it should that be gone.
func (s *Supervisor) storePath() string {
	if _, err := os.Stat(s.started.StoreDir); err != nil {
		return s.storeDir
	}
	return s.started.StoreDir
}

// touch counts a check that changed nothing.
func (s *Supervisor) touch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Checks++
	s.status.Checked = time.Now()
}

// up records a check that found JetStream able to store; coming back from
// down, it says so and reports the change.
func (s *Supervisor) up() {
	now := time.Now()
	s.mu.Lock()
	was := s.status
	s.status.Checks++
	s.status.Checked = now
	if was.Up {
		s.mu.Unlock()
		return
	}
	s.status.Up, s.status.Err, s.status.FreeBytes, s.status.Since = true, nil, -1, now
	st := s.status
	s.mu.Unlock()

	attrs := []any{"store_dir", s.storeDir, "down_for", now.Sub(was.Since).Round(time.Millisecond)}
	if free, _, err := freeBytes(s.storePath()); err == nil {
		attrs = append(attrs, "free_bytes", free)
	}
	if jsz, err := s.srv.Jsz(nil); err == nil {
		attrs = append(attrs, "streams", jsz.Streams, "consumers", jsz.Consumers, "messages", jsz.Messages)
	}
	s.log.Info("embedded JetStream is back: the broker stores messages again", attrs...)
	if s.o.OnChange != nil {
		s.o.OnChange(st)
	}
}

// down records a check that found JetStream unable to store; going down,
// it says so once and reports the change.
func (s *Supervisor) down(fault error, free int64, freeErr error, restartable bool) {
	now := time.Now()
	s.mu.Lock()
	wasUp := s.status.Up
	s.status.Checks++
	s.status.Checked = now
	s.status.Err, s.status.FreeBytes = fault, free
	if wasUp {
		s.status.Up, s.status.Since = false, now
	}
	st := s.status
	s.mu.Unlock()
	if !wasUp {
		return
	}

	attrs := []any{"error", fault, "store_dir", s.storeDir, "free_bytes", free, "min_free_bytes", s.o.MinFree}
	if freeErr != nil {
		attrs = append(attrs, "free_error", freeErr)
	}
	if restartable {
		s.log.Error("embedded JetStream is down: the broker cannot store messages; it restarts when the store has room", attrs...)
	} else {
		s.log.Error("embedded JetStream is down: a stream cannot write, and not for lack of space; restart the node once that is fixed", attrs...)
	}
	if s.o.OnChange != nil {
		s.o.OnChange(st)
	}
}

// backoff is the wait after the n-th failed restart in a row: interval
// doubled n times, at most limit (and never less than interval).
func backoff(interval, limit time.Duration, n int) time.Duration {
	d := interval
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return max(min(d, limit), interval)
}
