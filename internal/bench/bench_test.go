package bench

import (
	"os"
	"testing"
	"time"
)

// TestRunSmall runs every step at a small size: the benchmark keeps
// working, its nodes run as shipped (commands run, deadlines are judged)
// and every key is measured. It asserts on what was measured, never on
// how fast.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and a few hundred nodes")
	}
	o := Options{Messages: 200, Commands: 20, Deadline: 2 * time.Second, Window: 16, Nodes: 10, FanOut: 30, ScaleNodes: 60, HelloRun: time.Second, Idle: 0, Dir: t.TempDir()}
	if testing.Verbose() {
		o.Progress = os.Stderr
	}
	rep, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{
		"raw_rt1": rep.RawRT1MsgsPerS, "raw_rt64": rep.RawRT64MsgsPerS,
		"raw_exec1_p50": rep.RawExec1P50ms, "raw_exec64": rep.RawExec64PerS,
		"raw_writes_rt1_p50": rep.RawWritesRT1P50ms, "raw_writes_rt64": rep.RawWritesRT64MsgsPerS, "raw_writes_ratio": rep.RawWritesRatio,
		"raw_writes_nodes_rt64": rep.RawWritesNodesRT64MsgsPerS, "raw_writes_nodes_ratio": rep.RawWritesNodesRatio, "e2e64_vs_writes_nodes_ratio": rep.E2E64VsWritesNodesRatio,
		"e2e64_vs_writes_ratio": rep.E2E64VsWritesRatio,
		"e2e1":                  rep.E2E1MsgsPerS, "e2e64": rep.E2E64MsgsPerS,
		"cli1_p50": rep.CLI1P50ms, "cli64": rep.CLI64MsgsPerS, "cli64_ratio": rep.CLI64Ratio,
		"fanout": rep.FanOutS, "nodes10k": rep.Nodes10kMsgsPerS, "nodes10k_hello": rep.Nodes10kHelloMsgsPerS,
		"raw10k": rep.Raw10kMsgsPerS, "nodes10k_ratio": rep.Nodes10kRatio, "restart": rep.RestartS,
		"deadline_timeouts": float64(rep.DeadlineTimeouts),
	} {
		if v <= 0 {
			t.Errorf("%s not measured: %v", name, v)
		}
	}
	t.Logf("%+v", *rep)
}
