package procguard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The node's side: one guard per node process, started on first use and
// again after it died.

var current struct {
	mu sync.Mutex
	g  *guard
}

// theGuard returns the running guard, starting one if there is none.
func theGuard() (*guard, error) {
	current.mu.Lock()
	defer current.mu.Unlock()
	if g := current.g; g != nil && !g.retired.Load() {
		return g, nil
	}
	g, err := startGuard()
	if err != nil {
		return nil, fmt.Errorf("start the process guard: %w", err)
	}
	current.g = g
	return g, nil
}

// guard is the node's handle on its guard process.
type guard struct {
	conn *net.UnixConn
	pid  int

	mu   sync.Mutex
	next uint64
	runs map[uint64]*run

	retired atomic.Bool // it is gone or going: start no more commands on it
}

// run is one command in the guard's hands, as the node sees it.
type run struct {
	g      *guard
	id     uint64
	events chan event     // "exited"
	copies sync.WaitGroup // the node's pipes copied to Stdout, Stderr
	pipes  []*os.File     // read ends of those pipes
}

// startGuard starts the guard from a goroutine that keeps its OS thread
// locked for as long as the guard lives: the guard's parent-death signal
// fires when the thread that started it ends.
func startGuard() (*guard, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket pair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "procguard-control")
	theirs := os.NewFile(uintptr(fds[1]), "procguard-control")
	defer theirs.Close()
	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	g := &guard{conn: fc.(*net.UnixConn), runs: map[uint64]*run{}}

	cmd := exec.Command(selfExe)
	cmd.Args = []string{guardArgv0}
	cmd.Env = append(withoutMarker(os.Environ()), markerEnv+"="+markerValue)
	cmd.ExtraFiles = []*os.File{theirs} // descriptor 3
	cmd.Stderr = os.Stderr              // the guard's own complaints
	// A group of its own: a terminal's Ctrl-C reaches the node, which
	// stops its methods in order, not the guard.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the guard
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		g.conn.Close() // the reader notices, if it had not
	}()
	if err := <-started; err != nil {
		g.conn.Close()
		return nil, err
	}
	g.pid = cmd.Process.Pid
	go g.read()
	return g, nil
}

// read dispatches the guard's events until it is gone, then fails every
// run still waiting.
func (g *guard) read() {
	buf, oob := make([]byte, 4096), make([]byte, 64)
	for {
		var ev event
		files, err := receive(g.conn, buf, oob, &ev)
		closeAll(files) // the guard never sends any
		if err != nil {
			var perr *net.OpError
			if errors.As(err, &perr) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				break
			}
			continue // a message it could not parse
		}
		if ev.Op == "stopping" {
			g.retired.Store(true)
			continue
		}
		g.mu.Lock()
		r := g.runs[ev.ID]
		if ev.Op == "exited" {
			delete(g.runs, ev.ID)
		}
		g.mu.Unlock()
		if r != nil {
			r.events <- ev // buffered: the reader never waits
		}
	}
	g.retired.Store(true)
	g.conn.Close()
	g.mu.Lock()
	runs := g.runs
	g.runs = nil
	g.mu.Unlock()
	for _, r := range runs {
		close(r.events)
	}
}

// start hands c to the guard.
func (g *guard) start(c *Cmd, env []string) (*run, error) {
	r := &run{g: g, events: make(chan event, 1)}
	stdout, err := r.output(c.Stdout)
	if err != nil {
		return nil, err
	}
	stderr, err := r.output(c.Stderr)
	if err != nil {
		stdout.Close()
		r.closePipes()
		return nil, err
	}
	g.mu.Lock()
	if g.runs == nil {
		g.mu.Unlock()
		stdout.Close()
		stderr.Close()
		r.closePipes()
		return nil, ErrGuardDied
	}
	g.next++
	r.id = g.next
	g.runs[r.id] = r
	g.mu.Unlock()

	err = send(g.conn, request{
		Op: "start", ID: r.id, Path: c.path, Args: c.Args, Env: env, Dir: c.Dir,
		Record: c.Record, WaitDelay: c.WaitDelay,
	}, stdout, stderr)
	// The guard holds its own copies now; the pipes' read ends see
	// end-of-file once the command and the guard let go of theirs.
	if c.Stdout == nil || !isFile(c.Stdout) {
		stdout.Close()
	}
	if c.Stderr == nil || !isFile(c.Stderr) {
		stderr.Close()
	}
	if err != nil {
		g.mu.Lock()
		if g.runs != nil {
			delete(g.runs, r.id)
		}
		g.mu.Unlock()
		r.closePipes()
		r.copies.Wait()
		return nil, fmt.Errorf("hand the command to the guard: %w", err)
	}
	return r, nil
}

func isFile(w io.Writer) bool { _, ok := w.(*os.File); return ok }

// output returns the descriptor the command writes w's output to: w
// itself when it is a file, else a pipe copied into w (or discarded).
func (r *run) output(w io.Writer) (*os.File, error) {
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	r.pipes = append(r.pipes, pr)
	r.copies.Add(1)
	go func() {
		defer r.copies.Done()
		_, _ = io.Copy(orDiscard(w), pr)
	}()
	return pw, nil
}

func (r *run) closePipes() {
	for _, p := range r.pipes {
		p.Close()
	}
}

// kill asks the guard to kill the command's group.
func (r *run) kill() {
	_ = send(r.g.conn, request{Op: "kill", ID: r.id})
}

// wait waits for the command's end and output, killing it when its
// context is done.
func (r *run) wait(c *Cmd) error {
	defer r.closePipes()
	done := c.ctx.Done()
	var exited *event
	for exited == nil {
		select {
		case ev, ok := <-r.events:
			if !ok { // the guard is gone
				r.closePipes()
				r.copies.Wait()
				return ErrGuardDied
			}
			if ev.Op == "exited" {
				exited = &ev
			}
		case <-done:
			r.kill()
			done = nil
		}
	}
	if exited.Killed && c.ctx.Err() == nil {
		// Not the node's kill: the guard was told to stop, and stopped
		// its commands.
		r.closePipes()
		r.copies.Wait()
		return ErrGuardDied
	}
	c.exited, c.code, c.killedBy = true, exited.Code, exited.Killed

	// The output: everything the group could write is dead; only a
	// process that left the group can hold the pipes now.
	copied := make(chan struct{})
	go func() { r.copies.Wait(); close(copied) }()
	var outErr error
	if exited.OutputCut {
		outErr = exec.ErrWaitDelay
	}
	select {
	case <-copied:
	case <-time.After(c.WaitDelay):
		r.closePipes()
		<-copied
		outErr = exec.ErrWaitDelay
	}
	return c.exitErr(outErr)
}
