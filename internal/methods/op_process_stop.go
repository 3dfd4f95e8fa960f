package methods

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

var opProcessStop = Spec{
	Name:           "REQOpProcessStop",
	Summary:        "stop a method (its messages are rejected, its running deliveries stopped): methodArgs [method] or [method, node, kind, delivery]",
	Kind:           Command,
	DefaultTimeout: 10 * time.Second,
	Validate:       checks("methodArgs", validateOpProcessStop),
	Handler:        runOpProcessStop,
}

func validateOpProcessStop(m *message.Message) error {
	if n := len(m.MethodArgs); n != 1 && n != 4 || m.MethodArgs[0] == "" {
		return fmt.Errorf(`REQOpProcessStop needs methodArgs [method] or [method, node, kind, delivery], e.g. ["REQHttpGet"]: %w`, message.ErrFieldValue)
	}
	return nil
}

func runOpProcessStop(_ context.Context, req *Request) (*Result, error) {
	args := req.Msg.MethodArgs
	if len(args) != 1 && len(args) != 4 {
		return nil, fmt.Errorf("%w: methodArgs must be [method] or [method, node, kind, delivery]", ErrBadArgs)
	}
	var node, kind, id string
	if len(args) == 4 {
		node, kind, id = args[1], args[2], args[3]
	}
	return stop(req, args[0], node, kind, id)
}

func stop(req *Request, method, node, kind, id string) (*Result, error) {
	t, err := table(req)
	if err != nil {
		return nil, err
	}
	name, err := t.Canonical(method)
	if err != nil {
		return nil, errors.Join(ErrBadArgs, err)
	}
	switch {
	case node != "" && node != req.Env.NodeName:
		return nil, fmt.Errorf("%w: the process is on %s, this is %s (send the stop there)", ErrBadArgs, node, req.Env.NodeName)
	case kind != "" && kind != "subscriber":
		return nil, fmt.Errorf("%w: kind %q: a node has only subscriber processes (the methods it serves)", ErrBadArgs, kind)
	case id == "" && slicesContains(operations, name):
		return nil, fmt.Errorf("%w: %s cannot be stopped: nothing could start it again", ErrBadArgs, name)
	}
	msg, err := t.Stop(name, id, fmt.Sprintf("stopped by %s from %s (message %s)", req.Msg.Method, req.Msg.FromNode, req.Msg.ID))
	if err != nil {
		return nil, err
	}
	return &Result{Output: []byte(msg + "\n")}, nil
}
