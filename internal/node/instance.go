package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/stream"
)

// ErrNameInUse: another running node uses this node's name.
var ErrNameInUse = errors.New("node name in use")

// loadInstance returns the node's instance ID, kept in its state folder:
// the same data folder is the same instance across restarts; another
// folder (another machine) under the same name is another instance.
func loadInstance(state string) (string, error) {
	path := filepath.Join(state, "instance")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); message.ValidID(id) == nil {
			return id, nil
		}
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return "", fmt.Errorf("state folder: %w", err)
	}
	id := nuid.Next()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	return id, nil
}

// checkInstance refuses to start a node whose name another instance uses
// right now (its last hello is recent on the broker's clock, and it did
// not say goodbye): two nodes on one name would silently split one queue.
// A node that died without a goodbye holds its name for three hello
// intervals.
func (n *Node) checkInstance(ctx context.Context) error {
	rec, err := registry.New(n.assets.Nodes).Get(ctx, n.cfg.NodeName)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		n.log.Warn("cannot read the registry to check the node name is free", "error", err)
		return nil
	}
	if rec.Instance == "" || rec.Instance == n.instance || !rec.StoppedAt.IsZero() {
		return nil
	}
	now, err := stream.BrokerNow(ctx, n.js, n.assets.Deadlines, n.cfg.NodeName)
	if err != nil {
		n.log.Warn("cannot read the broker's clock to check the node name is free", "error", err)
		return nil
	}
	if !rec.Online(now) {
		return nil
	}
	return fmt.Errorf("%w: node %s is running elsewhere (instance %s, last hello %s ago, data folder %s here); stop it or give this node another name, or wait %s if it died",
		ErrNameInUse, n.cfg.NodeName, rec.Instance, now.Sub(rec.LastSeen).Round(1e9), n.cfg.DataFolder, (rec.OnlineWindow() - now.Sub(rec.LastSeen)).Round(1e9))
}
