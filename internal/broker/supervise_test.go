package broker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/natstest"
)

// logBuffer collects log lines written from many goroutines.
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

// logger writes everything, the server's notices included, to buf.
func logger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// changes records what OnChange reports.
type changes struct {
	mu   sync.Mutex
	seen []broker.Status
}

func (c *changes) add(st broker.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, st)
}

func (c *changes) list() []broker.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]broker.Status(nil), c.seen...)
}

func newSupervisor(t testing.TB, srv *server.Server, o broker.SuperviseOptions) *broker.Supervisor {
	t.Helper()
	sup, err := broker.NewSupervisor(srv, o)
	if err != nil {
		t.Fatalf("NewSupervisor: %v", err)
	}
	return sup
}

// run runs sup until the test ends; the cleanup, which runs before the
// server's (registered earlier), stops it and checks that it returned nil.
func run(t testing.TB, sup *broker.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

// publish publishes one message, waiting at most timeout for the ack.
func publish(ctx context.Context, js jetstream.JetStream, subject string, data []byte, timeout time.Duration) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return js.Publish(ctx, subject, data)
}

// TestSuperviseLeavesAHealthyServerAlone: while JetStream is fine the
// supervisor only looks: no restart, no report, no log.
func TestSuperviseLeavesAHealthyServerAlone(t *testing.T) {
	var logs logBuffer
	srv := start(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: logger(&logs)})
	_, js := connect(t, srv)
	ctx := natstest.Context(t, 30*time.Second)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("x")); err != nil {
		t.Fatal(err)
	}

	var seen changes
	sup := newSupervisor(t, srv, broker.SuperviseOptions{Logger: logger(&logs), Interval: 10 * time.Millisecond, OnChange: seen.add})
	run(t, sup)
	natstest.Eventually(t, 20*time.Second, "ten checks", func() bool { return sup.Status().Checks >= 10 })

	st := sup.Status()
	if !st.Up || st.Err != nil {
		t.Errorf("status %+v, want up", st)
	}
	if st.FreeBytes != -1 {
		t.Errorf("free space measured while healthy: %d", st.FreeBytes)
	}
	if got := seen.list(); len(got) != 0 {
		t.Errorf("OnChange called on a healthy server: %+v", got)
	}
	out := logs.String()
	if n := strings.Count(out, "Starting JetStream"); n != 1 {
		t.Errorf("JetStream started %d times, want once (at Start)", n)
	}
	if strings.Contains(out, "embedded JetStream") {
		t.Errorf("the supervisor logged on a healthy server:\n%s", out)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("y")); err != nil {
		t.Fatalf("publish with the supervisor running: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("%d messages, want 2", info.State.Msgs)
	}
}

// TestSuperviseStopsWithItsContext: Run returns nil once its context ends,
// also in the middle of a wait, and one supervisor runs only once at a time.
func TestSuperviseStopsWithItsContext(t *testing.T) {
	srv := start(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	// The default interval: the end of ctx must cut the wait short.
	sup := newSupervisor(t, srv, broker.SuperviseOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	natstest.Eventually(t, 20*time.Second, "the first check", func() bool { return sup.Status().Checks >= 1 })

	if err := sup.Run(ctx); !errors.Is(err, broker.ErrSupervisorRunning) {
		t.Errorf("a second Run: %v, want %v", err, broker.ErrSupervisorRunning)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if !srv.JetStreamEnabled() {
		t.Error("JetStream is off after the supervisor stopped")
	}
}

// TestSuperviseIgnoresAStoppedServer: a server shut down on purpose has
// JetStream off; the supervisor must not bring it back nor report it.
func TestSuperviseIgnoresAStoppedServer(t *testing.T) {
	var logs logBuffer
	srv := start(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: logger(&logs)})
	var seen changes
	sup := newSupervisor(t, srv, broker.SuperviseOptions{Logger: logger(&logs), Interval: 10 * time.Millisecond, OnChange: seen.add})
	run(t, sup)
	srv.Shutdown()
	srv.WaitForShutdown()
	after := sup.Status().Checks
	natstest.Eventually(t, 20*time.Second, "five checks of the stopped server", func() bool { return sup.Status().Checks >= after+5 })

	if srv.JetStreamEnabled() {
		t.Error("JetStream runs in a server that was shut down")
	}
	if st := sup.Status(); !st.Up {
		t.Errorf("a deliberate shutdown reported as an outage: %+v", st)
	}
	if got := seen.list(); len(got) != 0 {
		t.Errorf("OnChange called for a deliberate shutdown: %+v", got)
	}
	if n := strings.Count(logs.String(), "Starting JetStream"); n != 1 {
		t.Errorf("JetStream started %d times, want once", n)
	}
}

func TestNewSupervisorRefusesBadOptions(t *testing.T) {
	srv := start(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	off := start(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err := off.ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		srv  *server.Server
		o    broker.SuperviseOptions
		want error
	}{
		{"no server", nil, broker.SuperviseOptions{}, broker.ErrInvalidOptions},
		{"negative interval", srv, broker.SuperviseOptions{Interval: -time.Second}, broker.ErrInvalidOptions},
		{"negative free space", srv, broker.SuperviseOptions{MinFree: -1}, broker.ErrInvalidOptions},
		{"negative backoff", srv, broker.SuperviseOptions{MaxBackoff: -time.Second}, broker.ErrInvalidOptions},
		// It could not know what to restart JetStream with.
		{"JetStream already off", off, broker.SuperviseOptions{}, broker.ErrJetStreamOff},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sup, err := broker.NewSupervisor(tc.srv, tc.o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewSupervisor = %v, %v; want %v", sup, err, tc.want)
			}
		})
	}
	if _, err := broker.NewSupervisor(srv, broker.SuperviseOptions{}); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}
