package redteam

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
)

// fleet is central (with its embedded broker, TLS and the generated
// authorization), ship1 and ship2, each a steward process in its own
// folder, set up with the CLI as an operator would.
type fleet struct {
	t       *testing.T
	root    string
	port    int
	keys    string            // seed files, <node>.nk
	pub     map[string]string // public keys, as steward keys new printed them
	tls     natstest.TLSFiles
	markers string // commands an attacker slips in would create files here
	proc    map[string]*exec.Cmd
}

// The ship policies allow what the good traffic needs and nothing else;
// central runs only what central itself sends.
const (
	shipPolicy = `{"rules":[
  {"from":["central"],"methods":["REQCliCommand"],"args":["echo **"],"effect":"allow"},
  {"from":["central"],"methods":["REQToFile","REQToFileAppend"],"effect":"allow"}]}`
	centralPolicy = `{"rules":[{"from":["central"],"methods":["*"],"effect":"allow"}]}`
)

func newFleet(t *testing.T) *fleet {
	t.Helper()
	root := t.TempDir()
	f := &fleet{t: t, root: root, port: freePort(t), keys: filepath.Join(root, "keys"),
		pub: map[string]string{}, markers: filepath.Join(root, "markers"), proc: map[string]*exec.Cmd{}}
	t.Cleanup(f.stopAll)
	for _, d := range []string{f.markers, filepath.Join(root, "tls")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.tls = natstest.NewTLSFiles(t, filepath.Join(root, "tls"))

	// relay is a name operators may send as: every right on the broker,
	// and a key that no node trusts (the broker insider of the attacks).
	out := f.cli(root, "keys", "new", "central", "ship1", "ship2", "relay", "--dir", f.keys)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			t.Fatalf("steward keys new printed %q", line)
		}
		f.pub[fields[0]] = fields[1]
	}
	for _, n := range []string{"central", "ship1", "ship2", "relay"} {
		st, err := os.Stat(filepath.Join(f.keys, n+".nk"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("seed of %s: %v %v, want mode 0600", n, st.Mode(), err)
		}
	}
	f.cli(root, "broker", "authorization", "--dir", f.keys, "--senders", "central,relay", "-o", f.file("authorization.json"))
	f.write("central.trusted", "central "+f.pub["central"]+"\nship1 "+f.pub["ship1"]+"\nship2 "+f.pub["ship2"]+"\n")
	f.write("ship.trusted", "central "+f.pub["central"]+"\n")
	f.write("central.policy", centralPolicy)
	f.write("ship.policy", shipPolicy)
	for _, n := range []string{"central", "ship1", "ship2"} {
		if out := f.cli(root, "policy", "check", "--policy-file", f.policyOf(n), "--from", "ship2", "--method", "REQCliCommand", "--", "touch", "x"); !strings.HasPrefix(out, "deny") {
			t.Fatalf("%s's policy lets ship2 run touch: %s", n, out)
		}
	}
	return f
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (f *fleet) file(name string) string { return filepath.Join(f.root, name) }

func (f *fleet) write(name, content string) {
	f.t.Helper()
	if err := os.WriteFile(f.file(name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) policyOf(node string) string {
	if node == "central" {
		return f.file("central.policy")
	}
	return f.file("ship.policy")
}

func (f *fleet) seed(node string) string { return filepath.Join(f.keys, node+".nk") }

func (f *fleet) dir(node string) string { return filepath.Join(f.root, node) }

func (f *fleet) data(node string) string { return filepath.Join(f.dir(node), "data") }

func (f *fleet) addr() string { return fmt.Sprintf("127.0.0.1:%d", f.port) }

func (f *fleet) url() string { return "tls://" + f.addr() }

// cli runs a steward command in dir and returns its standard output; it
// fails the test when the command fails (policy check's deny excepted).
func (f *fleet) cli(dir string, args ...string) string {
	f.t.Helper()
	out, errOut, code := f.run(dir, nil, args...)
	if code != 0 && !(len(args) > 1 && args[0] == "policy" && code == 1) {
		f.t.Fatalf("steward %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// run runs a steward command in dir with stdin and returns its output and
// exit code.
func (f *fleet) run(dir string, stdin []byte, args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, stewardBin, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CONFIG_FOLDER=./etc")
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
		f.t.Fatalf("steward %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// start runs `steward node run` for node in its own folder, secured as
// the operator's guide says, and waits for its socket.
func (f *fleet) start(node string) {
	f.t.Helper()
	dir := f.dir(node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	args := []string{"node", "run", "--node-name", node, "--hello-interval", "1s", "--default-message-timeout", "2s",
		"--nkey-seed-file", f.seed(node), "--root-ca-path", f.tls.CA, "--policy-file", f.policyOf(node)}
	if node == "central" {
		args = append(args, "--broker-listen", f.addr(), "--broker-authorization", f.file("authorization.json"),
			"--broker-tls-cert", f.tls.ServerCert, "--broker-tls-key", f.tls.ServerKey,
			"--trusted-keys", f.file("central.trusted"))
	} else {
		args = append(args, "--broker-address", f.url(), "--trusted-keys", f.file("ship.trusted"))
	}
	log, err := os.OpenFile(filepath.Join(dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(stewardBin, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, append(os.Environ(), "CONFIG_FOLDER=./etc"), log, log
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.proc[node] = cmd
	eventually(f.t, 30*time.Second, node+"'s socket", func() bool {
		c, err := net.Dial("unix", filepath.Join(dir, "tmp", "steward.sock"))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// stop ends node with SIGTERM and waits for it.
func (f *fleet) stop(node string) {
	f.t.Helper()
	cmd := f.proc[node]
	if cmd == nil {
		return
	}
	delete(f.proc, node)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		f.t.Errorf("%s did not stop on SIGTERM", node)
	}
}

func (f *fleet) stopAll() {
	for node := range f.proc {
		if node != "central" {
			f.stop(node)
		}
	}
	f.stop("central") // last: it holds the broker
	if f.t.Failed() {
		for _, node := range []string{"central", "ship1", "ship2"} {
			if b, err := os.ReadFile(filepath.Join(f.dir(node), "node.log")); err == nil {
				f.t.Logf("--- %s's log (last 8 KiB):\n%s", node, tail(b, 8<<10))
			}
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitOnline waits until `steward nodes` on central shows every node online.
func (f *fleet) waitOnline(nodes ...string) {
	f.t.Helper()
	eventually(f.t, 30*time.Second, fmt.Sprintf("%v online", nodes), func() bool {
		out, _, code := f.run(f.dir("central"), nil, "nodes")
		if code != 0 {
			return false
		}
		for _, n := range nodes {
			if !lineHas(out, n, "online") {
				return false
			}
		}
		return true
	})
}

func lineHas(out, first, word string) bool {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && fields[0] == first && strings.Contains(line, " "+word+" ") {
			return true
		}
	}
	return false
}
