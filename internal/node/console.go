package node

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/console"
	"github.com/stewardfleet/steward/internal/httpapi"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/sender"
)

// openConsole opens the fleet console (--console; config.Validate keeps it
// to the central node). It sends through the node's sender, as the socket
// and the HTTP API do, and reads the fleet through a client connection of
// its own, which close closes. Off: nil.
func (n *Node) openConsole(ctx context.Context) (c *console.Console, close func(), err error) {
	if n.cfg.Console == "" {
		return nil, func() {}, nil
	}
	var token string
	if n.cfg.HTTPAPITokenFile != "" {
		if token, err = httpapi.LoadToken(n.cfg.HTTPAPITokenFile); err != nil {
			return nil, nil, fmt.Errorf("console: http-api-token-file: %w", err)
		}
	}
	tlsConfig, err := n.httpTLS()
	if err != nil {
		return nil, nil, fmt.Errorf("console: %w", err)
	}
	fl, err := client.ConnectTraced(ctx, n.cfg, n.tracing)
	if err != nil {
		return nil, nil, fmt.Errorf("console: %w", err)
	}
	dryRun := func(ctx context.Context, input []byte) ([]sender.Receipt, error) {
		return n.sender.SendInputWith(ctx, input, sender.InputOptions{Resolver: n.targetResolver(), Hold: true})
	}
	c, err = console.Listen(console.Backend{
		Send: n.sendInput, DryRun: dryRun, Status: n.status.List, Cancel: fl.Cancel, Results: fl.Results,
		WatchRegistry: fl.WatchRegistry, WatchStatuses: fl.WatchStatuses, QueueDepths: fl.QueueDepths,
	}, console.Options{
		Addr: n.cfg.Console, Token: token, Central: n.cfg.CentralNodeName,
		ErrorLogFolder: filepath.Join(n.files.Dir(), message.ErrorLogPath), JaegerURL: n.cfg.ConsoleJaegerURL,
		TLS: tlsConfig, Logger: n.log.With("component", "console"),
	})
	if err != nil {
		fl.Close()
		return nil, nil, err
	}
	return c, fl.Close, nil
}
