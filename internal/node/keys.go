package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/signature"
	"github.com/stewardfleet/steward/internal/stream"
)

// The keys a node checks signatures with are its trusted-keys file and the
// newest key set central signed (signature.Keyring). The node keeps the
// last key set it took in its state folder, so a restart never goes back
// to an older one, and fetches the current one from the broker when it
// starts, after every reconnect, and when a REQKeys message asks.

func (n *Node) keySetPath() string { return filepath.Join(n.cfg.StateFolder(), "keyset.json") }

// loadKeys builds the node's keyring from its trusted-keys file and the key
// set it kept.
func (n *Node) loadKeys() error {
	root, err := signature.LoadTrust(n.cfg.TrustedKeys)
	if err != nil {
		return err
	}
	n.keys = signature.NewKeyring(root, n.cfg.CentralNodeName)
	b, err := os.ReadFile(n.keySetPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("key set: %w", err)
	}
	var ks signature.KeySet
	if err := json.Unmarshal(b, &ks); err != nil {
		return fmt.Errorf("key set %s: %w", n.keySetPath(), err)
	}
	if _, err := n.keys.Apply(&ks); err != nil {
		return fmt.Errorf("key set %s: %w", n.keySetPath(), err)
	}
	return nil
}

// refreshKeys takes the key set on the broker if it is newer than the
// node's, and describes the keys in use.
func (n *Node) refreshKeys(ctx context.Context) (string, error) {
	if n.keys == nil {
		return "", errors.New("this node checks no signatures (it has no trusted-keys file), so it uses no key set")
	}
	if n.assets.Keys == nil {
		return "", fmt.Errorf("the broker has no %s bucket (its layout is older than this node: upgrade the central node)", stream.KeysBucket)
	}
	e, err := n.assets.Keys.Get(ctx, stream.KeySetKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return n.keys.Describe(), nil
	}
	if err != nil {
		return "", fmt.Errorf("read the key set: %w", err)
	}
	var ks signature.KeySet
	if err := json.Unmarshal(e.Value(), &ks); err != nil {
		return "", fmt.Errorf("the key set on the broker does not decode: %w", err)
	}
	applied, err := n.keys.Apply(&ks)
	if err != nil {
		return "", fmt.Errorf("the key set on the broker is refused: %w", err)
	}
	if applied {
		if err := writePrivate(n.keySetPath(), e.Value()); err != nil {
			n.log.Warn("key set applied but not kept: a restart goes back to the one kept before", "error", err)
		}
		n.log.Info("key set applied", "keys", n.keys.Describe())
	}
	return n.keys.Describe(), nil
}

// refreshKeysOrWarn refreshes the keys, logging a failure instead of
// returning it: a node starts, or carries on after a reconnect, with the
// keys it has.
func (n *Node) refreshKeysOrWarn(ctx context.Context) {
	if n.keys == nil || n.assets == nil {
		return
	}
	if _, err := n.refreshKeys(ctx); err != nil {
		n.log.Warn("key set not refreshed", "error", err)
	}
}

// writePrivate writes b to path (mode 0600) by renaming a complete file
// into place.
func writePrivate(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
