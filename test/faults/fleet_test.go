package faults

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/netfault"
)

// Names on the broker, as steward documents them.
const (
	messagesStream = "STEWARD_MESSAGES"
	statusBucket   = "steward_status"
	central        = "central"
)

// stop is a time the harness stopped a node (SIGKILL or SIGTERM): runs of
// that node that never ended may have died then.
type stop struct {
	node  string
	at    time.Time // just before the signal
	until time.Time // when the process had exited
	sig   syscall.Signal
}

// proc is one running node process.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	err    error         // its exit, once exited is closed
}

// fleet is central and its ships, each a steward process in its own
// folder under root, with the broker on port.
type fleet struct {
	t       testing.TB
	root    string
	port    int
	runsLog string

	mu      sync.Mutex
	procs   map[string]*proc
	extra   map[string][]string // flags given at every start of a node
	proxies map[string]*netfault.Proxy
	stops   []stop

	nc *nats.Conn
	js jetstream.JetStream
}

// newFleet makes the folders of a fleet; start the nodes with start.
func newFleet(t testing.TB) *fleet {
	t.Helper()
	root := t.TempDir()
	if keep := os.Getenv("STEWARD_FAULTS_DIR"); keep != "" {
		root = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "-"))
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &fleet{
		t: t, root: root, port: freePort(t), runsLog: filepath.Join(root, "runs.log"),
		procs: map[string]*proc{}, extra: map[string][]string{}, proxies: map[string]*netfault.Proxy{},
	}
	t.Cleanup(f.close)
	return f
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (f *fleet) dir(node string) string { return filepath.Join(f.root, node) }

func (f *fleet) brokerAddr() string { return fmt.Sprintf("127.0.0.1:%d", f.port) }

func (f *fleet) brokerURL() string { return "nats://" + f.brokerAddr() }

func (f *fleet) env() []string { return append(os.Environ(), "CONFIG_FOLDER=./etc") }

// proxy routes node's link to the broker through a cuttable proxy from its
// next start on.
func (f *fleet) proxy(node string) *netfault.Proxy {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.proxies[node]; p != nil {
		return p
	}
	p, err := netfault.Start(f.brokerAddr())
	if err != nil {
		f.t.Fatal(err)
	}
	f.proxies[node] = p
	return p
}

// setExtra sets flags that every later start of node is given.
func (f *fleet) setExtra(node string, args ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extra[node] = args
}

