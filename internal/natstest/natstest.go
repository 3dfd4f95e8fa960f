// Package natstest starts throw-away embedded JetStream servers for tests:
// a random port, a store in t.TempDir, shut down by t.Cleanup.
package natstest

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stewardfleet/steward/internal/broker"
)

// Server is a test broker that can be stopped and restarted on the same
// port and store.
type Server struct {
	*server.Server
	t        testing.TB
	storeDir string
	listen   string
}

// Start starts a JetStream server on a random loopback port.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, storeDir: t.TempDir(), listen: "127.0.0.1:0"}
	s.start()
	// Pin the port so a restart comes back on the same address.
	s.listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Addr().(*net.TCPAddr).Port))
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	srv, err := broker.Start(broker.Options{Listen: s.listen, StoreDir: s.storeDir, Name: "test", ReadyTimeout: 20 * time.Second})
	if err != nil {
		s.t.Fatalf("start test broker: %v", err)
	}
	s.Server = srv
}

// URL is the client URL.
func (s *Server) URL() string { return "nats://" + s.listen }

// Stop shuts the server down (idempotent).
func (s *Server) Stop() {
	if s.Server != nil && s.Server.Running() {
		s.Server.Shutdown()
		s.Server.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// RestartEmpty stops the server, throws its store away and starts it
// again on the same port: every stream, consumer and message is gone, as
// after a broker restarted on a fresh disk.
func (s *Server) RestartEmpty() {
	s.t.Helper()
	s.Stop()
	if err := os.RemoveAll(s.storeDir); err != nil {
		s.t.Fatalf("wipe the store: %v", err)
	}
	s.start()
}

// Connect returns a client connection that reconnects forever, closed by
// t.Cleanup, and its JetStream context.
func Connect(t testing.TB, s *Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Eventually polls cond until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Context returns a context that ends with the test or after timeout.
func Context(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}
