package methods

import (
	"context"
	"io"
	"time"

	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/registry"
)

// Env is what handlers may use of the node they run on. Fields a method
// does not need may be nil in its tests.
type Env struct {
	// NodeName is the node the handler runs on.
	NodeName string
	// CentralNodeName is the fleet's central node.
	CentralNodeName string
	// Version is the steward version of this node.
	Version string
	// Files is the node's data folder; every path a message names is
	// confined to it.
	Files *datafolder.Folder
	// Stdout is where REQToConsole prints.
	Stdout io.Writer
	// Nodes is the node registry (central only).
	Nodes NodeRegistry
	// Now returns the current time (tests may fix it).
	Now func() time.Time
	// Procs is the node's process table (the process operations).
	Procs ProcessTable
	// RefreshKeys makes the node take the fleet's key set from the broker
	// if it is newer, and describes the keys in use.
	RefreshKeys func(ctx context.Context) (string, error)
}

// NodeRegistry is the part of the node registry the hello method needs.
type NodeRegistry interface {
	Change(ctx context.Context, name string, change func(prev *registry.Node) (*registry.Node, error)) error
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}
