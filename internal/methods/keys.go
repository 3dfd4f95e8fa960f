package methods

import (
	"context"
	"errors"
	"time"
)

var keys = Spec{
	Name:    "REQKeys",
	Summary: "take the fleet's key set from the broker if newer (central signs it; steward keys trust/revoke send this)",
	Kind:    Command,
	// The key set is checked against central's key in the node's own
	// trusted-keys file: whoever asks, the node takes nothing else.
	PolicyExempt:   true,
	DefaultTimeout: 30 * time.Second,
	Handler:        runKeys,
}

func runKeys(ctx context.Context, req *Request) (*Result, error) {
	if req.Env.RefreshKeys == nil {
		return nil, errors.New("this node keeps no keys")
	}
	desc, err := req.Env.RefreshKeys(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{Output: []byte(desc + "\n")}, nil
}
