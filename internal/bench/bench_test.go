package bench

import (
	"os"
	"testing"
)

// TestRunSmall runs every step at a small size: the benchmark keeps
// working. It asserts on what was measured, never on how fast.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and a few hundred nodes")
	}
	o := Options{Messages: 200, Window: 16, Nodes: 10, FanOut: 30, ScaleNodes: 60, Idle: 0, Dir: t.TempDir()}
	if testing.Verbose() {
		o.Progress = os.Stderr
	}
	rep, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{
		"raw_rt1": rep.RawRT1MsgsPerS, "raw_rt64": rep.RawRT64MsgsPerS, "e2e1": rep.E2E1MsgsPerS,
		"e2e64": rep.E2E64MsgsPerS, "fanout": rep.FanOutS, "nodes10k": rep.Nodes10kMsgsPerS, "restart": rep.RestartS,
	} {
		if v <= 0 {
			t.Errorf("%s not measured: %v", name, v)
		}
	}
	t.Logf("%+v", *rep)
}
