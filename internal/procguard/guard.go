package procguard

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The guard's side: it starts the node's commands, each in a process group
// of its own, and kills their groups when they end, when the node asks,
// and when the node is gone.

// server is the running guard.
type server struct {
	conn    *net.UnixConn
	devNull *os.File

	mu       sync.Mutex
	runs     map[uint64]*guarded
	stopping bool
	wg       sync.WaitGroup
}

// guarded is one command the guard runs.
type guarded struct {
	mu     sync.Mutex
	pid    int  // 0 until started
	killed bool // by the node's request, or because the node is gone
	reaped bool // its group id may be reused from now on
}

// serve runs the guard until its node is gone, and returns its exit code.
func serve() int {
	// Listen before anything else, so a signal is not lost. SIGTERM is the
	// parent-death signal.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// A write to a node that is gone must fail, not kill the guard. (A
	// handler, unlike ignoring the signal, is not inherited by commands.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	f := os.NewFile(guardFD, "procguard-control")
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "steward procguard: no control socket: %v\n", err)
		return exitCannotRun
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Fprintf(os.Stderr, "steward procguard: %v\n", err)
		return exitCannotRun
	}
	s := &server{conn: fc.(*net.UnixConn), devNull: devNull, runs: map[uint64]*guarded{}}

	gone := make(chan struct{})
	go func() {
		s.read()
		close(gone)
	}()
	code := 0
	select {
	case sig := <-sigs:
		code = 128 + int(sig.(syscall.Signal))
	case <-gone:
	}
	s.shutdown()
	return code
}

// read handles the node's requests until the node is gone.
func (s *server) read() {
	buf, oob := make([]byte, maxPacket), make([]byte, syscall.CmsgSpace(2*4))
	for {
		var req request
		files, err := receive(s.conn, buf, oob, &req)
		if err != nil {
			var perr *net.OpError
			if errors.As(err, &perr) || errors.Is(err, net.ErrClosed) {
				return
			}
			fmt.Fprintf(os.Stderr, "steward procguard: %v\n", err)
			continue
		}
		switch req.Op {
		case "start":
			if len(files) != 2 {
				closeAll(files)
				fmt.Fprintf(os.Stderr, "steward procguard: start request %d with %d descriptors\n", req.ID, len(files))
				_ = send(s.conn, event{Op: "exited", ID: req.ID, Code: exitCannotRun})
				continue
			}
			s.start(req, files[0], files[1])
		case "kill":
			closeAll(files)
			s.kill(req.ID)
		default:
			closeAll(files)
		}
	}
}

// shutdown kills every command's group (the node is gone or the guard was
// told to stop), lets each run write its record, and returns.
func (s *server) shutdown() {
	// A node still there (the guard was signalled) starts its next
	// commands on a new guard.
	_ = send(s.conn, event{Op: "stopping"})
	s.mu.Lock()
	s.stopping = true
	for _, g := range s.runs {
		g.kill()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(DefaultWaitDelay + time.Second):
	}
}

func (s *server) kill(id uint64) {
	s.mu.Lock()
	g := s.runs[id]
	s.mu.Unlock()
	if g != nil {
		g.kill()
	}
}

// kill kills the command's group, unless its main process was reaped (its
// group id could belong to someone else by now). A command still starting
// is killed as soon as it started.
func (g *guarded) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.killed = true
	if g.pid != 0 && !g.reaped {
		_ = killGroup(g.pid)
	}
}

// start registers the command and runs it on a goroutine of its own.
func (s *server) start(req request, stdout, stderr *os.File) {
	g := &guarded{}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		stdout.Close()
		stderr.Close()
		return
	}
	s.runs[req.ID] = g
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		ev := s.execute(g, req, stdout, stderr)
		s.mu.Lock()
		delete(s.runs, req.ID)
		s.mu.Unlock()
		_ = send(s.conn, ev)
	}()
}

// execute runs one command to its end and says how it ended.
func (s *server) execute(g *guarded, req request, stdout, stderr *os.File) event {
	ev := event{Op: "exited", ID: req.ID}
	rec := newRecorder(req.Record, stderr)
	outW, errW := stdout, stderr
	if rec != nil {
		var err error
		if outW, errW, err = rec.wire(stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "steward procguard: no run record: %v\n", err)
			rec, outW, errW = nil, stdout, stderr
		}
	}
	p, err := os.StartProcess(req.Path, req.Args, &os.ProcAttr{
		Dir:   req.Dir,
		Env:   req.Env,
		Files: []*os.File{s.devNull, outW, errW},
		// A group of its own, and its main process dies with the guard.
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	if rec != nil {
		outW.Close() // the command holds its own copies
		errW.Close()
	}
	if err != nil {
		ev.Code = exitCannotRun
		if errors.Is(err, os.ErrNotExist) {
			ev.Code = exitNotFound
		}
		fmt.Fprintf(stderr, "steward procguard: %v\n", err)
		if rec != nil {
			rec.abandon() // no exit code: it did not run
			rec.closeOutputs()
		} else {
			stdout.Close()
			stderr.Close()
		}
		return ev
	}
	if rec == nil {
		stdout.Close()
		stderr.Close()
	}
	// Setpgid made the command the leader of a new group whose id is its
	// pid: killing -pid reaches every process in it.
	g.mu.Lock()
	g.pid = p.Pid
	if g.killed {
		_ = killGroup(p.Pid)
	}
	g.mu.Unlock()

	// Wait for the main process to end without reaping it: while it is a
	// zombie its pid, the group's id, cannot be reused, so the group can
	// be killed safely.
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	_ = killGroup(p.Pid) // what it left running
	if rec != nil {
		ev.OutputCut = !rec.finishCopies(req.WaitDelay)
	}
	g.mu.Lock()
	g.reaped = true
	killed := g.killed
	g.mu.Unlock()
	st, err := p.Wait()
	if err != nil {
		ev.Code = exitCannotRun
		return ev
	}
	ev.Code = ExitCode(st)
	ev.Killed = killed && !endedByItself(st)
	if rec != nil {
		if !ev.Killed {
			rec.ended(ev.Code)
		}
		rec.closeOutputs()
	}
	return ev
}
