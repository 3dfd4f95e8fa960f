package broker_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/natstest"
)

// start starts a broker and shuts it down at cleanup.
func start(t testing.TB, o broker.Options) *server.Server {
	t.Helper()
	srv, err := broker.Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

func connect(t testing.TB, srv *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func TestStartPicksAPort(t *testing.T) {
	var logs bytes.Buffer
	srv := start(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Name: "central",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	port := srv.Addr().(*net.TCPAddr).Port
	if port == 0 {
		t.Fatal("no port chosen")
	}
	if srv.Name() != "central" {
		t.Errorf("server name %q", srv.Name())
	}
	nc, js := connect(t, srv)
	ctx := natstest.Context(t, 20*time.Second)
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatalf("JetStream account info: %v", err)
	}
	if info.Streams != 0 {
		t.Errorf("a fresh store has %d streams", info.Streams)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("x")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if mp := nc.MaxPayload(); mp != 1<<20 {
		t.Errorf("max payload %d, want 1 MiB", mp)
	}
}

func TestStartRefusesBadAddresses(t *testing.T) {
	cases := []struct{ name, listen string }{
		{"no port", "127.0.0.1"},
		{"port not a number", "127.0.0.1:http"},
		{"empty", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := broker.Start(broker.Options{Listen: tc.listen, StoreDir: t.TempDir()})
			if err == nil {
				srv.Shutdown()
				t.Fatalf("Start(%q) succeeded", tc.listen)
			}
		})
	}
}

// TestStartOnAPortInUse: Start says at once that the address is taken,
// naming it, instead of waiting for a server that cannot become ready.
func TestStartOnAPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	var logs bytes.Buffer
	srv, err := broker.Start(broker.Options{Listen: addr, StoreDir: t.TempDir(), ReadyTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err == nil {
		srv.Shutdown()
		t.Fatalf("Start on %s, which is in use, succeeded", addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("want address in use, got %v", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name %s", err, addr)
	}
	// The listener that holds the port still works: Start cleaned up.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("the port's owner stopped listening: %v", err)
	} else {
		c.Close()
	}
}

// TestStateSurvivesRestart: streams, messages and consumers are in the
// store folder, so a broker started again on it has them.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := natstest.Context(t, 30*time.Second)

	first, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, js := connect(t, first)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "keep.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ship1", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	first.Shutdown()
	first.WaitForShutdown()

	second := start(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: dir})
	_, js = connect(t, second)
	s, err = js.Stream(ctx, "KEEP")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("%d messages after restart, want 3", info.State.Msgs)
	}
	c, err := s.Consumer(ctx, "ship1")
	if err != nil {
		t.Fatalf("consumer after restart: %v", err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumPending != 3 {
		t.Errorf("consumer has %d pending after restart, want 3", ci.NumPending)
	}
}
