package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

var opCommand = Spec{
	Name:           "REQOpCommand",
	Summary:        "the older form of the process operations: operation {opCmd: ps | startProc | stopProc, opArg}",
	Kind:           Command,
	DefaultTimeout: 10 * time.Second,
	Validate:       checks("operation", validateOpCommand),
	Handler:        runOpCommand,
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
