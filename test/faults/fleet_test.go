package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/netfault"
)

// Names on the broker, as steward documents them.
const (
	messagesStream = "STEWARD_MESSAGES"
	statusBucket   = "steward_status"
	central        = "central"
)

// fleet is central and its ships, each a steward process in its own
// folder, with what the fault suite adds: proxies that cut links, flags
// that change between starts, and the harness's own broker connection.
type fleet struct {
	*fleettest.Fleet
	t       testing.TB
	runsLog string

	mu      sync.Mutex
	extra   map[string][]string // flags given at every start of a node
	proxies map[string]*netfault.Proxy

	nc *nats.Conn
	js jetstream.JetStream
}

// newFleet makes the folders of a fleet; start the nodes with Start.
func newFleet(t testing.TB) *fleet {
	t.Helper()
	var root string
	if keep := os.Getenv("STEWARD_FAULTS_DIR"); keep != "" {
		root = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "-"))
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &fleet{t: t, extra: map[string][]string{}, proxies: map[string]*netfault.Proxy{}}
	f.Fleet = fleettest.New(t, fleettest.Options{Root: root, Flags: f.flags,
		StartTimeout: 60 * time.Second, StopTimeout: 30 * time.Second})
	f.runsLog = filepath.Join(f.Root(), "runs.log")
	t.Cleanup(f.close)
	return f
}

// proxy routes node's link to the broker through a cuttable proxy from its
// next start on.
func (f *fleet) proxy(node string) *netfault.Proxy {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.proxies[node]; p != nil {
		return p
	}
	p, err := netfault.Start(f.BrokerAddr())
	if err != nil {
		f.t.Fatal(err)
	}
	f.proxies[node] = p
	return p
}

// setExtra sets flags that every later start of node is given.
func (f *fleet) setExtra(node string, args ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extra[node] = args
}

// flags are the flags of node's every start: central runs the embedded
// broker; ships connect to it, or to their proxy.
func (f *fleet) flags(_ *fleettest.Fleet, node string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	flags := append([]string{"--log-level", "info"}, f.extra[node]...)
	if p := f.proxies[node]; p != nil && node != central {
		return append(flags, "--broker-address", p.URL())
	}
	return append(flags, f.BrokerFlags(node)...)
}

// checkAlive fails the test for every node that exited although the
// harness did not stop it.
func (f *fleet) checkAlive() {
	f.t.Helper()
	for _, node := range f.Exited() {
		f.t.Errorf("VIOLATION: %s exited on its own\n%s", node, f.LogTail(node, 40))
	}
}

// close stops every node (ships first: central holds the broker), the
// proxies and the harness's connection.
func (f *fleet) close() {
	f.checkAlive()
	f.StopAll()
	if f.nc != nil {
		f.nc.Close()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.proxies {
		_ = p.Close()
	}
}

// logGrep returns up to n lines of node's log that mention word, with the
// harness's own notes in between.
func (f *fleet) logGrep(node, word string, n int) []string {
	b, _ := os.ReadFile(filepath.Join(f.Dir(node), "node.log"))
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	if len(out) > n {
		out = append(out[:n/2], append([]string{"…"}, out[len(out)-n/2:]...)...)
	}
	return out
}

// jetStream returns the harness's own connection to the broker. It keeps
// reconnecting across broker restarts.
func (f *fleet) jetStream() jetstream.JetStream {
	f.t.Helper()
	if f.js != nil {
		return f.js
	}
	nc, err := nats.Connect(f.BrokerURL(), nats.Name("faults harness"), nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		f.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		f.t.Fatal(err)
	}
	f.nc, f.js = nc, js
	return js
}

// deleteConsumer deletes node's durable consumer, trying for a while (the
// broker may just be coming back). It reports whether there was one.
func (f *fleet) deleteConsumer(node string) bool {
	f.t.Helper()
	js := f.jetStream()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := js.DeleteConsumer(ctx, messagesStream, node)
		cancel()
		switch {
		case err == nil:
			return true
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			return false
		case time.Now().After(deadline):
			f.t.Fatalf("delete consumer %s: %v", node, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// drained reports whether every named consumer exists and holds no
// message undelivered or unacknowledged, or why not.
func (f *fleet) drained(nodes ...string) (bool, string) {
	js := f.jetStream()
	for _, node := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		c, err := js.Consumer(ctx, messagesStream, node)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = c.Info(ctx)
		}
		cancel()
		if err != nil {
			return false, fmt.Sprintf("consumer %s: %v", node, err)
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return false, fmt.Sprintf("consumer %s: %d pending, %d unacknowledged", node, info.NumPending, info.NumAckPending)
		}
	}
	return true, ""
}

// pause sleeps d, or less if ctx ends first.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
