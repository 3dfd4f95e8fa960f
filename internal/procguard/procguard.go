// Package procguard runs commands so that no process they start outlives
// the node that started them (Linux only).
//
// The node does not exec a command itself. Command builds an *exec.Cmd
// that re-executes the node's own binary in guard mode; the guard leads a
// new process group and runs the command inside it. Guarantees, for every
// process that stays in that group (the command, its children, their
// children, …):
//
//   - When the node process dies, even by SIGKILL, the kernel sends the
//     guard SIGTERM (the parent-death signal) and the guard kills its whole
//     group with SIGKILL.
//   - When the command's context is done, the node kills the whole group
//     with SIGKILL, and Wait does not hang on output pipes held open by
//     processes that escaped the group (see Cmd.WaitDelay).
//   - When the command's main process ends, the guard kills whatever it
//     left running in the group before reporting the exit code, so a
//     command never leaves processes behind. A background job that is
//     still running when the main process exits is killed: commands that
//     want it to finish must wait for it (`sleep 3 & …; wait`).
//   - The guard exits with the command's exit code, or 128+n when the
//     command was killed by signal n, like a shell.
//   - With a run record (SetRecord), the guard keeps the command's output
//     on disk as the command writes it, and its exit code once it ended by
//     itself: a node that dies right after its command ended (before it
//     could record the outcome) learns at restart that the command ran and
//     what it printed, and does not run it again (see record.go).
//
// What cannot be guaranteed: a process that leaves the group (setsid,
// setpgid, a daemon that double-forks into a new session, anything started
// through systemd or another service manager) is not tracked. Neither is
// the guard itself protected against a direct SIGKILL aimed at it alone
// (e.g. the OOM killer): the command's main process then gets SIGKILL as
// its own parent-death signal, but its children survive.
//
// A program that uses this package must call MaybeRun first thing in
// main, and in TestMain of every test binary that runs guarded commands.
package procguard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Guard mode is selected by both the environment variable and argv[0], so
// an operator who exports the variable by accident does not turn the node
// into a guard. The guard removes the variable before it starts the
// command, so a command that runs steward itself gets a normal steward.
const (
	markerEnv   = "STEWARD_PROCGUARD"
	markerValue = "1"
	guardArgv0  = "steward-procguard"
)

// selfExe is the path the guard is started from: the kernel resolves it to
// the running binary at exec time, so it works even when the binary on
// disk has been replaced (an upgrade) since the node started.
const selfExe = "/proc/self/exe"

// DefaultWaitDelay is how long Wait keeps reading the command's output
// after the guard has exited or the group was killed. Only processes that
// escaped the group can hold the pipes that long.
const DefaultWaitDelay = 5 * time.Second

// Exit codes of the guard when it cannot start the command, as in a shell.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)

// ErrEmptyCommand: Command got no command line.
var ErrEmptyCommand = errors.New("empty command line")

// executable reports whether the node's binary can be found; a variable so
// tests can exercise the unguarded fallback.
var executable = os.Executable

// Command returns a command that runs args under a guard. args[0] is looked
// up in PATH now, as exec.Command does, so a missing program is an error
// wrapping exec.ErrNotFound; a name with a slash is resolved when the
// command starts, relative to cmd.Dir, and if it cannot be run the guard
// exits with 127 (not found) or 126 and says why on standard error.
//
// The caller may set Dir, Stdin, Stdout, Stderr and WaitDelay, and may add
// to Env (which already holds the guard's marker; do not replace it). Start
// and wait with Run, not cmd.Run: see Run.
//
// If the node's binary cannot be found (os.Executable fails), the command
// runs unguarded, in its own process group with SIGKILL as its
// parent-death signal: the context still kills the whole group, but if the
// node dies, only the command's main process is killed; its children may
// survive.
func Command(ctx context.Context, args []string) (*exec.Cmd, error) {
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

	var cmd *exec.Cmd
	if _, err := executable(); err != nil {
		cmd = exec.CommandContext(ctx, path)
		cmd.Args = slices.Clone(args)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	} else {
		cmd = exec.CommandContext(ctx, selfExe)
		cmd.Args = append([]string{guardArgv0, path}, args...)
		cmd.Env = append(os.Environ(), markerEnv+"="+markerValue)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	}
	// Setpgid makes the started process the leader of a new group whose
	// id is its pid: killing -pid reaches every process in it.
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = DefaultWaitDelay
	return cmd, nil
}

