package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
)

// gated is a command printing "line 1" … "line first", then waiting for
// a file named go in its folder (the node's data folder), then printing
// on to "line n": the test decides when it ends, so nothing depends on
// how fast the machine is.
func gated(first, n int) string {
	return fmt.Sprintf(`["sh","-c","i=0; while [ $i -lt %d ]; do i=$((i+1)); echo line $i; done; while [ ! -f go ]; do sleep 0.05; done; while [ $i -lt %d ]; do i=$((i+1)); echo line $i; done"]`, first, n)
}

func wantLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// A streamed command's lines reach the reply method while it runs, in
// order and each once, though the receiving node restarts and the broker
// restarts (a link cut for both nodes) in the middle.
func TestStreamedOutputArrivesInOrderOnce(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	ship1 := f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommandCont","methodArgs":`+gated(100, 3000)+`,
	  "replyMethod":"REQToFileAppend","directory":"cont","fileName":"out.log","methodTimeout":120}`)
	out := filepath.Join(central.cfg.DataFolder, "cont", "ship1", "out.log")

	// Lines arrive while the command runs (it waits for go).
	natstest.Eventually(t, 30*time.Second, "the first 100 lines on central while the command runs", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == wantLines(100)
	})
	// The receiver restarts, then the broker.
	cfg := central.cfg
	f.stop("central")
	central = f.start(cfg)
	f.srv.Restart()
	if err := os.WriteFile(filepath.Join(ship1.cfg.DataFolder, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	recs := waitAll(t, c, ids, 90*time.Second)
	if len(recs) != 2 || recs[0].Status != status.Succeeded || recs[1].Status != status.Succeeded {
		t.Fatalf("delivery and reply: %s", describe(recs))
	}
	b, _ := os.ReadFile(out)
	if string(b) != wantLines(3000) {
		t.Errorf("central wrote %d bytes, want lines 1 to 3000 once each, in order; first difference near %q", len(b), firstDiff(string(b), wantLines(3000)))
	}
}

// When the node running a streamed command restarts, the command runs
// again, and the output says where.
func TestStreamedOutputSaysWhereTheNodeRestarted(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	ship1 := f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommandCont","methodArgs":`+gated(10, 100)+`,
	  "replyMethod":"REQToFileAppend","directory":"cont","fileName":"out.log","methodTimeout":120,"retries":2}`)
	out := filepath.Join(central.cfg.DataFolder, "cont", "ship1", "out.log")
	natstest.Eventually(t, 30*time.Second, "the first 10 lines", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == wantLines(10)
	})
	cfg := ship1.cfg
	f.stop("ship1") // the command waits for go: it is still running
	f.start(cfg)
	if err := os.WriteFile(filepath.Join(cfg.DataFolder, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	recs := wait(t, c, ids, 60*time.Second)
	if recs[0].Status != status.Succeeded {
		t.Fatalf("after the restart: %s", describe(recs))
	}
	b, _ := os.ReadFile(out)
	before, after, ok := strings.Cut(string(b), "steward: ship1 restarted the method here (its node stopped or died while it ran); what follows is its new run\n")
	if !ok || before != wantLines(10) || after != wantLines(100) {
		t.Errorf("central wrote:\n%s\nwant the first run's lines, the restart note, then lines 1 to 100", b)
	}
}

func firstDiff(got, want string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return got[max(0, i-20):min(len(got), i+20)]
		}
	}
	if len(got) > len(want) {
		return got[len(want):min(len(got), len(want)+40)]
	}
	return "(end)"
}
