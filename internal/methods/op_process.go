package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/procs"
)

// The process operations: a node's process table (package procs) lists the
// methods it serves and for whom, and the deliveries it runs now. Starting
// a method serves it again (for the senders given, or every node);
// stopping it rejects its messages ("method not running") and stops its
// running deliveries, which end cancelled. The operations themselves
// cannot be stopped: nothing could start them again.

// ProcessTable is the part of a node's process table the operations use.
// Method names may be aliases; Canonical resolves one to the request
// method it names (or fails: unknown, or not a request method).
type ProcessTable interface {
	Canonical(method string) (string, error)
	Snapshot() procs.Snapshot
	Start(method string, senders []string) (string, error)
	Stop(method, id, reason string) (string, error)
}

var opProcessList = Spec{
	Name:           "REQOpProcessList",
	Summary:        "list the node's processes: the methods it serves and for whom, and the deliveries it runs now",
	Kind:           Command,
	DefaultTimeout: 10 * time.Second,
	Handler:        runOpProcessList,
}

var opProcessStart = Spec{
	Name:           "REQOpProcessStart",
	Summary:        "serve a method again: methodArgs [method, sender…] (no senders: every node)",
	Kind:           Command,
	DefaultTimeout: 10 * time.Second,
	Validate:       validateOpProcessStart,
	Handler:        runOpProcessStart,
}

var opProcessStop = Spec{
	Name:           "REQOpProcessStop",
	Summary:        "stop a method (its messages are rejected, its running deliveries stopped): methodArgs [method] or [method, node, kind, delivery]",
	Kind:           Command,
	DefaultTimeout: 10 * time.Second,
	Validate:       validateOpProcessStop,
	Handler:        runOpProcessStop,
}

var opCommand = Spec{
	Name:           "REQOpCommand",
	Summary:        "the older form of the process operations: operation {opCmd: ps | startProc | stopProc, opArg}",
	Kind:           Command,
	DefaultTimeout: 10 * time.Second,
	Validate:       validateOpCommand,
	Handler:        runOpCommand,
}

// operations are the methods a stop must not reach.
var operations = []string{"REQOpProcessList", "REQOpProcessStart", "REQOpProcessStop", "REQOpCommand"}

func table(req *Request) (ProcessTable, error) {
	if req.Env == nil || req.Env.Procs == nil {
		return nil, errors.New("this node keeps no process table")
	}
	return req.Env.Procs, nil
}

func runOpProcessList(_ context.Context, req *Request) (*Result, error) {
	t, err := table(req)
	if err != nil {
		return nil, err
	}
	return &Result{Output: []byte(t.Snapshot().String())}, nil
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

// opArg is what the older operations carry.
type opArg struct {
	Method        string   `json:"method"`
	AllowedNodes  []string `json:"allowedNodes"`
	Kind          string   `json:"kind"`
	ReceivingNode string   `json:"receivingNode"`
	ID            string   `json:"id"`
}

func validateOpCommand(m *message.Message) error {
	_, _, err := parseOperation(m)
	return err
}

func parseOperation(m *message.Message) (string, opArg, error) {
	var a opArg
	if m.Operation == nil {
		return "", a, fmt.Errorf(`REQOpCommand needs "operation": {"opCmd": "ps" | "startProc" | "stopProc", "opArg": {…}}: %w`, message.ErrFieldValue)
	}
	if len(m.Operation.OpArg) > 0 && string(m.Operation.OpArg) != "null" {
		if err := json.Unmarshal(m.Operation.OpArg, &a); err != nil {
			return "", a, fmt.Errorf("operation.opArg: %v: %w", err, message.ErrFieldValue)
		}
	}
	switch op := m.Operation.OpCmd; op {
	case "ps":
	case "startProc", "stopProc":
		if a.Method == "" {
			return "", a, fmt.Errorf(`operation %s needs opArg.method: %w`, op, message.ErrFieldValue)
		}
	default:
		return "", a, fmt.Errorf(`operation.opCmd %q is not ps, startProc or stopProc: %w`, op, message.ErrFieldValue)
	}
	return m.Operation.OpCmd, a, nil
}

func runOpCommand(ctx context.Context, req *Request) (*Result, error) {
	op, a, err := parseOperation(req.Msg)
	if err != nil {
		return nil, errors.Join(ErrBadArgs, err)
	}
	switch op {
	case "ps":
		return runOpProcessList(ctx, req)
	case "startProc":
		return start(req, a.Method, a.AllowedNodes)
	default:
		return stop(req, a.Method, a.ReceivingNode, a.Kind, a.ID)
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
