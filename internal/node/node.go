// Package node runs one steward node: its connection to the broker (or its
// embedded broker), its durable consumer, the methods it runs, the replies
// and error reports it sends, its hellos and its unix socket.
package node

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/stewardfleet/steward/internal/config"
)

// Options are the node's collaborators that do not come from config.
type Options struct {
	Logger  *slog.Logger
	Stdout  io.Writer // where REQToConsole prints; os.Stdout when nil
	Version string
	// Ready, if not nil, is closed once the node consumes its queue.
	Ready chan<- struct{}
}

// Run runs a node until ctx ends, then shuts it down in order.
func Run(ctx context.Context, cfg config.Config, opts Options) error {
	return errors.New("not yet")
}
