package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/bench"
	"github.com/stewardfleet/steward/internal/stream"
)

func newBenchCmd(a *app) *cobra.Command {
	d := bench.Defaults()
	o := d
	var asJSON bool
	var cpuProfile string
	var skipNode bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure steward against raw JetStream and fork/exec on this machine",
		Long: `Run a benchmark on one embedded broker (file storage) in one run, so every
number can be read against raw JetStream or raw fork/exec measured the same
way. The nodes run in this process as "steward node run" runs them (default
configuration: audit log, hellos, outbox, socket); the simulated ones share
a few broker connections, a ledger, a data folder and an audit log. Every
message carries a delivery deadline of --deadline, and a message goes to a
node nobody runs every 100 ms, so central judges deadlines during the run.

  1. raw JetStream round trip (request → consume → reply → consume), 1 and
     --window in flight;
  2. raw os/exec of bash -c 'echo hi', --commands times, 1 and --window at
     once; then raw JetStream doing the broker writes of a steward round
     trip and nothing else (pending record and deadline schedule, request,
     claim, reply and terminal record, reply record), 1 and --window in
     flight: the most steward could do with those writes;
  3. steward end to end with --nodes nodes, REQPing with its reply method
     REQPong, 1 and --window in flight, from send to the reply handled on
     central;
  4. REQCliCommand of bash -c 'echo hi' to one node, --commands times, 1
     and --window in flight;
  5. one message to --fanout nodes, until every reply is handled;
  6. --scale-nodes durable consumers: time to register them, broker memory
     per node, throughput spread over that many running nodes, again for
     --hello-run (the default hello interval: every node says hello once
     in it) and over --nodes of them while all run; the deadlines judged;
  7. the raw round trip spread over the same consumers once the nodes
     stopped (nodes10k_ratio is the scale run against it);
  8. broker stop and restart-to-ready;
  9. a real "steward node run" process: start-to-ready and resident memory
     after --idle.

Progress goes to standard error; the results to standard output as a table,
or with --json as one JSON object. The defaults are the full sizes (several
minutes); scale them down for a quick run. docs/performance.md explains
every number.`,
		Example: `  # The full run (a few minutes)
  steward bench

  # A quick run, as CI does
  steward bench --messages 300 --commands 50 --deadline 2s --nodes 20 --fanout 50 --scale-nodes 200 --hello-run 2s --idle 2s --json

  # Profile the run
  steward bench --cpuprofile bench.prof && go tool pprof -top bench.prof`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !skipNode {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find the steward binary for the node footprint step: %w", err)
				}
				o.StewardBin = exe
			}
			o.Progress = a.stderr
			o.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return exitError(ExitUsage, err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			var printErr error
			o.OnReport = func(rep *bench.Report) {
				if asJSON {
					printErr = writeJSON(a.stdout, rep)
				} else {
					printErr = benchTable(a.stdout, rep)
				}
				fmt.Fprintln(a.stderr, "stopping the broker …")
			}
			if _, err := bench.Run(cmd.Context(), o); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			return printErr
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.Messages, "messages", d.Messages, "messages per load run")
	fs.IntVar(&o.Commands, "commands", d.Commands, "commands per command run (raw exec and REQCliCommand)")
	fs.DurationVar(&o.Deadline, "deadline", d.Deadline, "delivery deadline of every message (whole seconds)")
	fs.IntVar(&o.Window, "window", d.Window, "messages in flight in the parallel runs")
	fs.IntVar(&o.Nodes, "nodes", d.Nodes, "nodes of the end-to-end runs")
	fs.IntVar(&o.FanOut, "fanout", d.FanOut, "nodes one message goes to in the fan-out step")
	fs.IntVar(&o.ScaleNodes, "scale-nodes", d.ScaleNodes, "nodes of the scale step")
	fs.DurationVar(&o.HelloRun, "hello-run", d.HelloRun, "how long the load over --scale-nodes nodes runs with their hellos")
	fs.DurationVar(&o.Idle, "idle", d.Idle, "how long the real node idles before its memory is read")
	fs.BoolVar(&skipNode, "skip-node", false, "skip the real node process step")
	fs.StringVar(&o.QueueStorage, "queue-storage", d.QueueStorage, "where the broker keeps the nodes' queues: file or memory (the queue-storage setting)")
	fs.StringVar(&o.Dir, "dir", "", "folder for the broker store and node state (default: a temporary one, removed after)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	return cmd
}

