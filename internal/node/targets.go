package node

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/stream"
	"github.com/stewardfleet/steward/internal/target"
)

// targetResolver resolves target expressions ("*", label selectors) in
// what the node is given (its socket) against the node registry, read once
// per input. Only the central node keeps the registry: elsewhere it is
// nil, and the sender refuses such messages (unresolved_target).
func (n *Node) targetResolver() sender.Resolver {
	if !n.isCentral() || n.assets == nil || n.assets.Nodes == nil {
		return nil
	}
	reg := registry.New(n.assets.Nodes)
	list := func(ctx context.Context) ([]*registry.Node, time.Time, error) {
		nodes, err := reg.List(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		now, err := stream.BrokerNow(ctx, n.js, n.assets.Deadlines, n.cfg.NodeName)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("read the broker's clock: %w", err)
		}
		return nodes, now, nil
	}
	return target.Resolver(list, target.DefaultExpiry)
}
