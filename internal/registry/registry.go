// Package registry is the fleet's node registry: one KV record per node,
// written by the central node from the hello messages nodes send.
//
// A node is online while its last hello is younger than three hello
// intervals and it did not say goodbye. "Younger" is measured on the
// broker's clock: LastSeen is when the broker stored the record, and
// callers compare it with the broker's time (stream.BrokerNow), so a
// machine whose clock is off does not see the fleet wrongly.
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
	// Instance identifies the node's data folder: two processes that use
	// the same name from different folders have different instances.
	Instance string `json:"instance,omitempty"`
	// QueueOK says the node's consumer exists and is being pulled from.
	QueueOK bool `json:"queueOk,omitempty"`
	// QueueRecreatedAt and QueueRecreations tell when and how often the
	// node had to create its consumer again because the broker lost it.
	QueueRecreatedAt time.Time `json:"queueRecreatedAt,omitzero"`
	QueueRecreations int       `json:"queueRecreations,omitempty"`
	// StoppedAt is set when the node said goodbye (a clean stop).
	StoppedAt time.Time `json:"stoppedAt,omitzero"`
	// Conflict says that another instance said hello under the same name.
	Conflict string `json:"conflict,omitempty"`
	// Labels are the node's labels (its labels setting), which label
	// selectors in a message's targets match (package target).
	Labels map[string]string `json:"labels,omitempty"`
	// HelloAt is when the broker stored the hello the record says what
	// it says from: an older hello, handled later, changes nothing.
	HelloAt time.Time `json:"helloAt,omitzero"`
}

// OnlineWindow is how long after its last hello a node counts as online:
// three hello intervals, at least 10 s (a slow link).
func (n *Node) OnlineWindow() time.Duration {
	return max(3*n.HelloInterval, 10*time.Second)
}

// Online reports whether n is online at now (the broker's time).
func (n *Node) Online(now time.Time) bool {
	if !n.StoppedAt.IsZero() {
		return false
	}
	return now.Sub(n.LastSeen) <= n.OnlineWindow()
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

// Change stores what change makes of name's record (prev is nil when
// there is none; a nil result stores nothing). It compares and sets: if
// the record is written meanwhile, change is given the new one.
func (r *Registry) Change(ctx context.Context, name string, change func(prev *Node) (*Node, error)) error {
	// Each try that loses, loses to a write that landed: with a handful of
	// writers to one record (a node's hellos) a few tries are enough.
	for range 100 {
		var prev *Node
		var rev uint64
		e, err := r.kv.Get(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("get node %s: %w", name, err)
		default:
			if prev, err = decode(name, e); err != nil {
				return err
			}
			rev = e.Revision()
		}
		next, err := change(prev)
		if err != nil || next == nil {
			return err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode node %s: %w", name, err)
		}
		if rev == 0 {
			_, err = r.kv.Create(ctx, name, data)
		} else {
			_, err = r.kv.Update(ctx, name, data, rev)
		}
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyExists),
			errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
			continue // written meanwhile: again, on what is there now
		default:
			return fmt.Errorf("store node %s: %w", name, err)
		}
	}
	return fmt.Errorf("store node %s: the record kept changing", name)
}

// Get returns one node's record, with LastSeen set to when the broker
// stored it.
func (r *Registry) Get(ctx context.Context, name string) (*Node, error) {
	e, err := r.kv.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", name, err)
	}
	return decode(name, e)
}

// decode is the record in e, with LastSeen set to when the broker stored
// it.
func decode(name string, e jetstream.KeyValueEntry) (*Node, error) {
	var n Node
	if err := json.Unmarshal(e.Value(), &n); err != nil {
		return nil, fmt.Errorf("decode node %s: %w", name, err)
	}
	n.LastSeen = e.Created().UTC()
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

// Delete removes n's record, as it was read (by Get or List): if the
// record was written since (n said hello: its LastSeen moved on), it is
// kept and Delete returns ErrChanged. A record that is gone returns
// jetstream.ErrKeyNotFound. The node's record comes back with its next
// hello.
func (r *Registry) Delete(ctx context.Context, n *Node) error {
	e, err := r.kv.Get(ctx, n.Name)
	if err != nil {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	if !e.Created().Equal(n.LastSeen) {
		return fmt.Errorf("delete node %s: %w", n.Name, ErrChanged)
	}
	err = r.kv.Purge(ctx, n.Name, jetstream.LastRevision(e.Revision()))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return fmt.Errorf("delete node %s: %w", n.Name, ErrChanged)
	}
	if err != nil {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	return nil
}
