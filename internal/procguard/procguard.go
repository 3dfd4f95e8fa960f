// Package procguard runs commands so that no process they start outlives
// the node that started them (Linux only).
//
// The node does not exec a command itself. On first use it starts one
// guard: its own binary, re-executed once in guard mode, that lives as long
// as the node and starts every command for it. The guard puts each command
// in a process group of its own. Guarantees, for every process that stays
// in that group (the command, its children, their children, …):
//
//   - When the node process dies, even by SIGKILL, the guard notices at once
//     (its control socket to the node closes; the kernel also sends it
//     SIGTERM, its parent-death signal) and kills every command's whole
//     group with SIGKILL, then exits.
//   - When a command's context is done, its whole group is killed with
//     SIGKILL, and Wait does not hang on output pipes held open by
//     processes that escaped the group (see Cmd.WaitDelay).
//   - When a command's main process ends, the guard kills whatever it left
//     running in its group before reporting the exit code, so a command
//     never leaves processes behind. A background job that is still running
//     when the main process exits is killed: commands that want it to
//     finish must wait for it (`sleep 3 & …; wait`). The main process is
//     reaped only after that kill, so its group id cannot have been reused.
//   - The exit code is the command's, or 128+n when the command was killed
//     by signal n, like a shell.
//   - With a run record (Cmd.Record), the guard keeps the command's output
//     on disk as the command writes it, and its exit code once it ended by
//     itself: a node that dies right after its command ended (before it
//     could record the outcome) learns at restart that the command ran and
//     what it printed, and does not run it again (see record.go).
//   - A guard that is killed on its own takes its commands' main processes
//     with it (their parent-death signal); the node starts a new guard for
//     its next command.
//
// Why one guard per node rather than one per command (as before): starting
// a Go binary of 20 MB for every command cost about 8 ms of CPU, several
// times the command itself; the long-lived guard starts a command with one
// fork/exec, as os/exec does (docs/performance.md has the measurements).
//
// What cannot be guaranteed: a process that leaves the group (setsid,
// setpgid, a daemon that double-forks into a new session, anything started
// through systemd or another service manager) is not tracked. Neither is
// the guard protected against a SIGKILL aimed at it alone (e.g. the OOM
// killer): its commands' main processes die, but their children survive.
//
// A program that uses this package must call MaybeRun first thing in main,
// and in TestMain of every test binary that runs guarded commands.
package procguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Guard mode is selected by both the environment variable and argv[0], so
// an operator who exports the variable by accident does not turn the node
// into a guard. Commands get the node's environment without it, so a
// command that runs steward itself gets a normal steward.
const (
	markerEnv   = "STEWARD_PROCGUARD"
	markerValue = "2"
	guardArgv0  = "steward-procguard"
)

// selfExe is the path the guard is started from: the kernel resolves it to
// the running binary at exec time, so it works even when the binary on
// disk has been replaced (an upgrade) since the node started.
const selfExe = "/proc/self/exe"

// DefaultWaitDelay is how long Wait keeps reading the command's output
// after its main process ended and its group was killed. Only processes
// that escaped the group can hold the pipes that long.
const DefaultWaitDelay = 5 * time.Second

// Exit codes of a command that could not be started, as in a shell.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)

var (
	// ErrEmptyCommand: Command got no command line.
	ErrEmptyCommand = errors.New("empty command line")
	// ErrGuardDied: the guard ended while the command ran (it was killed);
	// the command's main process died with it.
	ErrGuardDied = errors.New("the process guard ended while the command ran")
)

// executable reports whether the node's binary can be found; a variable so
// tests can exercise the unguarded fallback.
var executable = os.Executable

// Cmd is a command to run under the guard. Set its fields before Start.
type Cmd struct {
	// Args is the command line; Args[0] was resolved by Command.
	Args []string
	// Dir is the working directory ("" is the node's).
	Dir string
	// Env is the command's environment (nil: the node's).
	Env []string
	// Stdout and Stderr receive the command's output (nil: discarded).
	// Standard input is always /dev/null.
	Stdout, Stderr io.Writer
	// Record, if set, is the base path of the run record the guard keeps
	// (see record.go). An unguarded command keeps none.
	Record string
	// WaitDelay bounds how long Wait waits for the output after the main
	// process ended (DefaultWaitDelay unless set).
	WaitDelay time.Duration

	ctx  context.Context
	path string

	run     *run // the guarded run, or
	raw     *exec.Cmd
	rawDone <-chan error

	started  bool
	exited   bool
	code     int
	killedBy bool // the context's kill ended it
}

