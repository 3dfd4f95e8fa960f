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
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
)

var (
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
	return fleettest.Run(m)
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
	*fleettest.Fleet
	t       *testing.T
	console string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	needBrowser(t)
	f := &fleet{t: t, console: fmt.Sprintf("127.0.0.1:%d", fleettest.FreePort(t))}
	f.Fleet = fleettest.New(t, fleettest.Options{Flags: f.flags, Ready: f.ready})
	return f
}

// url is the console's address of path.
func (f *fleet) url(path string) string { return "http://" + f.console + path }

// flags put central on the broker and the console, ships on the broker.
// Flags are written to the node's config.toml, so a restart without flags
// is the same node.
func (f *fleet) flags(_ *fleettest.Fleet, name string) []string {
	flags := f.BrokerFlags(name)
	if name == "central" {
		flags = append(flags, "--console", f.console)
	}
	return flags
}

// ready waits for central's console to answer.
func (f *fleet) ready(_ *fleettest.Fleet, name string) {
	f.t.Helper()
	if name != "central" {
		return
	}
	fleettest.Eventually(f.t, 30*time.Second, "the console", func() bool {
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
