// Package registry is the fleet's node registry: one KV record per node,
// written by the central node from the hello messages nodes send. A node is
// online while its last hello is younger than three hello intervals.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Node is one registry record.
type Node struct {
	Name          string        `json:"name"`
	Version       string        `json:"version,omitempty"`
	Methods       []string      `json:"methods,omitempty"`
	StartedAt     time.Time     `json:"startedAt,omitzero"`
	LastSeen      time.Time     `json:"lastSeen"`
	HelloInterval time.Duration `json:"helloInterval,omitempty"`
}

// Online reports whether n said hello recently enough at now: within three
// hello intervals (at least 10 s, to allow for clock skew and a slow link).
func (n *Node) Online(now time.Time) bool {
	window := 3 * n.HelloInterval
	if window < 10*time.Second {
		window = 10 * time.Second
	}
	return now.Sub(n.LastSeen) <= window
}

// Registry reads and writes node records.
type Registry struct{ kv jetstream.KeyValue }

// New returns a registry on bucket kv.
func New(kv jetstream.KeyValue) *Registry { return &Registry{kv: kv} }

// Put stores n.
func (r *Registry) Put(ctx context.Context, n *Node) error {
	data, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode node %s: %w", n.Name, err)
	}
	if _, err := r.kv.Put(ctx, n.Name, data); err != nil {
		return fmt.Errorf("store node %s: %w", n.Name, err)
	}
	return nil
}

// Get returns one node's record.
func (r *Registry) Get(ctx context.Context, name string) (*Node, error) {
	e, err := r.kv.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", name, err)
	}
	var n Node
	if err := json.Unmarshal(e.Value(), &n); err != nil {
		return nil, fmt.Errorf("decode node %s: %w", name, err)
	}
	return &n, nil
}

// List returns every node, sorted by name.
func (r *Registry) List(ctx context.Context) ([]*Node, error) {
	keys, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []*Node
	for k := range keys.Keys() {
		n, err := r.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
