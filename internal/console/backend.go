package console

import (
	"context"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
)

// Backend is what the console shows and changes: the node's sender, and a
// client connection to the broker for the rest.
type Backend struct {
	// Send sends operator input as the socket and the HTTP API do.
	Send func(ctx context.Context, input []byte) ([]sender.Receipt, error)
	// DryRun checks input and resolves its targets, sending nothing.
	DryRun func(ctx context.Context, input []byte) ([]sender.Receipt, error)
	// Status returns the records of message id (status.Compare's order).
	Status func(ctx context.Context, id string) ([]*status.Record, error)
	// Cancel cancels message id where it has not ended (client.Cancel).
	Cancel func(ctx context.Context, id string) ([]client.Cancelled, error)
	// Results gives message id's output as its nodes sent it back
	// (client.Results).
	Results func(ctx context.Context, id string, follow bool, fn func(client.Output)) error
	// WatchRegistry and WatchStatuses stream the registry's and the status
	// bucket's changes (client.WatchRegistry, client.WatchStatuses).
	WatchRegistry func(ctx context.Context) (<-chan client.RegistryChange, error)
	WatchStatuses func(ctx context.Context, initial bool) (<-chan *status.Record, error)
	// QueueDepths returns the messages waiting in each node's queue.
	QueueDepths func(ctx context.Context) (map[string]uint64, error)
}
