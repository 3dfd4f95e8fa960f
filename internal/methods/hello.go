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
}

var hello = Spec{
	Name:           "REQHello",
	Summary:        "node → central heartbeat: central records the sender in the node registry",
	Kind:           Event,
	DefaultTimeout: 10 * time.Second,
	Handler:        runHello,
}

func runHello(ctx context.Context, req *Request) (*Result, error) {
	if req.Env.Nodes == nil {
		return nil, fmt.Errorf("hello from %s reached %s, but only the central node keeps the registry", req.Msg.FromNode, req.Env.NodeName)
	}
	n := &registry.Node{Name: req.Msg.FromNode, LastSeen: req.Env.now().UTC()}
	if len(req.Msg.Data) > 0 {
		var info HelloInfo
		if err := json.Unmarshal(req.Msg.Data, &info); err != nil {
			return nil, fmt.Errorf("hello from %s: data is not hello info: %w", req.Msg.FromNode, errors.Join(ErrBadArgs, err))
		}
		n.Version, n.Methods, n.StartedAt, n.HelloInterval = info.Version, info.Methods, info.StartedAt, info.HelloInterval
	}
	if err := req.Env.Nodes.Put(ctx, n); err != nil {
		return nil, err
	}
	return &Result{}, nil
}
