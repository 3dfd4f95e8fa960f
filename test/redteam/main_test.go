// Package redteam attacks a running fleet from outside. It builds the
// steward binary once, sets a fleet up the way an operator does, with the
// CLI only (steward keys new, steward broker authorization, trusted-keys
// and policy files, TLS on central's embedded broker), starts central,
// ship1 and ship2 as separate processes, and then attacks them with a raw
// NATS client: with no key, with ship2's stolen seed, and as a broker
// insider (a user with every broker right but a key no node trusts).
//
// Every attempt is counted: refused by the broker (it could not even get
// the message into a queue), refused by the node (it got into a queue and
// the node refused it, with an audit line and a report in central's error
// log), or accepted. The target is 0 accepted and no good message lost
// while the attacks go on. TestRedTeam prints the counts as a table (and
// writes it to $STEWARD_REDTEAM_REPORT when that is set).
//
// Adding a case is one entry in the cases table of redteam_test.go.
package redteam

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var stewardBin string // the binary under test

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "steward-redteam-")
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

// eventually polls cond every 50 ms until it holds, and fails the test
// when timeout passes first.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