// ExitError is a command's non-zero exit.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	if e.Code > 128 && e.Code < 128+65 {
		return fmt.Sprintf("exit status %d (signal %v)", e.Code, syscall.Signal(e.Code-128))
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// Command returns a command that runs args under the guard. args[0] is
// looked up in PATH now, as exec.Command does, so a missing program is an
// error wrapping exec.ErrNotFound; a name with a slash is resolved when the
// command starts, relative to Dir, and if it cannot be run the command
// ends with 127 (not found) or 126 and says why on standard error.
//
// If the node's binary cannot be found (os.Executable fails), the command
// runs unguarded, in its own process group with SIGKILL as its
// parent-death signal: the context still kills the whole group, but if the
// node dies, only the command's main process is killed; its children may
// survive.
func Command(ctx context.Context, args []string) (*Cmd, error) {
	if len(args) == 0 || args[0] == "" {
		return nil, ErrEmptyCommand
	}
	path := args[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return nil, err
		}
		path = p
	}
	return &Cmd{Args: slices.Clone(args), ctx: ctx, path: path, WaitDelay: DefaultWaitDelay}, nil
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Start starts the command. An error means it did not start (the guard
// could not be reached); a program that cannot be executed is reported by
// Wait as exit code 127 or 126.
func (c *Cmd) Start() error {
	if c.started {
		return errors.New("procguard: already started")
	}
	if c.ctx == nil {
		return errors.New("procguard: Cmd not made by Command")
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	env = withoutMarker(env)
	if c.WaitDelay <= 0 {
		c.WaitDelay = DefaultWaitDelay
	}
	if _, err := executable(); err != nil {
		c.raw = newUnguarded(c, env)
		if c.rawDone, err = startUnguarded(c.raw); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				c.started, c.exited, c.code = true, true, exitNotFound
				fmt.Fprintf(orDiscard(c.Stderr), "steward procguard: %v\n", err)
				return nil
			}
			return err
		}
		c.started = true
		return nil
	}
	g, err := theGuard()
	if err != nil {
		return err
	}
	r, err := g.start(c, env)
	if err != nil {
		return err
	}
	c.run, c.started = r, true
	return nil
}

// Wait waits for the command to end and for its output. It returns nil
// after a zero exit, an *ExitError after a non-zero one, an error wrapping
// the context's error when the context killed it, exec.ErrWaitDelay when
// something it left outside its group held its output open past WaitDelay,
// and ErrGuardDied when the guard was killed under it.
func (c *Cmd) Wait() error {
	if !c.started {
		return errors.New("procguard: not started")
	}
	switch {
	case c.run != nil:
		return c.run.wait(c)
	case c.raw != nil && !c.exited:
		return waitUnguarded(c)
	}
	return c.exitErr(nil)
}

// Exited reports whether the command ran to an end (killed included) and
// ExitCode is its exit code.
func (c *Cmd) Exited() bool { return c.exited }

// ExitCode is the exit code once Exited, 128+n when signal n ended it; -1
// before.
func (c *Cmd) ExitCode() int {
	if !c.exited {
		return -1
	}
	return c.code
}

// exitErr turns the exit into Wait's error; outErr is the output's.
func (c *Cmd) exitErr(outErr error) error {
	switch {
	case c.killedBy:
		return fmt.Errorf("killed (exit code %d): %w", c.code, context.Cause(c.ctx))
	case c.code != 0:
		return &ExitError{Code: c.code}
	}
	return outErr
}

// ExitCode is the exit code of a finished process, 128+n when signal n
// killed it (as a shell reports it).
func ExitCode(st *os.ProcessState) int {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// MaybeRun runs the guard and exits the process if this process was started
// as one; otherwise it returns at once. Call it before anything else in
// main.
func MaybeRun() {
	if os.Getenv(markerEnv) != markerValue || len(os.Args) == 0 || filepath.Base(os.Args[0]) != guardArgv0 {
		return
	}
	os.Exit(serve())
}

// killGroup sends SIGKILL to every process in the group. An empty group is
// os.ErrProcessDone.
func killGroup(pgid int) error {
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

func withoutMarker(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, markerEnv+"=")
	})
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