// Run starts cmd and waits for it, with the calling goroutine locked to its
// OS thread meanwhile. The kernel sends the parent-death signal when the
// thread that started the child ends, not the process; Go ends a thread
// when a goroutine that locked it returns without unlocking, so without the
// lock some unrelated goroutine could kill the command. Holding the thread
// costs one OS thread per running command.
func Run(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Wait()
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
	os.Exit(guard(os.Args[1:]))
}

// guard runs args = [path, argv0, argv1, …] in its own process group and
// returns the exit code to exit with.
func guard(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "steward procguard: no command given")
		return exitCannotRun
	}
	// Lock the thread for good: the command's parent-death signal must
	// fire only when the guard itself ends.
	runtime.LockOSThread()

	// The node makes the guard a group leader; make sure of it when the
	// guard was started some other way.
	group := os.Getpid()
	if syscall.Getpgrp() != group {
		if err := syscall.Setpgid(0, 0); err != nil {
			fmt.Fprintf(os.Stderr, "steward procguard: own process group: %v\n", err)
			return exitCannotRun
		}
	}

	// Listen before starting the command, so a signal that comes while it
	// starts is not lost. SIGTERM is the parent-death signal.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	record := newRecorder(os.Getenv(recordEnv))
	cmd := &exec.Cmd{
		Path:   args[0],
		Args:   args[1:],
		Env:    withoutMarker(os.Environ()),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		// The command stays in the guard's group. If the guard is killed
		// on its own, its main process goes too.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if record != nil {
		record.wire(cmd)
		// The guard goes on copying the command's output into its record
		// when the node is gone: a write to the node's broken pipe must
		// fail, not kill the guard. (A handler, unlike ignoring the signal,
		// is not inherited by the command.)
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
		// Do not wait forever for output pipes held by processes the
		// command left running.
		cmd.WaitDelay = DefaultWaitDelay
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "steward procguard: %v\n", err)
		if errors.Is(err, os.ErrNotExist) {
			return exitNotFound
		}
		return exitCannotRun
	}

	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(done)
	}()

	select {
	case sig := <-sigs:
		if record != nil {
			// Did the command end by itself just before (its node died
			// right after)? Kill its main process and look how it ended:
			// if it had ended, record that, so it is not run again.
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			if endedByItself(cmd.ProcessState) {
				record.ended(ExitCode(cmd.ProcessState))
			}
		}
		// Kill the group, the guard included: one atomic kill, so nothing
		// can fork its way out between signals.
		_ = killGroup(group)
		return 128 + int(sig.(syscall.Signal))
	case <-done:
	}

	code := ExitCode(cmd.ProcessState)
	if record != nil {
		record.ended(code)
	}
	killLeftovers(group, code)
	return code
}

// killLeftovers kills what the command left in the guard's group. Killing
// the group would kill the guard too and lose the exit code, so the guard
// first moves itself into its parent's group (allowed: same session); the
// group keeps its id while members remain. If the guard cannot move (its
// parent is gone), it kills the group, itself included, after saying on
// standard error what the exit code was.
func killLeftovers(group, code int) {
	parentGroup, err := syscall.Getpgid(os.Getppid())
	if err == nil {
		err = syscall.Setpgid(0, parentGroup)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "steward procguard: command exited with code %d; killing what it left running, and the guard (%v)\n", code, err)
	}
	_ = killGroup(group) // an empty group (nothing left) is fine
}

// killGroup sends SIGKILL to every process in the group. An empty group is
// os.ErrProcessDone, which exec.Cmd.Cancel understands as "already done".
func killGroup(pgid int) error {
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

func withoutMarker(env []string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, markerEnv+"=") || strings.HasPrefix(kv, recordEnv+"=")
	})
}
