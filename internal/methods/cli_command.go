package methods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	Validate:       validateCLICommand,
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
	stdout := &cappedBuffer{limit: maxCommandOutput}
	stderr := &cappedBuffer{limit: maxCommandOutput}
	if req.RunRecord != "" {
		procguard.SetExitFile(cmd, req.RunRecord+exitSuffix)
		stdout.spool = createSpool(req.RunRecord+outSuffix, req.Log)
		stderr.spool = createSpool(req.RunRecord+errSuffix, req.Log)
		defer stdout.spool.Close()
		defer stderr.spool.Close()
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	runErr := procguard.Run(cmd)
	if cmd.Process == nil {
		return nil, fmt.Errorf("start command %q: %w", args[0], runErr)
	}
	if cmd.ProcessState == nil { // the wait itself failed; rare
		return nil, fmt.Errorf("wait for command %q: %w", args[0], runErr)
	}

	res := &Result{Output: stdout.buf, Stderr: stderr.buf}
	code := procguard.ExitCode(cmd.ProcessState)
	res.ExitCode = &code
	for _, s := range []struct {
		name string
		buf  *cappedBuffer
	}{{"stdout", stdout}, {"stderr", stderr}} {
		if s.buf.dropped > 0 {
			res.Stderr = appendNote(res.Stderr, "%s truncated after %s (%d more bytes discarded)", s.name, sizeText(s.buf.limit), s.buf.dropped)
		}
	}

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
		res.Stderr = appendNote(res.Stderr, "output may be incomplete: a process the command left running kept its output open")
		return res, nil
	case code != 0:
		return res, fmt.Errorf("command %q exited with code %d", args[0], code)
	default:
		return res, fmt.Errorf("command %q: %w", args[0], runErr)
	}
}

// cappedBuffer keeps the first limit bytes written to it and counts the
// rest, which it accepts and drops so the command never blocks on a full
// pipe. What it keeps also goes to spool, when there is one.
type cappedBuffer struct {
	buf     []byte
	limit   int
	dropped int64
	spool   *os.File
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	keep := min(len(p), max(b.limit-len(b.buf), 0))
	b.buf = append(b.buf, p[:keep]...)
	b.dropped += int64(len(p) - keep)
	if b.spool != nil && keep > 0 {
		if _, err := b.spool.Write(p[:keep]); err != nil {
			b.spool.Close()
			b.spool = nil // the record is best effort: the run goes on
		}
	}
	return len(p), nil
}

// Suffixes of a run's record files (see Request.RunRecord).
const (
	exitSuffix = ".exit"
	outSuffix  = ".out"
	errSuffix  = ".err"
)

// createSpool opens a fresh file for a run's output, or returns nil (the
// run goes on without a record) when it cannot.
func createSpool(path string, log *slog.Logger) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		if log != nil {
			log.Warn("cannot keep a record of the command's output", "error", err)
		}
		return nil
	}
	return f
}

// EndedRun returns what a run left in its record (see Request.RunRecord)
// if its process ended: its exit code, and the output and standard error
// the node had read when it stopped. ok is false when the process did not
// end (it was killed with its node, or never started).
func EndedRun(record string) (res *Result, ok bool) {
	code, ok := procguard.ReadExitFile(record + exitSuffix)
	if !ok {
		return nil, false
	}
	out, _ := os.ReadFile(record + outSuffix)
	errOut, _ := os.ReadFile(record + errSuffix)
	return &Result{Output: out, Stderr: errOut, ExitCode: &code}, true
}

// RemoveRunRecord deletes a run's record files.
func RemoveRunRecord(record string) {
	for _, suffix := range []string{exitSuffix, outSuffix, errSuffix} {
		os.Remove(record + suffix)
	}
}

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
