package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/status"
)

// startNode runs a real node on the broker at url until the test ends.
func startNode(t *testing.T, url, name, labels string) config.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	cfg := config.Default()
	cfg.NodeName, cfg.BrokerAddress = name, url
	cfg.DataFolder, cfg.SocketFolder, cfg.ConfigFolder = filepath.Join(dir, "data"), filepath.Join(dir, "tmp"), filepath.Join(dir, "etc")
	cfg.DefaultMessageTimeout, cfg.HelloInterval = 2*time.Second, time.Second
	if labels != "" {
		l, err := convertLabels(labels)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Labels = l
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- node.Run(ctx, cfg, node.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard, Version: "test", Ready: ready})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("node %s did not stop", name)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("node %s: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s not ready", name)
	}
	return cfg
}

// TestTargetsOnARealFleet: central and three ships with labels on a real
// broker. The registry shows the labels; "*" reaches every node, a label
// selector its nodes, --max-concurrency 1 sends one at a time under one
// message ID; a selector that matches nothing is refused; the central
// node's socket resolves "*" too.
func TestTargetsOnARealFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and four nodes")
	}
	clearEnv(t)
	srv := natstest.Start(t)
	central := startNode(t, srv.URL(), "central", "role=hub")
	startNode(t, srv.URL(), "ship1", "role=db,site=north")
	startNode(t, srv.URL(), "ship2", "role=web,site=north")
	startNode(t, srv.URL(), "ship3", "role=db,site=south")

	e := newTestEnv(t)
	e.app.connect = func(ctx context.Context, cfg config.Config) (fleet, error) { return client.Connect(ctx, cfg) }
	flags := []string{"--config-folder", t.TempDir(), "--broker-address", srv.URL(), "--node-name", "central"}
	natstest.Eventually(t, 20*time.Second, "four nodes with labels in the registry", func() bool {
		if err := e.run(t, append([]string{"nodes"}, flags...)...); err != nil {
			return false
		}
		out := e.stdout.String()
		return strings.Contains(out, "role=db,site=north") && strings.Contains(out, "role=web,site=north") &&
			strings.Contains(out, "role=db,site=south") && strings.Contains(out, "role=hub")
	})

	msgs := filepath.Join(t.TempDir(), "msg.json")
	writeFile(t, msgs, `{"toNodes":["*"],"method":"REQPing"}`)
	// A dry run of * names every node and sends nothing.
	if err := e.run(t, append([]string{"send", "-f", msgs, "--dry-run"}, flags...)...); err != nil {
		t.Fatalf("%v\n%s", err, e.stderr)
	}
	if got := e.stdout.String(); got != "message 1: REQPing to 4 nodes: central,ship1,ship2,ship3\n" {
		t.Fatalf("dry run: %q", got)
	}

	// --target role=db one at a time: ship1 and ship3, under one ID.
	writeFile(t, msgs, `{"method":"REQPing"}`)
	if err := e.run(t, append([]string{"send", "-f", msgs, "--target", "role=db", "--max-concurrency", "1", "--timeout", "60s", "-o", "json"}, flags...)...); err != nil {
		t.Fatalf("%v\n%s", err, e.stderr)
	}
	var res sendResult
	if err := json.Unmarshal(e.stdout.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, e.stdout)
	}
	if len(res.Receipts) != 1 || !slices.Equal(res.Receipts[0].Nodes, []string{"ship1", "ship3"}) {
		t.Fatalf("receipts %+v", res.Receipts)
	}
	id := res.Receipts[0].ID
	c, err := client.Connect(t.Context(), central)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recs, err := c.Status(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	var deliveries []*status.Record
	for _, r := range recs {
		if r.Reply {
			continue
		}
		nodes, deliveries = append(nodes, r.Node), append(deliveries, r)
		if r.Status != status.Succeeded {
			t.Errorf("%s: %s %s", r.Node, r.Status, r.Error)
		}
	}
	if !slices.Equal(nodes, []string{"ship1", "ship3"}) {
		t.Fatalf("status %s lists %v", id, nodes)
	}
	// One message, one at a time: ship3 got its delivery only after
	// ship1's had ended (both stamped by this machine's clock).
	first, second := deliveries[0], deliveries[1]
	if !second.SentAt.Equal(first.SentAt) || second.DeliveredAt.Before(first.FinishedAt) {
		t.Errorf("not one at a time: %+v then %+v", first, second)
	}

	// A selector that matches nothing is refused, and nothing is sent.
	err = e.run(t, append([]string{"send", "-f", msgs, "--target", "role=cache"}, flags...)...)
	wantCode(t, err, ExitUsage)
	if !strings.Contains(e.stderr.String(), "target role=cache matches no node of the registry") || !strings.Contains(e.stderr.String(), "(missing_target)") {
		t.Fatalf("stderr %q", e.stderr)
	}

	// The central node's socket resolves * as well.
	conn, err := net.Dial("unix", central.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(`{"toNodes":["role=db,site=south"],"method":"REQPing"}`)); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.UnixConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	answer, _ := io.ReadAll(conn)
	if !strings.Contains(string(answer), "REQPing ship3\n") {
		t.Fatalf("socket answered %q", answer)
	}
}
