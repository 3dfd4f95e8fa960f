package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/procs"
)

// The node's process table (package procs): which request methods it
// serves and for whom, and which deliveries run now. The node publishes
// it to the broker (bucket steward_procs, key <node>) for `steward ps`,
// at most every procsInterval, whenever it changes.

const procsInterval = time.Second

// newProcs builds the node's process table from its configuration.
func (n *Node) newProcs() (*procs.Table, error) {
	conf, err := procs.ParseConfig(n.cfg.Methods)
	if err != nil {
		return nil, err
	}
	var served []string
	for _, s := range n.methods.Specs() {
		if s.Kind == methods.Command && !s.Internal {
			served = append(served, s.Name)
		}
	}
	// Aliases in the configuration name their method.
	canonical := map[string]string{}
	for name, senders := range conf {
		c, err := (procTable{n}).Canonical(name)
		if err != nil {
			return nil, fmt.Errorf("methods: %w", err)
		}
		canonical[c] = senders
	}
	return procs.New(n.cfg.NodeName, served, canonical, n.now)
}

// procTable is the process table as methods.ProcessTable: it resolves
// aliases with the node's methods.
type procTable struct{ n *Node }

var _ methods.ProcessTable = procTable{}

func (p procTable) Canonical(name string) (string, error) {
	spec, err := p.n.methods.Lookup(name)
	if err != nil && !errors.Is(err, methods.ErrMethodDisabled) {
		return "", err
	}
	if spec.Kind != methods.Command || spec.Internal {
		return "", fmt.Errorf("%s is not a request method (replies and events always run)", spec.Name)
	}
	return spec.Name, nil
}

func (p procTable) Snapshot() procs.Snapshot { return p.n.procs.Snapshot() }

func (p procTable) Start(method string, senders []string) (string, error) {
	return p.n.procs.Start(method, senders)
}

func (p procTable) Stop(method, id, reason string) (string, error) {
	return p.n.procs.Stop(method, id, reason)
}

// publishProcs keeps the table on the broker up to date until ctx ends.
func (n *Node) publishProcs(ctx context.Context) error {
	if n.assets.Procs == nil {
		return nil // a layout older than the bucket
	}
	changed := make(chan struct{}, 1)
	n.procs.Notify(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	for {
		s := n.procs.Snapshot()
		if b, err := json.Marshal(s); err == nil {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := n.assets.Procs.Put(pctx, n.cfg.NodeName, b); err != nil && ctx.Err() == nil {
				n.log.Debug("process table not published", "error", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(procsInterval):
		}
	}
}

// stopped is the cause of a delivery stopped through the process table.
type stopped struct{ reason string }

func (s stopped) Error() string { return s.reason }
