package methods

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"time"

	"github.com/stewardfleet/steward/internal/display"
	"github.com/stewardfleet/steward/internal/message"
)

// ErrorLogDir and ErrorLogFile name the central error log:
// <data folder>/errorLog/<reporting node>/errors.log.
const (
	ErrorLogDir  = message.ErrorLogPath
	ErrorLogFile = "errors.log"
)

var errorLog = Spec{
	Name:           "REQErrorLog",
	Summary:        "node → central error report: central appends it to errorLog/<node>/errors.log",
	Kind:           Event,
	DefaultTimeout: 10 * time.Second,
	Handler:        runErrorLog,
}

func runErrorLog(_ context.Context, req *Request) (*Result, error) {
	m := req.Msg
	// Not ReplyPath: no message may name this folder, only this method.
	if err := message.ValidNodeName(m.FromNode); err != nil {
		return nil, fmt.Errorf("source node: %w", err)
	}
	rel := path.Join(ErrorLogDir, m.FromNode, ErrorLogFile)
	when := lineTime(req) // when the node sent the report
	// One report per entry, each starting with its time: the report's own
	// lines are indented, and nothing in it can drive a terminal.
	text := bytes.TrimRight(m.Data, "\n")
	shown := bytes.ReplaceAll(display.Safe(text), []byte("\n"), []byte("\n    "))
	line := fmt.Appendf(nil, "%s %s: %s\n", when.UTC().Format(time.RFC3339), m.FromNode, shown)
	if _, _, err := appendOnce(req, rel, line); err != nil {
		return nil, err
	}
	req.Log.Warn("error reported by node", "from", m.FromNode, "error", string(text))
	return &Result{}, nil
}
