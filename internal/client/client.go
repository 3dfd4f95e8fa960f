// Package client is what the operator commands (send, status, nodes) use:
// a connection to the fleet's broker as the configured node, sending
// messages, waiting for their deliveries to end, and reading status and
// the node registry.
package client

import (
	"context"
	"errors"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/status"
)

// Client is a connection to the broker for operator commands.
type Client struct{}

// Connect connects to cfg.ClientBrokerURL() as node cfg.NodeName.
func Connect(ctx context.Context, cfg config.Config) (*Client, error) {
	return nil, errors.New("not yet")
}

// Close closes the connection.
func (c *Client) Close() {}

// Receipt tells what became of one message of a batch.
type Receipt struct {
	// Index is the message's position in the input (0-based).
	Index int `json:"index"`
	// ID is the assigned message ID ("" when the message was rejected).
	ID string `json:"id,omitempty"`
	// Method and Nodes echo what was sent.
	Method string   `json:"method,omitempty"`
	Nodes  []string `json:"nodes,omitempty"`
	// Error says why the message was not sent.
	Error string `json:"error,omitempty"`
	// Code is the error's stable code.
	Code string `json:"code,omitempty"`
}

// Send decodes, validates and sends a batch (JSON array or one object).
// It returns one receipt per input message; err is set only when nothing
// could be read or sent at all.
func (c *Client) Send(ctx context.Context, input []byte) ([]Receipt, error) {
	return nil, errors.New("not yet")
}

// Wait blocks until every delivery of the given message IDs is terminal or
// ctx ends, calling progress (if not nil) on each change. It returns the
// latest record of every delivery, sorted by message order then node.
func (c *Client) Wait(ctx context.Context, ids []string, progress func(*status.Record)) ([]*status.Record, error) {
	return nil, errors.New("not yet")
}

// Status returns the records of every delivery of message id.
func (c *Client) Status(ctx context.Context, id string) ([]*status.Record, error) {
	return nil, errors.New("not yet")
}

// Nodes returns the node registry.
func (c *Client) Nodes(ctx context.Context) ([]*registry.Node, error) {
	return nil, errors.New("not yet")
}
