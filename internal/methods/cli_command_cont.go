package methods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/stewardfleet/steward/internal/procguard"
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
	Validate:       validateCLICommand,
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
	args := req.Msg.MethodArgs
	if len(args) == 0 || args[0] == "" {
		return nil, fmt.Errorf(`%w: methodArgs must hold the command and its arguments, e.g. ["sh", "-c", "tail -f /var/log/syslog"]`, ErrBadArgs)
	}
	cmd, err := procguard.Command(ctx, args)
	if err != nil {
		return nil, fmt.Errorf("run command: %w", err)
	}
	if req.Env != nil && req.Env.Files != nil {
		cmd.Dir = req.Env.Files.Dir()
	}
	cmd.Record = req.RunRecord
	stderr := &cappedBuffer{limit: maxCommandOutput}
	cmd.Stdout = req.Stream.Lines()
	cmd.Stderr = io.MultiWriter(req.Stream.Lines(), stderr)

	runErr := cmd.Run()
	if !cmd.Exited() {
		return nil, fmt.Errorf("run command %q: %w", args[0], runErr)
	}
	code := cmd.ExitCode()
	res := &Result{Stderr: stderr.buf, ExitCode: &code}
	switch {
	case runErr == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("command %q killed: %w", args[0], ctx.Err())
	case errors.Is(runErr, exec.ErrWaitDelay):
		res.Stderr = appendNote(res.Stderr, "output may be incomplete: a process the command left running kept its output open")
		return res, nil
	case code != 0:
		return res, fmt.Errorf("command %q exited with code %d", args[0], code)
	default:
		return res, fmt.Errorf("command %q: %w", args[0], runErr)
	}
}
