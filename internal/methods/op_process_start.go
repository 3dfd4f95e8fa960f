package methods

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

var opProcessStart = Spec{
	Name:           "REQOpProcessStart",
	Summary:        "serve a method again: methodArgs [method, sender…] (no senders: every node)",
	Kind:           Command,
	DefaultTimeout: 10 * time.Second,
	Validate:       checks("methodArgs", validateOpProcessStart),
	Handler:        runOpProcessStart,
}

func validateOpProcessStart(m *message.Message) error {
	if len(m.MethodArgs) == 0 || m.MethodArgs[0] == "" {
		return fmt.Errorf(`REQOpProcessStart needs methodArgs [method, sender…], e.g. ["REQHttpGet", "central"]: %w`, message.ErrFieldValue)
	}
	return nil
}

func runOpProcessStart(_ context.Context, req *Request) (*Result, error) {
	args := req.Msg.MethodArgs
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: methodArgs must name the method to start", ErrBadArgs)
	}
	return start(req, args[0], args[1:])
}

func start(req *Request, method string, senders []string) (*Result, error) {
	t, err := table(req)
	if err != nil {
		return nil, err
	}
	name, err := t.Canonical(method)
	if err != nil {
		return nil, errors.Join(ErrBadArgs, err)
	}
	for _, s := range senders {
		if s != "*" && message.ValidNodeName(s) != nil {
			return nil, fmt.Errorf("%w: %q is not a node name", ErrBadArgs, s)
		}
		if s == "*" {
			senders = nil
			break
		}
	}
	msg, err := t.Start(name, senders)
	if err != nil {
		return nil, err
	}
	return &Result{Output: []byte(msg + "\n")}, nil
}
