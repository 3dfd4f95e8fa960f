package methods

import (
	"context"
	"time"
)

// cliCommand is being written; see the cli_command task.
var cliCommand = Spec{
	Name:           "REQCliCommand",
	Aliases:        []string{"REQnCliCommand", "cli"},
	Summary:        "run a command and return its standard output when it ends",
	Kind:           Command,
	DefaultTimeout: 60 * time.Second,
	Handler: func(ctx context.Context, req *Request) (*Result, error) {
		return nil, ErrBadArgs
	},
}
