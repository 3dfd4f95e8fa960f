// Package console tests the fleet console in a real browser: a headless
// Chromium driven through the DevTools protocol (chromedp) against steward
// processes — a central node serving the console (--console) with its
// embedded broker, and ship nodes connected to it — started and stopped the
// way operators do.
//
// The tests skip when no Chromium is installed (Debian: apt-get install
// chromium; or set STEWARD_CHROMIUM to a browser binary), and in -short
// runs. Screenshots of every view go to $STEWARD_ARTIFACTS (default: the
// test's temporary folder); STEWARD_UPDATE_SCREENSHOT=1 also writes the
// fleet view to docs/console-fleet.png.
package console

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	stewardBin  string // the binary under test
	chromium    string // the browser
	skipReason  string // why the package's tests skip, if they do
	docsFolder  = filepath.Join("..", "..", "docs")
	examplesDir = filepath.Join("..", "..", "testdata", "examples")
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if chromium = findChromium(); chromium == "" {
		skipReason = "no Chromium to drive (install Debian's chromium, or set STEWARD_CHROMIUM)"
		return m.Run()
	}
	if testing.Short() {
		return m.Run() // every test skips: no steward to build
	}
	dir, err := os.MkdirTemp("", "steward-console-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stewardBin = filepath.Join(dir, "steward")
	build := exec.Command("go", "build", "-o", stewardBin, "../../cmd/steward")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build steward:", err)
		return 1
	}
	return m.Run()
}

// findChromium returns the browser binary: $STEWARD_CHROMIUM, or the first
// Chromium or Chrome on PATH.
func findChromium() string {
	if p := os.Getenv("STEWARD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needBrowser skips t when the browser tests cannot run here.
func needBrowser(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if testing.Short() {
		t.Skip("browser test: runs steward processes and Chromium")
	}
}

// fleet is a set of steward processes in one temporary folder: a central
// node with the embedded broker and the console, and ships.
type fleet struct {
	t       *testing.T
	root    string
	port    int // the broker's
	console string
	proc    map[string]*exec.Cmd
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	needBrowser(t)
	f := &fleet{t: t, root: t.TempDir(), port: freePort(t), proc: map[string]*exec.Cmd{}}
	f.console = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	t.Cleanup(f.stopAll)
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

func (f *fleet) dir(name string) string { return filepath.Join(f.root, name) }

func (f *fleet) brokerURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", f.port) }

// url is the console's address of path.
func (f *fleet) url(path string) string { return "http://" + f.console + path }

func (f *fleet) env() []string { return append(os.Environ(), "CONFIG_FOLDER=./etc") }

// start runs `steward node run` for name in its own folder; central runs the
// broker and the console. Flags are written to the node's config.toml, so a
// restart without flags is the same node.
func (f *fleet) start(name string, args ...string) {
	f.t.Helper()
	dir := f.dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	base := []string{"node", "run", "--node-name", name, "--hello-interval", "1s", "--default-message-timeout", "2s"}
	if name == "central" {
		base = append(base, "--broker-listen", fmt.Sprintf("127.0.0.1:%d", f.port), "--console", f.console)
	} else {
		base = append(base, "--broker-address", f.brokerURL())
	}
	log, err := os.OpenFile(filepath.Join(dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(stewardBin, append(base, args...)...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, f.env(), log, log
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.proc[name] = cmd
	eventually(f.t, 30*time.Second, name+"'s socket", func() bool {
		c, err := net.Dial("unix", filepath.Join(dir, "tmp", "steward.sock"))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if name == "central" {
		eventually(f.t, 30*time.Second, "the console", func() bool {
			resp, err := http.Get(f.url("/api/fleet"))
			if err != nil {
				return false
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// 401: the console asks for its token.
			return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
		})
	}
}

// stop ends a node with sig and waits for it.
func (f *fleet) stop(name string, sig syscall.Signal) {
	f.t.Helper()
	cmd := f.proc[name]
	if cmd == nil {
		return
	}
	delete(f.proc, name)
	cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		f.t.Errorf("%s did not stop on %s", name, sig)
	}
}

func (f *fleet) stopAll() {
	for name := range f.proc { // ships first: central holds the broker
		if name != "central" {
			f.stop(name, syscall.SIGTERM)
		}
	}
	f.stop("central", syscall.SIGTERM)
	if f.t.Failed() {
		entries, _ := os.ReadDir(f.root)
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(f.root, e.Name(), "node.log")); err == nil {
				f.t.Logf("--- %s's log:\n%s", e.Name(), tail(b, 200))
			}
		}
	}
}

// tail is the last n lines of b.
func tail(b []byte, n int) []byte {
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}

// steward runs a client command as node `as` and returns its output and
// exit code.
func (f *fleet) steward(as string, args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, stewardBin, args...)
	cmd.Dir, cmd.Env = f.dir(as), f.env()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
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

// waitOnline waits until `steward nodes` shows every name online.
func (f *fleet) waitOnline(names ...string) {
	f.t.Helper()
	eventually(f.t, 30*time.Second, fmt.Sprintf("%v online", names), func() bool {
		out, _, code := f.steward("central", "nodes")
		if code != 0 {
			return false
		}
		for _, n := range names {
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

// post sends a message to the console's API as a page does, and returns
// the status code and body.
func (f *fleet) post(path, body string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url(path), strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Steward-Console", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
