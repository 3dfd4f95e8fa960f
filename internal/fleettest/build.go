// Package fleettest is the shared harness of steward's end-to-end test
// packages (test/e2e, test/faults, test/redteam, test/console): a fleet of
// steward processes on one machine. It builds the steward binary once per
// package run, starts `steward node run` for each node in a folder of its
// own (central with the embedded broker on a free port, ships connected to
// it), runs CLI commands as a node, stops nodes with signals, polls with
// deadlines, and logs the nodes' logs when a test fails.
//
// It is test support: only _test.go files import it. What a package needs
// beyond that (proxies, attackers, a browser) stays in that package, and
// reaches the fleet through Options.
package fleettest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the steward binary under test, set by build.
var binary string

// Run builds the steward binary, runs the package's tests and removes the
// binary again; TestMain calls it once, and passes what it returns to
// os.Exit. A failed build is printed, and fails the run.
func Run(m *testing.M) int {
	remove, err := build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	return m.Run()
}

// build compiles cmd/steward into a new temporary folder.
func build() (remove func(), err error) {
	dir, err := os.MkdirTemp("", "steward-fleettest-")
	if err != nil {
		return nil, fmt.Errorf("build steward: %w", err)
	}
	bin := filepath.Join(dir, "steward")
	build := exec.Command("go", "build", "-o", bin, "github.com/stewardfleet/steward/cmd/steward")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("build steward: %w", err)
	}
	binary = bin
	return func() {
		binary = ""
		os.RemoveAll(dir)
	}, nil
}

// Binary returns the path of the steward binary Run built, or "" when
// there is none.
func Binary() string { return binary }
