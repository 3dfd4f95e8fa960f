package methods

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/datafolder"
)

// ErrorLogDir and ErrorLogFile name the central error log:
// <data folder>/errorLog/<reporting node>/errors.log.
const (
	ErrorLogDir  = "errorLog"
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
	rel, err := datafolder.ReplyPath(ErrorLogDir, m.FromNode, ErrorLogFile)
	if err != nil {
		return nil, err
	}
	when := m.SentAt
	if when.IsZero() {
		when = req.Env.now()
	}
	text := bytes.TrimRight(m.Data, "\n")
	line := fmt.Appendf(nil, "%s %s: %s\n", when.UTC().Format(time.RFC3339), m.FromNode, text)
	if _, err := req.Env.Files.Write(rel, line, true); err != nil {
		return nil, err
	}
	req.Log.Warn("error reported by node", "from", m.FromNode, "error", string(text))
	return &Result{}, nil
}
