package node_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/status"
)

// TestSharedResources runs two nodes on one link, ledger, data folder and
// audit log given by the caller: both deliver, each audit line names its
// node, both hear of a reconnect of the shared link (each says hello at
// once), and what the caller gave stays open after they stop.
func TestSharedResources(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))

	dir := t.TempDir()
	link, err := node.Dial(f.srv.URL(), "shared", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.Close)
	led, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	files, err := datafolder.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	auditPath := filepath.Join(dir, "audit.jsonl")
	alog, err := audit.Open(auditPath, "shared")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	opts := node.Options{Link: link, Ledger: led, Files: files, Audit: alog, Version: "test"}

	type run struct {
		cancel context.CancelFunc
		done   chan error
	}
	var runs []run
	for _, name := range []string{"ship1", "ship2"} {
		cfg := f.config(name)
		cfg.HelloInterval = time.Hour // hellos at start and after a reconnect only
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		o := opts
		o.Ready = ready
		o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
		r := run{cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- node.Run(ctx, cfg, o) }()
		select {
		case <-ready:
		case err := <-r.done:
			cancel()
			t.Fatalf("%s: %v", name, err)
		}
		runs = append(runs, r)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, r := range runs {
			r.cancel()
			select {
			case err := <-r.done:
				if err != nil {
					t.Errorf("node stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("node did not stop")
			}
		}
	}
	t.Cleanup(stop)

	c := f.client(central.cfg)
	ping := func(what string) {
		t.Helper()
		ids := send(t, c, `[{"toNode":"ship1","method":"REQPing"},{"toNode":"ship2","method":"REQPing"}]`)
		for _, r := range wait(t, c, ids, 20*time.Second) {
			if r.Status != status.Succeeded {
				t.Fatalf("%s: %s", what, describe(wait(t, c, ids, time.Second)))
			}
		}
	}
	ping("before the broker restart")
	// A node writes its audit line once the delivery is acknowledged.
	natstest.Eventually(t, 10*time.Second, "a processed line of each node in the shared audit log", func() bool {
		lines := readFile(t, auditPath)
		return strings.Contains(lines, `"node":"ship1","event":"processed"`) &&
			strings.Contains(lines, `"node":"ship2","event":"processed"`)
	})
	if lines := readFile(t, auditPath); strings.Contains(lines, `"node":"shared"`) {
		t.Errorf("a line carries the log's own name instead of its node's:\n%s", lines)
	}

	restarted := time.Now()
	f.srv.Restart()
	natstest.Eventually(t, 30*time.Second, "both nodes say hello after the reconnect", func() bool {
		nodes, err := c.Nodes(natstest.Context(t, 3*time.Second))
		if err != nil {
			return false
		}
		seen := 0
		for _, n := range nodes {
			if (n.Name == "ship1" || n.Name == "ship2") && n.LastSeen.After(restarted) {
				seen++
			}
		}
		return seen == 2
	})
	natstest.Eventually(t, 30*time.Second, "send after the broker restart", func() bool {
		receipts, err := c.Send(natstest.Context(t, 3*time.Second), []byte(`{"toNode":"ship1","method":"REQPing"}`))
		return err == nil && receipts[0].OK()
	})
	ping("after the broker restart")

	stop()
	if !link.NC.IsConnected() {
		t.Error("the shared link was closed by a node")
	}
	if err := alog.Write(audit.Record{Event: audit.Sent}); err != nil {
		t.Errorf("the shared audit log: %v", err)
	}
	if !strings.Contains(readFile(t, auditPath), `"node":"shared","event":"sent"`) {
		t.Error("the shared audit log was closed by a node")
	}
	if _, err := files.Write("after.txt", []byte("x"), false); err != nil {
		t.Errorf("the shared data folder: %v", err)
	}
	if _, err := led.Start("after.ship1", 1, time.Now().Add(time.Hour)); err != nil {
		t.Errorf("the shared ledger: %v", err)
	}
}
