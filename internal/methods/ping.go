package methods

import (
	"context"
	"fmt"
	"time"
)

var ping = Spec{
	Name:               "REQPing",
	Summary:            "answer with a pong: a liveness check",
	Kind:               Command,
	DefaultTimeout:     10 * time.Second,
	DefaultReplyMethod: "REQPong",
	Handler: func(_ context.Context, req *Request) (*Result, error) {
		return &Result{Output: fmt.Appendf(nil, "pong from %s at %s", req.Env.NodeName, req.Env.now().UTC().Format(time.RFC3339Nano))}, nil
	},
}
