package methods

import (
	"context"
	"io"
	"time"
)

// cliCommandCont runs a command like REQCliCommand, but sends its standard
// output and standard error back line by line while it runs (Stream), so
// `tail -f` and other commands that never end by themselves are useful:
// they run until methodTimeout, when the whole process group is killed
// (the delivery is then execution_timed_out, with every line sent).
var cliCommandCont = Spec{
	Name:           "REQCliCommandCont",
	Aliases:        []string{"REQnCliCommandCont"},
	Summary:        "run a command and stream its output and errors back line by line while it runs",
	Kind:           Command,
	DefaultTimeout: 60 * time.Second,
	RunsProcess:    true,
	Streams:        true,
	Validate:       checks("methodArgs", validateCLICommand),
	Handler:        runCLICommandCont,
}

// runCLICommandCont runs the command with its output and errors going to
// the request's stream (each its own line writer); standard error is also
// kept, capped, for the status record. Without a stream (a node that does
// not stream), the output is returned at the end as REQCliCommand does.
func runCLICommandCont(ctx context.Context, req *Request) (*Result, error) {
	if req.Stream == nil {
		return runCLICommand(ctx, req)
	}
	stderr := &cappedBuffer{limit: maxCommandOutput}
	res, err := runCommand(ctx, req, req.Stream.Lines(), io.MultiWriter(req.Stream.Lines(), stderr))
	if res == nil {
		return nil, err
	}
	res.Stderr = stderr.buf
	return res, commandNote(res, err)
}
