package node_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/procguard"
	"github.com/stewardfleet/steward/internal/status"
)

func TestMain(m *testing.M) {
	procguard.MaybeRun()
	os.Exit(m.Run())
}

// fleet is a test fleet of in-process nodes on one embedded broker.
type fleet struct {
	t   *testing.T
	srv *natstest.Server
	mu  sync.Mutex
	run map[string]*running
}

type running struct {
	cfg    config.Config
	cancel context.CancelFunc
	done   chan error
	stdout *syncBuffer
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{t: t, srv: natstest.Start(t), run: map[string]*running{}}
	t.Cleanup(f.stopAll)
	return f
}

func (f *fleet) config(name string) config.Config {
	dir := filepath.Join(f.t.TempDir(), name)
	cfg := config.Default()
	cfg.NodeName = name
	cfg.BrokerAddress = f.srv.URL()
	cfg.DataFolder = filepath.Join(dir, "data")
	cfg.SocketFolder = filepath.Join(dir, "tmp")
	cfg.ConfigFolder = filepath.Join(dir, "etc")
	cfg.DefaultMessageTimeout = 2 * time.Second
	cfg.HelloInterval = time.Second
	return cfg
}

// start runs a node with cfg and waits until it is ready.
func (f *fleet) start(cfg config.Config) *running {
	return f.startWith(cfg, nil)
}

// startWith runs a node with cfg and the clock now (time.Now when nil),
// and waits until it is ready.
func (f *fleet) startWith(cfg config.Config, now func() time.Time) *running {
	f.t.Helper()
	r, err := f.launch(cfg, now)
	if err != nil {
		f.t.Fatalf("node %s stopped at start: %v", cfg.NodeName, err)
	}
	return r
}

// launch runs a node and waits until it is ready or stopped.
func (f *fleet) launch(cfg config.Config, now func() time.Time) (*running, error) {
	f.t.Helper()
	return f.launchAs(cfg.NodeName, cfg, now)
}

// launchAs is launch for a node that f.stop knows as key: a second node of
// the same name (in another fleet) needs a key of its own.
func (f *fleet) launchAs(key string, cfg config.Config, now func() time.Time) (*running, error) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	r := &running{cfg: cfg, cancel: cancel, done: make(chan error, 1), stdout: &syncBuffer{}, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{f.t}, r.logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		r.done <- node.Run(ctx, cfg, node.Options{Logger: log, Stdout: r.stdout, Version: "test", Ready: ready, Now: now})
	}()
	select {
	case <-ready:
	case err := <-r.done:
		cancel()
		return nil, err
	case <-time.After(30 * time.Second):
		f.t.Fatalf("node %s not ready", cfg.NodeName)
	}
	f.mu.Lock()
	f.run[key] = r
	f.mu.Unlock()
	return r, nil
}

func (f *fleet) stop(name string) {
	f.t.Helper()
	f.mu.Lock()
	r := f.run[name]
	delete(f.run, name)
	f.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			f.t.Errorf("node %s: %v", name, err)
		}
	case <-time.After(30 * time.Second):
		f.t.Errorf("node %s did not stop", name)
	}
}

func (f *fleet) stopAll() {
	f.mu.Lock()
	var names []string
	for n := range f.run {
		names = append(names, n)
	}
	f.mu.Unlock()
	for _, n := range names {
		f.stop(n)
	}
}

func (f *fleet) client(cfg config.Config) *client.Client {
	f.t.Helper()
	ctx := natstest.Context(f.t, 10*time.Second)
	c, err := client.Connect(ctx, cfg)
	if err != nil {
		f.t.Fatalf("client: %v", err)
	}
	f.t.Cleanup(c.Close)
	return c
}

// send sends input as cfg's node and returns the message IDs.
func send(t *testing.T, c *client.Client, input string) []string {
	t.Helper()
	receipts, err := c.Send(natstest.Context(t, 10*time.Second), []byte(input))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	var ids []string
	for _, r := range receipts {
		if !r.OK() {
			t.Fatalf("message %d refused: %s", r.Index, r.Error)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// wait waits until the messages are done (their replies handled too) and
// returns the delivery records (the reply records are in waitAll's).
func wait(t *testing.T, c *client.Client, ids []string, timeout time.Duration) []*status.Record {
	t.Helper()
	var out []*status.Record
	for _, r := range waitAll(t, c, ids, timeout) {
		if !r.Reply {
			out = append(out, r)
		}
	}
	return out
}

func waitAll(t *testing.T, c *client.Client, ids []string, timeout time.Duration) []*status.Record {
	t.Helper()
	recs, err := c.Wait(natstest.Context(t, timeout), ids, nil)
	if err != nil {
		t.Fatalf("wait: %v (records so far: %s)", err, describe(recs))
	}
	return recs
}

func describe(recs []*status.Record) string {
	var b strings.Builder
	for _, r := range recs {
		name := r.Node
		if r.Reply {
			name += "(reply)"
		}
		b.WriteString(name + "=" + string(r.Status) + " " + r.Error + "; ")
	}
	return b.String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func TestPingRoundTrip(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `[{"toNode":"ship1","method":"REQPing"}]`)
	recs := wait(t, c, ids, 20*time.Second)
	if len(recs) != 1 || recs[0].Status != status.Succeeded {
		t.Fatalf("want one succeeded delivery, got %s", describe(recs))
	}
	pongs := filepath.Join(central.cfg.DataFolder, "ping", "ship1", "pong.log")
	natstest.Eventually(t, 10*time.Second, "pong recorded", func() bool {
		b, _ := os.ReadFile(pongs)
		return strings.Contains(string(b), "pong from ship1")
	})
}
