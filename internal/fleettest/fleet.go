package fleettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
)

// Central is the node that runs the embedded broker; every other node is a
// ship that connects to it.
const Central = "central"

// Options adapt a Fleet to a test package. The zero value is a fleet of
// plain nodes in a temporary folder.
type Options struct {
	// Root is the folder that holds one folder per node; empty: a
	// temporary folder of the test.
	Root string
	// Env is added to the environment of every process, after
	// CONFIG_FOLDER=./etc.
	Env []string
	// Flags returns the flags of `steward node run` for node, given after
	// the flags every node gets (name, hello interval, message timeout)
	// and before those given to Start. Nil: f.BrokerFlags(node).
	Flags func(f *Fleet, node string) []string
	// Ready, when set, is called by Start after node's socket answers, to
	// wait for whatever else the package needs of it.
	Ready func(f *Fleet, node string)
	// StartTimeout bounds the wait for a started node's socket (30s).
	StartTimeout time.Duration
	// StopTimeout bounds the wait for a node to exit on a signal before
	// it is killed and the test fails (20s).
	StopTimeout time.Duration
	// CommandTimeout bounds a client command of Steward and StewardIn
	// (60s).
	CommandTimeout time.Duration
}

// A Stop is a time the fleet stopped a node: runs of that node that never
// ended may have died then.
type Stop struct {
	Node   string
	Signal syscall.Signal
	At     time.Time // just before the signal
	Until  time.Time // when the process had exited
}

// process is one running node.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	err    error         // its exit, once exited is closed
}

// Fleet is a set of steward processes, each in its own folder under one
// root, with central's broker on a free port. Stop, Kill, Note, Stops,
// Exited, Running, Nodes and LogTail may be called from any goroutine;
// the rest from the test's.
type Fleet struct {
	t    testing.TB
	opts Options
	root string
	port int

	mu    sync.Mutex
	procs map[string]*process
	stops []Stop
}

// New returns a fleet with no node running yet; start them with Start.
// When the test ends, every node still running is stopped (ships first),
// and if the test failed, the tail of each node's log is logged.
func New(t testing.TB, opts Options) *Fleet {
	t.Helper()
	if binary == "" {
		t.Fatal("the steward binary was not built: TestMain calls fleettest.Run")
	}
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 20 * time.Second
	}
	if opts.CommandTimeout == 0 {
		opts.CommandTimeout = 60 * time.Second
	}
	f := &Fleet{t: t, opts: opts, root: opts.Root, port: FreePort(t), procs: map[string]*process{}}
	t.Cleanup(func() {
		f.StopAll()
		if t.Failed() {
			f.logLogs()
		}
	})
	return f
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// below the ephemeral range (natstest.FreePort).
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(natstest.FreePort(t))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Root is the folder that holds the nodes' folders.
func (f *Fleet) Root() string { return f.root }

// Dir is node's folder, where it runs and where its client commands run.
func (f *Fleet) Dir(node string) string { return filepath.Join(f.root, node) }

// BrokerAddr is the host:port central's broker listens on.
func (f *Fleet) BrokerAddr() string { return fmt.Sprintf("127.0.0.1:%d", f.port) }

// BrokerURL is the broker's nats:// URL.
func (f *Fleet) BrokerURL() string { return "nats://" + f.BrokerAddr() }

// BrokerFlags are the flags that put node on the broker: central listens,
// ships connect.
func (f *Fleet) BrokerFlags(node string) []string {
	if node == Central {
		return []string{"--broker-listen", f.BrokerAddr()}
	}
	return []string{"--broker-address", f.BrokerURL()}
}

func (f *Fleet) env() []string {
	return append(append(os.Environ(), "CONFIG_FOLDER=./etc"), f.opts.Env...)
}

func (f *Fleet) logFile(node string) string { return filepath.Join(f.Dir(node), "node.log") }

