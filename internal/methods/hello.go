package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/registry"
)

// HelloInfo is the data of a hello message.
type HelloInfo struct {
	Version       string        `json:"version"`
	Methods       []string      `json:"methods"`
	StartedAt     time.Time     `json:"startedAt"`
	HelloInterval time.Duration `json:"helloInterval"`
	// Instance identifies the node's data folder (see registry.Node).
	Instance string `json:"instance,omitempty"`
	// QueueOK, QueueRecreatedAt and QueueRecreations describe the node's
	// consumer (see registry.Node).
	QueueOK          bool      `json:"queueOk,omitempty"`
	QueueRecreatedAt time.Time `json:"queueRecreatedAt,omitzero"`
	QueueRecreations int       `json:"queueRecreations,omitempty"`
	// Goodbye is the last hello of a node that stops cleanly.
	Goodbye bool `json:"goodbye,omitempty"`
	// Labels are the node's labels (its labels setting); the registry
	// keeps what the latest hello says.
	Labels map[string]string `json:"labels,omitempty"`
}

var hello = Spec{
	Name:           "REQHello",
	Summary:        "node → central heartbeat: central records the sender in the node registry",
	Kind:           Event,
	DefaultTimeout: 10 * time.Second,
	// A hello only updates the registry to what it says: running it twice
	// is harmless, so it is neither in the ledger nor in the audit log.
	Idempotent: true,
	Handler:    runHello,
}

// runHello updates the sender's registry record. A hello without hello
// info (an operator's REQHello message) only marks the node seen. A hello
// from another instance while the recorded one is still online (by the
// broker's clock) marks the record with a conflict.
func runHello(ctx context.Context, req *Request) (*Result, error) {
	if req.Env.Nodes == nil {
		return nil, fmt.Errorf("hello from %s reached %s, but only the central node keeps the registry", req.Msg.FromNode, req.Env.NodeName)
	}
	name := req.Msg.FromNode
	var info *HelloInfo
	if len(req.Msg.Data) > 0 {
		info = &HelloInfo{}
		if err := json.Unmarshal(req.Msg.Data, info); err != nil {
			return nil, fmt.Errorf("hello from %s: data is not hello info: %w", name, errors.Join(ErrBadArgs, err))
		}
	}
	err := req.Env.Nodes.Change(ctx, name, func(prev *registry.Node) (*registry.Node, error) {
		n := &registry.Node{Name: name}
		if prev != nil {
			c := *prev
			n = &c
		} else {
			prev = &registry.Node{}
		}
		n.LastSeen = req.Env.now().UTC()
		if info == nil {
			return n, nil
		}
		if req.Stored.Before(prev.HelloAt) {
			// A hello older than the one the record says what it says
			// from (hellos are handled in parallel): it is news to none.
			return nil, nil
		}
		n.HelloAt = req.Stored
		n.Version, n.Methods, n.StartedAt, n.HelloInterval = info.Version, info.Methods, info.StartedAt, info.HelloInterval
		n.QueueOK, n.QueueRecreatedAt, n.QueueRecreations = info.QueueOK, info.QueueRecreatedAt, info.QueueRecreations
		n.Labels = info.Labels
		n.StoppedAt = time.Time{}
		if info.Goodbye {
			n.StoppedAt = req.Stored
		}
		if info.Instance != "" {
			if prev.Instance != "" && prev.Instance != info.Instance && prev.Online(req.Stored) {
				n.Conflict = fmt.Sprintf("instances %s and %s both say hello as node %s: two nodes share one name (and one queue)", prev.Instance, info.Instance, name)
				req.Log.Warn("two nodes use one name", "name", name, "instances", []string{prev.Instance, info.Instance})
			} else if prev.Instance != info.Instance {
				n.Conflict = ""
			}
			n.Instance = info.Instance
		}
		return n, nil
	})
	if err != nil {
		return nil, err
	}
	return &Result{}, nil
}
