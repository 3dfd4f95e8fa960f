package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes of steward. Scripts can rely on them; `steward send --help`
// repeats them.
const (
	// ExitOK: everything worked (send: every message was sent and, with
	// --wait, every delivery succeeded).
	ExitOK = 0
	// ExitFailed: some delivery did not succeed (send --wait), some message
	// was rejected (send), a message was not found (status), or the command
	// failed for another reason (a node that stopped with an error).
	ExitFailed = 1
	// ExitUsage: bad flags or arguments, an unreadable input file, input
	// with no valid message, or an invalid configuration.
	ExitUsage = 2
	// ExitUnreachable: the broker cannot be reached.
	ExitUnreachable = 3
	// ExitTimeout: send --timeout passed before every delivery ended.
	ExitTimeout = 4
)

// ExitError carries the exit code for an error. An ExitError with a nil Err
// has already been reported to the user; only its code matters.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// exitError wraps err with code. A nil err means "already reported".
func exitError(code int, err error) error { return &ExitError{Code: code, Err: err} }

// usageError marks err as a usage error of cmd and points to its help.
func usageError(cmd *cobra.Command, err error) error {
	return exitError(ExitUsage, fmt.Errorf("%w\nrun '%s --help' for usage", err, cmd.CommandPath()))
}

// ExitCode maps an error returned by the root command to the process exit
// code: 0 for nil, the code of an ExitError, and ExitFailed otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if e, ok := errors.AsType[*ExitError](err); ok {
		return e.Code
	}
	return ExitFailed
}

// Report writes err to w (unless it was already reported) and returns
// its exit code. main calls it with what the root command returned.
func Report(w io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	if e, ok := errors.AsType[*ExitError](err); !ok || e.Err != nil {
		fmt.Fprintf(w, "steward: %v\n", err)
	}
	return ExitCode(err)
}