// logNote writes a line of the harness into node's log, between the
// node's own lines, so a log excerpt shows what was done to it and when.
func (f *fleet) logNote(node, format string, args ...any) {
	lf, err := os.OpenFile(filepath.Join(f.dir(node), "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer lf.Close()
	fmt.Fprintf(lf, "=== harness %s: %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// start runs `steward node run` for node in its own folder and waits for
// its socket. Central runs the embedded broker; ships connect to it, or to
// their proxy.
func (f *fleet) start(node string) {
	f.t.Helper()
	dir := f.dir(node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	args := []string{"node", "run", "--node-name", node, "--hello-interval", "1s",
		"--default-message-timeout", "2s", "--log-level", "info"}
	f.mu.Lock()
	p := f.proxies[node]
	args = append(args, f.extra[node]...)
	f.mu.Unlock()
	switch {
	case node == central:
		args = append(args, "--broker-listen", f.brokerAddr())
	case p != nil:
		args = append(args, "--broker-address", p.URL())
	default:
		args = append(args, "--broker-address", f.brokerURL())
	}
	f.logNote(node, "start %s", strings.Join(args, " "))
	lf, err := os.OpenFile(filepath.Join(dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(stewardBin, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, f.env(), lf, lf
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	pr := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		close(pr.exited)
	}()
	f.mu.Lock()
	f.procs[node] = pr
	f.mu.Unlock()

	sock := filepath.Join(dir, "tmp", "steward.sock")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case <-pr.exited:
			f.t.Fatalf("%s exited while starting: %v\n%s", node, pr.err, f.logTail(node, 30))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s has no socket after 60s\n%s", node, f.logTail(node, 30))
		}
	}
}

// running reports whether the harness has node running.
func (f *fleet) running(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[node] != nil
}

// stop sends sig to node and waits for it to exit. Ships' stops are kept:
// they explain runs that never ended.
func (f *fleet) stop(node string, sig syscall.Signal) {
	f.t.Helper()
	f.mu.Lock()
	pr := f.procs[node]
	delete(f.procs, node)
	f.mu.Unlock()
	if pr == nil {
		return
	}
	s := stop{node: node, at: time.Now(), sig: sig}
	f.logNote(node, "%s", sig)
	_ = pr.cmd.Process.Signal(sig)
	select {
	case <-pr.exited:
	case <-time.After(30 * time.Second):
		_ = pr.cmd.Process.Kill()
		<-pr.exited
		f.t.Errorf("%s did not exit within 30s of %s\n%s", node, sig, f.logTail(node, 30))
	}
	s.until = time.Now()
	f.mu.Lock()
	f.stops = append(f.stops, s)
	f.mu.Unlock()
}

// stopsOf returns the stops of node so far.
func (f *fleet) stopsOf() []stop {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stops)
}

// checkAlive fails the test for every node that exited although the
// harness did not stop it.
func (f *fleet) checkAlive() {
	f.t.Helper()
	f.mu.Lock()
	var dead []string
	for node, pr := range f.procs {
		select {
		case <-pr.exited:
			dead = append(dead, node)
			delete(f.procs, node)
		default:
		}
	}
	f.mu.Unlock()
	for _, node := range dead {
		f.t.Errorf("VIOLATION: %s exited on its own\n%s", node, f.logTail(node, 40))
	}
}

// close stops every node (ships first: central holds the broker), the
// proxies and the harness's connection.
func (f *fleet) close() {
	f.checkAlive()
	f.mu.Lock()
	var ships []string
	for node := range f.procs {
		if node != central {
			ships = append(ships, node)
		}
	}
	f.mu.Unlock()
	for _, node := range ships {
		f.stop(node, syscall.SIGTERM)
	}
	f.stop(central, syscall.SIGTERM)
	if f.nc != nil {
		f.nc.Close()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.proxies {
		_ = p.Close()
	}
}

// logTail returns the last n lines of node's log.
func (f *fleet) logTail(node string, n int) string {
	b, _ := os.ReadFile(filepath.Join(f.dir(node), "node.log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- " + node + "'s log (tail):\n" + strings.Join(lines, "\n")
}

// logGrep returns up to n lines of node's log that mention word, with the
// harness's own notes in between.
func (f *fleet) logGrep(node, word string, n int) []string {
	b, _ := os.ReadFile(filepath.Join(f.dir(node), "node.log"))
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	if len(out) > n {
		out = append(out[:n/2], append([]string{"…"}, out[len(out)-n/2:]...)...)
	}
	return out
}

// steward runs a steward client command in folder dir and returns its
// output and exit code (-1 when it could not run or was cut short).
func (f *fleet) steward(dir string, stdin []byte, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, stewardBin, args...)
	cmd.Dir, cmd.Env = dir, f.env()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		code = -1
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code
}

// jetStream returns the harness's own connection to the broker. It keeps
// reconnecting across broker restarts.
func (f *fleet) jetStream() jetstream.JetStream {
	f.t.Helper()
	if f.js != nil {
		return f.js
	}
	nc, err := nats.Connect(f.brokerURL(), nats.Name("faults harness"), nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		f.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		f.t.Fatal(err)
	}
	f.nc, f.js = nc, js
	return js
}

// deleteConsumer deletes node's durable consumer, trying for a while (the
// broker may just be coming back). It reports whether there was one.
func (f *fleet) deleteConsumer(node string) bool {
	f.t.Helper()
	js := f.jetStream()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := js.DeleteConsumer(ctx, messagesStream, node)
		cancel()
		switch {
		case err == nil:
			return true
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			return false
		case time.Now().After(deadline):
			f.t.Fatalf("delete consumer %s: %v", node, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// drained reports whether every named consumer exists and holds no
// message undelivered or unacknowledged, or why not.
func (f *fleet) drained(nodes ...string) (bool, string) {
	js := f.jetStream()
	for _, node := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		c, err := js.Consumer(ctx, messagesStream, node)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = c.Info(ctx)
		}
		cancel()
		if err != nil {
			return false, fmt.Sprintf("consumer %s: %v", node, err)
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return false, fmt.Sprintf("consumer %s: %d pending, %d unacknowledged", node, info.NumPending, info.NumAckPending)
		}
	}
	return true, ""
}

// eventually polls cond until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}

// pause sleeps d, or less if ctx ends first.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