// benchTable prints a report for people.
func benchTable(w io.Writer, r *bench.Report) error {
	t := newTable(w, "MEASURE", "VALUE", "TARGET")
	f := func(v float64, unit string) string { return fmt.Sprintf("%.2f %s", v, unit) }
	rate := func(v float64) string { return fmt.Sprintf("%.0f msg/s", v) }
	t.row("raw JetStream round trip, 1 in flight", rate(r.RawRT1MsgsPerS)+", p50 "+f(r.RawRT1P50ms, "ms"), "")
	t.row(fmt.Sprintf("raw JetStream round trip, %d in flight", r.Window), rate(r.RawRT64MsgsPerS), "")
	t.row("raw JetStream with steward's writes, 1 in flight", "p50 "+f(r.RawWritesRT1P50ms, "ms"), "")
	t.row(fmt.Sprintf("raw JetStream with steward's writes, %d in flight", r.Window), rate(r.RawWritesRT64MsgsPerS), "")
	t.row("  rate against raw (the most steward can do)", fmt.Sprintf("%.2f", r.RawWritesRatio), "")
	t.row(fmt.Sprintf("raw JetStream with steward's writes, %d in flight, %d queues", r.Window, r.Nodes), rate(r.RawWritesNodesRT64MsgsPerS), "")
	t.row("  rate against raw (the most steward can do with a queue per node)", fmt.Sprintf("%.2f", r.RawWritesNodesRatio), "")
	t.row("steward end to end, 1 in flight", fmt.Sprintf("%s, p50 %.2f / p95 %.2f / p99 %.2f ms", rate(r.E2E1MsgsPerS), r.E2E1P50ms, r.E2E1P95ms, r.E2E1P99ms), "")
	t.row("  p50 against raw", fmt.Sprintf("%.2f×", r.E2E1P50Ratio), "≤ 2×")
	t.row(fmt.Sprintf("steward end to end, %d in flight, %d nodes", r.Window, r.Nodes), fmt.Sprintf("%s, p50 %.2f / p95 %.2f / p99 %.2f ms", rate(r.E2E64MsgsPerS), r.E2E64P50ms, r.E2E64P95ms, r.E2E64P99ms), "")
	t.row("  rate against raw", fmt.Sprintf("%.2f", r.E2E64Ratio), "≥ 0.6")
	t.row("  rate against raw with steward's writes", fmt.Sprintf("%.2f", r.E2E64VsWritesRatio), "")
	t.row(fmt.Sprintf("  rate against raw with steward's writes over %d queues", r.Nodes), fmt.Sprintf("%.2f", r.E2E64VsWritesNodesRatio), "")
	t.row("raw os/exec bash -c 'echo hi', 1 at a time", fmt.Sprintf("%.0f/s, p50 %.2f ms", r.RawExec1PerS, r.RawExec1P50ms), "")
	t.row(fmt.Sprintf("raw os/exec bash -c 'echo hi', %d at once", r.Window), fmt.Sprintf("%.0f/s", r.RawExec64PerS), "")
	t.row("REQCliCommand to one node, 1 in flight", fmt.Sprintf("%s, p50 %.2f ms", rate(r.CLI1MsgsPerS), r.CLI1P50ms), "")
	t.row("  p50 over raw exec", fmt.Sprintf("%+.2f ms", r.CLI1P50ms-r.RawExec1P50ms), "≤ +1.5 ms")
	t.row(fmt.Sprintf("REQCliCommand to one node, %d in flight", r.Window), fmt.Sprintf("%s, p50 %.2f ms", rate(r.CLI64MsgsPerS), r.CLI64P50ms), "")
	t.row("  rate against raw exec", fmt.Sprintf("%.2f", r.CLI64Ratio), "≥ 0.5")
	t.row(fmt.Sprintf("fan-out to %d nodes", r.FanOut), f(r.FanOutS, "s"), "≤ 1 s")
	t.row(fmt.Sprintf("register %d nodes", r.ScaleNodes), f(r.RegisterS, "s"), "")
	t.row("broker memory per node", f(r.BrokerKiBPerNode, "KiB"), "≤ 64 KiB")
	t.row(fmt.Sprintf("steward, %d in flight, %d nodes", r.Window, r.ScaleNodes), rate(r.Nodes10kMsgsPerS), "")
	t.row(fmt.Sprintf("  again for %.0f s, with the nodes' hellos", r.HelloRunS), rate(r.Nodes10kHelloMsgsPerS)+fmt.Sprintf(", %.0f hellos/s", r.Nodes10kHellosPerS), "")
	t.row(fmt.Sprintf("raw JetStream, %d in flight, over the same %d consumers", r.Window, r.ScaleNodes), rate(r.Raw10kMsgsPerS), "")
	t.row("  steward against raw", fmt.Sprintf("%.2f", r.Nodes10kRatio), "≥ 0.5")
	t.row(fmt.Sprintf("  steward against %d nodes", r.Nodes), fmt.Sprintf("%.2f", r.Nodes10kVs100Ratio), "")
	t.row(fmt.Sprintf("steward, %d in flight, %d busy of %d nodes", r.Window, r.Nodes, r.ScaleNodes), rate(r.Nodes10kBusy100MsgsPerS), "")
	t.row(fmt.Sprintf("deliveries to an offline node judged timed out (deadline %.0f s)", r.DeadlineS), fmt.Sprintf("%d", r.DeadlineTimeouts), "")
	restart := fmt.Sprintf("broker restart with %d consumers", r.ScaleNodes)
	if r.QueueStorage == stream.QueuesInMemory {
		restart = fmt.Sprintf("broker restart, %d queues in memory made again", r.ScaleNodes)
	}
	t.row(restart, f(r.RestartS, "s"), "≤ 10 s")
	t.row(fmt.Sprintf("  (its stop took %s)", f(r.BrokerStopS, "s")), "", "")
	if r.NodeStartMs > 0 {
		t.row("node process start to ready", f(r.NodeStartMs, "ms"), "≤ 300 ms")
		t.row("node process idle memory (RSS)", f(r.NodeIdleRSSMiB, "MiB"), "≤ 30 MiB")
	}
	t.row("whole run", (time.Duration(r.TotalS * float64(time.Second))).Round(time.Second).String(), "")
	return t.flush()
}