// Start runs `steward node run` for node in its own folder, its output
// appended to node.log there, and waits for its socket. Flags are written
// to the node's config.toml, so a restart without args is the same node.
func (f *Fleet) Start(node string, args ...string) {
	f.t.Helper()
	dir := f.Dir(node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	all := []string{"node", "run", "--node-name", node, "--hello-interval", "1s", "--default-message-timeout", "2s"}
	if f.opts.Flags != nil {
		all = append(all, f.opts.Flags(f, node)...)
	} else {
		all = append(all, f.BrokerFlags(node)...)
	}
	all = append(all, args...)
	f.Note(node, "start %s", strings.Join(all, " "))
	log, err := os.OpenFile(f.logFile(node), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(binary, all...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, f.env(), log, log
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start %s: %v", node, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	f.mu.Lock()
	f.procs[node] = p
	f.mu.Unlock()

	sock := filepath.Join(dir, "tmp", "steward.sock")
	deadline := time.Now().Add(f.opts.StartTimeout)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case <-p.exited:
			f.t.Fatalf("%s exited while starting: %v\n%s", node, p.err, f.LogTail(node, 30))
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s has no socket after %s\n%s", node, f.opts.StartTimeout, f.LogTail(node, 30))
		}
	}
	if f.opts.Ready != nil {
		f.opts.Ready(f, node)
	}
}

// Stop sends sig to node and waits for it to exit; past StopTimeout it
// kills it and fails the test. A node that is not running is left alone.
func (f *Fleet) Stop(node string, sig syscall.Signal) {
	f.t.Helper()
	f.mu.Lock()
	p := f.procs[node]
	delete(f.procs, node)
	f.mu.Unlock()
	if p == nil {
		return
	}
	s := Stop{Node: node, Signal: sig, At: time.Now()}
	f.Note(node, "%s", sig)
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(f.opts.StopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		f.t.Errorf("%s did not exit within %s of %s\n%s", node, f.opts.StopTimeout, sig, f.LogTail(node, 30))
	}
	s.Until = time.Now()
	f.mu.Lock()
	f.stops = append(f.stops, s)
	f.mu.Unlock()
}

// Kill stops node with SIGKILL.
func (f *Fleet) Kill(node string) {
	f.t.Helper()
	f.Stop(node, syscall.SIGKILL)
}

// StopAll stops every running node with SIGTERM, ships first: central
// holds the broker.
func (f *Fleet) StopAll() {
	f.t.Helper()
	for _, node := range f.Nodes() {
		if node != Central {
			f.Stop(node, syscall.SIGTERM)
		}
	}
	f.Stop(Central, syscall.SIGTERM)
}

// Nodes returns the nodes the fleet has running, sorted.
func (f *Fleet) Nodes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var nodes []string
	for node := range f.procs {
		nodes = append(nodes, node)
	}
	slices.Sort(nodes)
	return nodes
}

// Running reports whether the fleet has node running.
func (f *Fleet) Running(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[node] != nil
}

// Stops returns every stop so far, in order.
func (f *Fleet) Stops() []Stop {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stops)
}

// Exited returns the nodes that exited although the fleet did not stop
// them, and forgets them, so each is reported once.
func (f *Fleet) Exited() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var dead []string
	for node, p := range f.procs {
		select {
		case <-p.exited:
			dead = append(dead, node)
			delete(f.procs, node)
		default:
		}
	}
	slices.Sort(dead)
	return dead
}

// Note writes a line of the harness into node's log, between the node's
// own lines, so the log shows what was done to the node and when.
func (f *Fleet) Note(node, format string, args ...any) {
	log, err := os.OpenFile(f.logFile(node), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer log.Close()
	fmt.Fprintf(log, "=== harness %s: %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// LogTail returns the last n lines of node's log, under a heading.
func (f *Fleet) LogTail(node string, n int) string {
	b, _ := os.ReadFile(f.logFile(node))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- " + node + "'s log (tail):\n" + strings.Join(lines, "\n")
}

// logLogs logs the tail of the log of every node under the root.
func (f *Fleet) logLogs() {
	entries, _ := os.ReadDir(f.root)
	for _, e := range entries {
		if _, err := os.Stat(f.logFile(e.Name())); err == nil {
			f.t.Log(f.LogTail(e.Name(), 200))
		}
	}
}

// Command runs the steward binary with args in folder dir, with stdin
// when it is not nil, and returns its output and exit code. err is set,
// and code is -1, when it could not run; a command cut short by timeout
// is killed, and exits with -1.
func (f *Fleet) Command(dir string, stdin []byte, timeout time.Duration, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir, cmd.Env = dir, f.env()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code, err = exitErr.ExitCode(), nil
	default:
		code, err = -1, fmt.Errorf("steward %v: %w", args, err)
	}
	return out.String(), errOut.String(), code, err
}

// StewardIn runs a client command in folder dir and returns its output and
// exit code; it fails the test when the command could not run.
func (f *Fleet) StewardIn(dir string, stdin []byte, args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	stdout, stderr, code, err := f.Command(dir, stdin, f.opts.CommandTimeout, args...)
	if err != nil {
		f.t.Fatal(err)
	}
	return stdout, stderr, code
}

// Steward runs a client command as node as (in its folder) and returns
// its output and exit code.
func (f *Fleet) Steward(as string, stdin []byte, args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	return f.StewardIn(f.Dir(as), stdin, args...)
}

// WaitOnline waits until `steward nodes` on central shows every node
// online.
func (f *Fleet) WaitOnline(nodes ...string) {
	f.t.Helper()
	Eventually(f.t, 30*time.Second, fmt.Sprintf("%v online", nodes), func() bool {
		out, _, code := f.Steward(Central, nil, "nodes")
		if code != 0 {
			return false
		}
		for _, n := range nodes {
			if !LineHas(out, n, "online") {
				return false
			}
		}
		return true
	})
}

// LineHas reports whether out has a line whose first field is first and
// that holds word between spaces, as in a table of `steward nodes` or
// `steward status`.
func LineHas(out, first, word string) bool {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && fields[0] == first && strings.Contains(line, " "+word+" ") {
			return true
		}
	}
	return false
}
