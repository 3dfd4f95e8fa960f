package methods

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/stewardfleet/steward/internal/display"
)

var toConsole = Spec{
	Name:           "REQToConsole",
	Summary:        "print the data on the node's standard output",
	Kind:           ReplyHandler,
	DefaultTimeout: 30 * time.Second,
	Handler:        runToConsole,
}

func runToConsole(_ context.Context, req *Request) (*Result, error) {
	var out io.Writer = os.Stdout
	if req.Env.Stdout != nil {
		out = req.Env.Stdout
	}
	m := req.Msg
	what := m.Method
	if m.Reply != nil {
		what = fmt.Sprintf("%s %s", m.Reply.Method, m.Reply.Status)
	}
	// The data is another node's output: it must not drive the terminal.
	data := display.Safe(m.Data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	head := display.String(fmt.Sprintf("--- from %s: %s (message %s)", m.FromNode, what, m.ID))
	if _, err := fmt.Fprintf(out, "%s\n%s", head, data); err != nil {
		return nil, fmt.Errorf("print: %w", err)
	}
	return &Result{}, nil
}
