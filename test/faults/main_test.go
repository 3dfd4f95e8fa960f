// Package faults is steward's fault suite. It runs the steward binary as
// separate processes, a central node with its embedded broker and two ship
// nodes, keeps sending them work, injects real faults, and then counts what
// became of every message it sent.
//
// The faults, one subtest of TestFaults each: SIGKILL of ship nodes in the
// middle of their commands (in the full run, every other kill within
// milliseconds of a command's end instead); SIGKILL of the central node
// and the broker it embeds, while sending goes on (some kills just after a
// command ended, and in the full run just after central wrote a reply);
// the link between a ship and the broker flapping every two seconds
// through a cuttable proxy (package netfault), one way, the other way,
// reset, and in the full run black-holed; a ship's consumer deleted while
// the ship is away; the broker restarted on an empty store; ships whose
// clocks are ten minutes off, with short delivery deadlines, some messages
// sent while the ships are down.
//
// # What is counted, and how
//
// Every message carries an ID the harness chose, so the harness knows it
// even when `steward send` dies with the broker, and sends it again with
// the same ID until a receipt says it was taken (a re-send must not run
// it twice). Some messages are re-sent on purpose after they were taken.
// Each message runs a shell command that appends a "start" line to a runs
// log outside every node's data folder (real time, message ID, node, the
// shell's pid), sleeps, appends an "end" line, and prints the ID, which
// becomes its reply, appended on central to faults/<node>/<id>.out.
//
// After the faults end, the harness waits (polling, with a deadline) until
// every accepted message has a terminal status, every reply it sent has
// a terminal reply record, and no consumer holds unacknowledged or
// undelivered messages.
// Then it reads the runs log, the history of every status record (KV
// bucket steward_status, up to ten states per key) and the reply files,
// and counts per scenario:
//
//   - sent: messages the harness sent (distinct IDs); accepted: those a
//     receipt of `steward send` reported sent or queued.
//   - executed: messages with at least one start line.
//   - executed twice: messages with two runs alive at once (a start
//     before an earlier run's end line, or while an earlier run's process
//     is still alive), or with a run that starts after a run of the same ID
//     ended. A run that ended is never run again, not even when its node
//     was killed an instant later.
//   - reruns after crash: starts that follow runs which never ended
//     because their node was killed or stopped between their start and the
//     new one, and whose processes are gone. They are allowed, up to the
//     message's retries. A run that died without its node going down makes
//     the next start count as executed twice.
//   - replies written: reply files that hold the ID exactly once; replies
//     doubled: files that hold it more than once.
//   - terminal statuses: delivery records whose latest state is terminal.
//   - changed after terminal: delivery or reply records with any entry
//     after their first terminal state (an identical one counts too).
//   - ran after deadline: messages that ran although their delivery timed
//     out, or whose first run started after the deadline's schedule fired
//     (deadline + 1 s, with 2 s of slack).
//   - unexpected: terminal states other than the one the scenario expects
//     (succeeded, or delivery_timed_out for messages that can only miss
//     their deadline), e.g. undeliverable or failed.
//   - lost: accepted, but no terminal status at the end; or succeeded with
//     no run that ended; or succeeded with no reply file, or with a reply
//     record (<id>.<node>.reply, what `steward send --wait` waits for) that
//     never became terminal.
//
// A status record that carries a standard error is noted as suspicious
// in the table (the command writes none), not counted as a violation.
//
// Every count except sent, accepted, executed, reruns, replies and
// terminal is a violation: the subtest fails when one is not zero, and
// logs the evidence (status history, runs log lines, node log lines). A
// node that exits when the harness did not stop it fails it too. One table
// of all scenarios is logged at the end, and written to the file named by
// STEWARD_FAULTS_TABLE when that is set.
//
// # Running
//
// The suite runs only when STEWARD_FAULTS is "quick" (a few minutes) or
// "full" (the sizes the fault drill asks for; -faults.full selects it
// too); otherwise, and under -short, it skips, so `go test ./...` is not
// slowed down. `make faults-quick` and `make faults` run it.
// STEWARD_FAULTS_DIR keeps the processes' folders (logs, runs log, data)
// there instead of in a temporary folder.
package faults

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
)

var fullFlag = flag.Bool("faults.full", false, "run the fault suite at full size (as STEWARD_FAULTS=full)")

// sizes scale the scenarios.
type sizes struct {
	name string
	// shipKills is how many times a ship is SIGKILLed mid-command;
	// with endKills, every other kill lands just after a command's end,
	// and every third kill of central just after it wrote a reply.
	shipKills int
	endKills  bool
	// centralKills is how many times central (with the broker) is.
	centralKills int
	// flapPerMode is how long the link flaps in each of reset,
	// drop-to-target and drop-to-client; blackhole how long it is
	// black-holed every other two seconds (0: not at all).
	flapPerMode, blackhole time.Duration
	// consumerRounds is how often a ship's consumer is deleted.
	consumerRounds int
	// wipes is how often the broker restarts on an empty store.
	wipes int
	// skewCycles is how many rounds of clock skew run (the offset changes
	// sign each round).
	skewCycles int
	// settle bounds the wait for every message to end after the faults.
	settle time.Duration
}

var (
	quick = sizes{name: "quick", shipKills: 10, centralKills: 3, flapPerMode: 10 * time.Second,
		consumerRounds: 3, wipes: 1, skewCycles: 1, settle: 2 * time.Minute}
	full = sizes{name: "full", shipKills: 100, endKills: true, centralKills: 20, flapPerMode: 100 * time.Second,
		blackhole: 90 * time.Second, consumerRounds: 8, wipes: 3, skewCycles: 3, settle: 5 * time.Minute}
)

// mode returns the sizes selected by STEWARD_FAULTS and -faults.full, and
// false when the suite is not to run.
func mode() (sizes, bool) {
	switch os.Getenv("STEWARD_FAULTS") {
	case "full":
		return full, true
	case "quick":
		if *fullFlag {
			return full, true
		}
		return quick, true
	}
	if *fullFlag {
		return full, true
	}
	return sizes{}, false
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if _, on := mode(); on && !testing.Short() {
		return fleettest.Run(m)
	}
	return m.Run()
}

// suite returns the sizes to run with, or skips t.
func suite(t testing.TB) sizes {
	t.Helper()
	sz, on := mode()
	switch {
	case testing.Short():
		t.Skip("fault suite: runs steward processes for minutes")
	case !on:
		t.Skip("fault suite: set STEWARD_FAULTS=quick or full to run it (make faults-quick, make faults)")
	case fleettest.Binary() == "":
		t.Fatal("the steward binary was not built")
	}
	return sz
}
