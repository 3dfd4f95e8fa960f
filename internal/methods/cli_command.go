package methods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/procguard"
)

// cliCommand runs methodArgs as a command line: no shell is added, so
// ["sh", "-c", "…"] is how an operator asks for one. The command runs
// under a process guard (package procguard): when the method's deadline
// passes, when the node dies, or when the command's main process ends,
// every process it started in its process group is killed.
var cliCommand = Spec{
	Name:           "REQCliCommand",
	Aliases:        []string{"REQnCliCommand", "cli"},
	Summary:        "run a command and return its standard output when it ends",
	Kind:           Command,
	DefaultTimeout: 60 * time.Second,
	RunsProcess:    true,
	Validate:       checks("methodArgs", validateCLICommand),
	Handler:        runCLICommand,
}

// maxCommandOutput caps each of a command's standard output and standard
// error; a variable so tests can make it small.
var maxCommandOutput = 64 << 20

func validateCLICommand(m *message.Message) error {
	if len(m.MethodArgs) == 0 || m.MethodArgs[0] == "" {
		return fmt.Errorf(`REQCliCommand needs methodArgs: the command and its arguments, e.g. ["sh", "-c", "uptime"]: %w`, message.ErrFieldValue)
	}
	return nil
}

// runCLICommand runs the command in the node's data folder (or the node's
// working directory when it has none) and returns its standard output as
// Output, with Stderr and ExitCode. A command killed by signal n has exit
// code 128+n. A command that could not be started (not found, not
// executable) has no exit code, and the error says why; except for a path
// with a slash (./run.sh), which the guard resolves when it starts: then
// the exit code is 127 (not found) or 126, as in a shell, and Stderr says
// why.
//
// Any error comes with the Result when the command ran, so the output
// gathered so far is kept: a non-zero exit, and the deadline (the error
// then wraps ctx.Err()).
func runCLICommand(ctx context.Context, req *Request) (*Result, error) {
	stdout := &cappedBuffer{limit: maxCommandOutput}
	stderr := &cappedBuffer{limit: maxCommandOutput}
	res, err := runCommand(ctx, req, stdout, stderr)
	if res == nil {
		return nil, err
	}
	res.Output, res.Stderr = stdout.buf, stderr.buf
	for _, s := range []struct {
		name string
		buf  *cappedBuffer
	}{{"stdout", stdout}, {"stderr", stderr}} {
		if s.buf.dropped > 0 {
			res.Stderr = appendNote(res.Stderr, "%s truncated after %s (%d more bytes discarded)", s.name, sizeText(s.buf.limit), s.buf.dropped)
		}
	}
	return res, commandNote(res, err)
}

// runCommand runs methodArgs under a process guard in the node's data
// folder, with its output going to stdout and stderr, and returns its exit
// code (a nil Result when it did not start) and why it did not succeed:
// a non-zero exit, or ctx's end (the whole process group was killed).
func runCommand(ctx context.Context, req *Request, stdout, stderr io.Writer) (*Result, error) {
	args := req.Msg.MethodArgs
	if len(args) == 0 || args[0] == "" {
		return nil, fmt.Errorf(`%w: methodArgs must hold the command and its arguments, e.g. ["sh", "-c", "uptime"]`, ErrBadArgs)
	}
	cmd, err := procguard.Command(ctx, args)
	if err != nil {
		return nil, fmt.Errorf("run command: %w", err)
	}
	if req.Env != nil && req.Env.Files != nil {
		cmd.Dir = req.Env.Files.Dir()
	}
	cmd.Record = req.RunRecord
	cmd.Stdout, cmd.Stderr = stdout, stderr

	runErr := cmd.Run()
	if !cmd.Exited() {
		return nil, fmt.Errorf("run command %q: %w", args[0], runErr)
	}
	code := cmd.ExitCode()
	res := &Result{ExitCode: &code}
	switch {
	case runErr == nil:
		return res, nil
	case ctx.Err() != nil:
		// The deadline passed or the node is stopping: procguard killed
		// the command's whole process group.
		return res, fmt.Errorf("command %q killed: %w", args[0], ctx.Err())
	case errors.Is(runErr, exec.ErrWaitDelay):
		// The command succeeded, but something it started outside its
		// process group kept the output pipes open.
		return res, errWaitDelay
	case code != 0:
		return res, fmt.Errorf("command %q exited with code %d", args[0], code)
	default:
		return res, fmt.Errorf("command %q: %w", args[0], runErr)
	}
}

// errWaitDelay: the command ended, but a process it left running kept its
// output open; the run counts as succeeded, with a note.
var errWaitDelay = errors.New("output may be incomplete: a process the command left running kept its output open")

// commandNote turns errWaitDelay into a note on the result's stderr.
func commandNote(res *Result, err error) error {
	if errors.Is(err, errWaitDelay) {
		res.Stderr = appendNote(res.Stderr, "%s", errWaitDelay.Error())
		return nil
	}
	return err
}

// cappedBuffer keeps the first limit bytes written to it and counts the
// rest, which it accepts and drops so the command never blocks on a full
// pipe.
type cappedBuffer struct {
	buf     []byte
	limit   int
	dropped int64
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	keep := min(len(p), max(b.limit-len(b.buf), 0))
	b.buf = append(b.buf, p[:keep]...)
	b.dropped += int64(len(p) - keep)
	return len(p), nil
}

// EndedRun returns what a run left in its record (see Request.RunRecord)
// if its process ended by itself: its exit code, output and standard
// error. ok is false when it did not end (it was killed with its node, or
// never started).
func EndedRun(record string) (res *Result, ok bool) {
	r, ok := procguard.ReadRecord(record)
	if !ok {
		return nil, false
	}
	code := r.ExitCode
	return &Result{Output: r.Stdout, Stderr: r.Stderr, ExitCode: &code}, true
}

// RemoveRunRecord deletes a run's record.
func RemoveRunRecord(record string) { procguard.RemoveRecord(record) }

// appendNote adds a line of steward's own to a command's standard error.
func appendNote(stderr []byte, format string, args ...any) []byte {
	if len(stderr) > 0 && stderr[len(stderr)-1] != '\n' {
		stderr = append(stderr, '\n')
	}
	stderr = append(stderr, "steward: "...)
	stderr = fmt.Appendf(stderr, format, args...)
	return append(stderr, '\n')
}

// sizeText says n bytes in MiB when it is a whole number of them.
func sizeText(n int) string {
	if n > 0 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
