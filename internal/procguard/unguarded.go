package procguard

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"
)

// The unguarded fallback, for a node whose own binary cannot be found: the
// node runs the command itself, in a process group of its own with
// SIGKILL as the main process's parent-death signal.

func newUnguarded(c *Cmd, env []string) *exec.Cmd {
	cmd := exec.CommandContext(c.ctx, c.path)
	cmd.Args = c.Args
	cmd.Dir, cmd.Env = c.Dir, env
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Setpgid makes the command the leader of a new group whose id is its
	// pid: killing -pid reaches every process in it.
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = c.WaitDelay
	return cmd
}

// startUnguarded starts cmd on a goroutine locked to its OS thread until
// the command ends: the kernel sends the parent-death signal when the
// thread that started the child ends, and Go ends a thread when a
// goroutine that locked it returns. waitUnguarded gets the result.
func startUnguarded(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

func waitUnguarded(c *Cmd) error {
	err := <-c.rawDone
	if c.raw.ProcessState == nil {
		return err
	}
	c.exited, c.code = true, ExitCode(c.raw.ProcessState)
	c.killedBy = c.ctx.Err() != nil && c.code == 128+int(syscall.SIGKILL)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, c.ctx.Err()) {
		return c.exitErr(err) // exec.ErrWaitDelay
	}
	return c.exitErr(nil)
}
