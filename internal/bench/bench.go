// Package bench is `steward bench`: it measures steward against raw
// JetStream and raw fork/exec on one embedded broker (file storage), in
// one run, on one machine, so every number is a ratio or a bound from the
// same conditions.
//
// The nodes are run by node.Run as it ships (config.Default, audit log,
// hellos at the default interval, outbox, socket, instance check); the
// simulated ones share a few broker links, a ledger, a data folder and an
// audit log given to them through node.Options (see fleet). Every message
// carries a delivery deadline of a few seconds, and a trickle of messages
// goes to a node nobody runs, so central's deadline judge works during the
// run; the run fails if any of those is not judged timed out, or if a
// message to a running node does not succeed.
//
// Steps, each scaled by Options:
//
//  1. raw JetStream round trip (request → consume → reply → consume), 1 and
//     Window in flight;
//  2. raw os/exec of `bash -c 'echo hi'`, 1 and Window at once; then the
//     raw round trip with steward's seven broker writes (rawWrites), 1 and
//     Window in flight, and Window in flight spread over Nodes queues;
//  3. steward end to end with Nodes nodes, a trivial method (REQPing) and
//     its reply method (REQPong, a file append on central), 1 and Window
//     in flight;
//  4. REQCliCommand of `bash -c 'echo hi'` to one node, 1 and Window in
//     flight;
//  5. one message to FanOut nodes, until every reply is handled;
//  6. ScaleNodes durable consumers: time to register them, broker memory
//     per node, throughput spread over ScaleNodes running nodes, again
//     for HelloRun (every node says hello once in it) and over Nodes of
//     them; the deadlines judged;
//  7. the raw round trip spread over the same ScaleNodes consumers, once
//     the nodes stopped;
//  8. broker stop and restart-to-ready with ScaleNodes consumers;
//  9. one real `steward node run` process: start-to-ready and idle RSS.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/stream"
)

// Options size the run.
type Options struct {
	// Messages per load run (raw and steward, 1 and 64 in flight).
	Messages int
	// Commands per command run (raw exec and REQCliCommand, 1 and 64 at
	// once).
	Commands int
	// Deadline is the deliveryDeadline of every message (whole seconds, at
	// least 1): the deadlines of the messages to a node nobody runs fire
	// after it, during the run.
	Deadline time.Duration
	// Window is the number in flight of the parallel runs.
	Window int
	// Nodes is the small fleet of the end-to-end runs.
	Nodes int
	// FanOut is the number of nodes one message goes to.
	FanOut int
	// ScaleNodes is the large fleet.
	ScaleNodes int
	// HelloRun is how long the ScaleNodes load with hellos runs. At the
	// default hello interval every node says hello once in it.
	HelloRun time.Duration
	// Idle is how long the real node idles before its RSS is read.
	Idle time.Duration
	// QueueStorage is the fleet's queue storage (config queue-storage:
	// "file", the default, or "memory").
	QueueStorage string
	// StewardBin is the steward binary for the footprint step ("" skips it).
	StewardBin string
	// Dir holds the broker store and node state ("" makes a temporary one).
	Dir string
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	Logger   *slog.Logger
	// OnReport, if not nil, gets the report as soon as it is complete,
	// before the broker is stopped: stopping a broker with 10,000
	// consumers takes nats-server a minute or more (see docs/performance.md).
	OnReport func(*Report)
}

// Defaults are the sizes the issue asks for.
func Defaults() Options {
	return Options{Messages: 5000, Commands: 1000, Deadline: 10 * time.Second, Window: 64, Nodes: 100, FanOut: 1000, ScaleNodes: 10_000,
		HelloRun: config.Default().HelloInterval, Idle: time.Minute, QueueStorage: config.Default().QueueStorage}
}

// Report is one run's numbers. JSON keys are stable for scripts.
type Report struct {
	Messages   int     `json:"messages"`
	Commands   int     `json:"commands"`
	DeadlineS  float64 `json:"deadline_s"`
	Window     int     `json:"window"`
	Nodes      int     `json:"nodes"`
	FanOut     int     `json:"fanout"`
	ScaleNodes int     `json:"scale_nodes"`
	// QueueStorage is where the broker kept the nodes' queues.
	QueueStorage string `json:"queue_storage"`

	RawRT1MsgsPerS  float64 `json:"raw_rt1_msgs_per_s"`
	RawRT1P50ms     float64 `json:"raw_rt1_p50_ms"`
	RawRT1P99ms     float64 `json:"raw_rt1_p99_ms"`
	RawRT64MsgsPerS float64 `json:"raw_rt64_msgs_per_s"`
	RawRT64P50ms    float64 `json:"raw_rt64_p50_ms"`

	// RawWrites* is the raw round trip with steward's seven broker writes
	// (rawWrites); RawWritesRatio is its rate against RawRT64MsgsPerS:
	// the most E2E64Ratio can be with those writes.
	RawWritesRT1P50ms     float64 `json:"raw_writes_rt1_p50_ms"`
	RawWritesRT64MsgsPerS float64 `json:"raw_writes_rt64_msgs_per_s"`
	RawWritesRatio        float64 `json:"raw_writes_ratio"`
	// RawWritesNodes* is the same, Window in flight, spread over Nodes
	// responders, one queue each as in steward's fleet; its ratio is the
	// most E2E64Ratio can be with those writes and one queue per node.
	RawWritesNodesRT64MsgsPerS float64 `json:"raw_writes_nodes_rt64_msgs_per_s"`
	RawWritesNodesRatio        float64 `json:"raw_writes_nodes_ratio"`

	RawExec1PerS  float64 `json:"raw_exec1_per_s"`
	RawExec1P50ms float64 `json:"raw_exec1_p50_ms"`
	RawExec64PerS float64 `json:"raw_exec64_per_s"`

	E2E1MsgsPerS  float64 `json:"e2e1_msgs_per_s"`
	E2E1P50ms     float64 `json:"e2e1_p50_ms"`
	E2E1P95ms     float64 `json:"e2e1_p95_ms"`
	E2E1P99ms     float64 `json:"e2e1_p99_ms"`
	E2E64MsgsPerS float64 `json:"e2e64_msgs_per_s"`
	E2E64P50ms    float64 `json:"e2e64_p50_ms"`
	E2E64P95ms    float64 `json:"e2e64_p95_ms"`
	E2E64P99ms    float64 `json:"e2e64_p99_ms"`
	E2E64Ratio    float64 `json:"e2e64_ratio"`
	// E2E64VsWritesRatio is E2E64MsgsPerS against RawWritesRT64MsgsPerS:
	// the share of the broker's ceiling steward's own code leaves.
	E2E64VsWritesRatio float64 `json:"e2e64_vs_writes_ratio"`
	// E2E64VsWritesNodesRatio is E2E64MsgsPerS against
	// RawWritesNodesRT64MsgsPerS: what steward's own code leaves of the
	// ceiling with one queue per node.
	E2E64VsWritesNodesRatio float64 `json:"e2e64_vs_writes_nodes_ratio"`
	E2E1P50Ratio            float64 `json:"e2e1_p50_ratio"`

	CLI1MsgsPerS  float64 `json:"cli1_msgs_per_s"`
	CLI1P50ms     float64 `json:"cli1_p50_ms"`
	CLI64MsgsPerS float64 `json:"cli64_msgs_per_s"`
	CLI64P50ms    float64 `json:"cli64_p50_ms"`
	CLI64Ratio    float64 `json:"cli64_ratio"`

	FanOutS float64 `json:"fanout1000_s"`

	RegisterS        float64 `json:"register_s"`
	BrokerKiBPerNode float64 `json:"broker_kib_per_node"`
	Nodes100MsgsPerS float64 `json:"nodes100_msgs_per_s"`
	Nodes10kMsgsPerS float64 `json:"nodes10k_msgs_per_s"`
	// Raw10kMsgsPerS is the raw round trip spread over the same
	// ScaleNodes consumers; Nodes10kRatio is Nodes10kMsgsPerS against it.
	Raw10kMsgsPerS float64 `json:"raw10k_msgs_per_s"`
	Nodes10kRatio  float64 `json:"nodes10k_ratio"`
	// Nodes10kVs100Ratio is Nodes10kMsgsPerS against Nodes100MsgsPerS
	// (what nodes10k_ratio meant before raw10k was measured).
	Nodes10kVs100Ratio float64 `json:"nodes10k_vs_100_ratio"`
	// Nodes10kHelloMsgsPerS is the ScaleNodes load run for HelloRun (a
	// whole hello interval: every node says hello once in it, as shipped).
	// Nodes10kHellosPerS is how many hellos central handled a second
	// meanwhile. Nodes10kMsgsPerS runs right after the nodes started, when
	// hardly any hello is due.
	Nodes10kHelloMsgsPerS float64 `json:"nodes10k_hello_msgs_per_s"`
	Nodes10kHellosPerS    float64 `json:"nodes10k_hellos_per_s"`
	HelloRunS             float64 `json:"hello_run_s"`
	// Nodes10kBusy100MsgsPerS is the 100-node load again while all
	// ScaleNodes nodes run: what idle nodes cost the busy ones.
	Nodes10kBusy100MsgsPerS float64 `json:"nodes10k_busy100_msgs_per_s"`
	// DeadlineTimeouts is how many messages to a node nobody runs central
	// judged delivery_timed_out during the run (all that were sent).
	DeadlineTimeouts int     `json:"deadline_timeouts"`
	RestartS         float64 `json:"restart_s"`
	BrokerStopS      float64 `json:"broker_stop_s"`

	NodeIdleRSSMiB float64 `json:"node_idle_rss_mib"`
	NodeStartMs    float64 `json:"node_start_ms"`

	TotalS float64 `json:"total_s"`
}

// Run runs every step and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	begin := time.Now()
	d := Defaults()
	if o.Messages <= 0 {
		o.Messages = d.Messages
	}
	if o.Commands <= 0 {
		o.Commands = d.Commands
	}
	if o.Deadline <= 0 {
		o.Deadline = d.Deadline
	}
	o.Deadline = max(o.Deadline.Round(time.Second), time.Second)
	if o.Window <= 0 {
		o.Window = d.Window
	}
	if o.Nodes <= 0 {
		o.Nodes = d.Nodes
	}
	if o.FanOut <= 0 {
		o.FanOut = d.FanOut
	}
	if o.HelloRun <= 0 {
		o.HelloRun = d.HelloRun
	}
	if o.QueueStorage == "" {
		o.QueueStorage = d.QueueStorage
	}
	if err := stream.CheckQueueStorage(o.QueueStorage); err != nil {
		return nil, err
	}
	inMemory := o.QueueStorage == stream.QueuesInMemory
	if o.ScaleNodes < max(o.Nodes, o.FanOut) {
		o.ScaleNodes = max(o.Nodes, o.FanOut)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "steward-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	p := newProgress(o.Progress, 23)
	rep := &Report{Messages: o.Messages, Commands: o.Commands, DeadlineS: o.Deadline.Seconds(), Window: o.Window, Nodes: o.Nodes, FanOut: o.FanOut, ScaleNodes: o.ScaleNodes, QueueStorage: o.QueueStorage}

	storeDir := filepath.Join(o.Dir, "broker")
	srv, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", StoreDir: storeDir, Name: "bench", Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	defer func() { srv.Shutdown() }()
	listen := srv.Addr().String()
	url := "nats://" + listen

	// 1. Raw JetStream.
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return nil, err
	}
	reqBody, repBody := samplePayloads()
	raw, err := newRawBaseline(ctx, js, reqBody, repBody)
	if err != nil {
		return nil, err
	}
	p.step("raw JetStream round trip, 1 in flight")
	r1, err := raw.run(ctx, "w1", o.Messages, 1, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("raw, 1 in flight: %w", err)
	}
	p.step(fmt.Sprintf("raw JetStream round trip, %d in flight", o.Window))
	r64, err := raw.run(ctx, "w64", o.Messages, o.Window, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("raw, %d in flight: %w", o.Window, err)
	}
	raw.close()
	rep.RawRT1MsgsPerS, rep.RawRT1P50ms, rep.RawRT1P99ms = r1.rate(), ms(r1.pct(50)), ms(r1.pct(99))
	rep.RawRT64MsgsPerS, rep.RawRT64P50ms = r64.rate(), ms(r64.pct(50))

	// 2. Raw fork/exec.
	p.step("raw os/exec of bash -c 'echo hi', 1 at a time")
	x1, err := rawExec(ctx, o.Commands, 1, p.count(o.Commands))
	if err != nil {
		return nil, fmt.Errorf("raw exec, 1 at a time: %w", err)
	}
	p.step(fmt.Sprintf("raw os/exec of bash -c 'echo hi', %d at once", o.Window))
	x64, err := rawExec(ctx, o.Commands, o.Window, p.count(o.Commands))
	if err != nil {
		return nil, fmt.Errorf("raw exec, %d at once: %w", o.Window, err)
	}
	rep.RawExec1PerS, rep.RawExec1P50ms, rep.RawExec64PerS = x1.rate(), ms(x1.pct(50)), x64.rate()

	// 2b. Raw JetStream with steward's seven writes per round trip.
	writes, err := newRawWrites(ctx, js, stream.Layout{QueueStorage: o.QueueStorage}, 1, reqBody, repBody)
	if err != nil {
		return nil, err
	}
	p.step("raw JetStream with steward's broker writes, 1 in flight")
	w1, err := writes.run(ctx, "w1", o.Messages, 1, p.count(o.Messages))
	if err != nil {
		writes.close()
		return nil, fmt.Errorf("raw with steward's writes, 1 in flight: %w", err)
	}
	p.step(fmt.Sprintf("raw JetStream with steward's broker writes, %d in flight", o.Window))
	w64, err := writes.run(ctx, "w64", o.Messages, o.Window, p.count(o.Messages))
	writes.close()
	if err != nil {
		return nil, fmt.Errorf("raw with steward's writes, %d in flight: %w", o.Window, err)
	}
	rep.RawWritesRT1P50ms, rep.RawWritesRT64MsgsPerS = ms(w1.pct(50)), w64.rate()
	rep.RawWritesRatio = rep.RawWritesRT64MsgsPerS / rep.RawRT64MsgsPerS
	wspread, err := newRawWrites(ctx, js, stream.Layout{QueueStorage: o.QueueStorage}, o.Nodes, reqBody, repBody)
	if err != nil {
		return nil, err
	}
	p.step(fmt.Sprintf("raw JetStream with steward's broker writes, %d in flight, %d queues", o.Window, o.Nodes))
	wn, err := wspread.run(ctx, "wn", o.Messages, o.Window, p.count(o.Messages))
	wspread.close()
	if err != nil {
		return nil, fmt.Errorf("raw with steward's writes over %d queues: %w", o.Nodes, err)
	}
	rep.RawWritesNodesRT64MsgsPerS = wn.rate()
	rep.RawWritesNodesRatio = rep.RawWritesNodesRT64MsgsPerS / rep.RawRT64MsgsPerS

	// 3. Steward end to end on a small fleet.
	f := newFleet(url, filepath.Join(o.Dir, "fleet"), o.Deadline, o.QueueStorage, o.Logger)
	defer f.close()
	p.step(fmt.Sprintf("starting central and %d nodes", o.Nodes))
	if err := f.start(ctx); err != nil {
		return nil, err
	}
	if err := f.grow(ctx, o.Nodes, p.count(o.Nodes)); err != nil {
		return nil, err
	}
	p.step("steward end to end, 1 in flight")
	e1, err := f.load(ctx, f.ping, o.Nodes, o.Messages, 1, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("steward, 1 in flight: %w", err)
	}
	p.step(fmt.Sprintf("steward end to end, %d in flight, %d nodes", o.Window, o.Nodes))
	e64, err := f.load(ctx, f.ping, o.Nodes, o.Messages, o.Window, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("steward, %d in flight: %w", o.Window, err)
	}
	rep.E2E1MsgsPerS, rep.E2E1P50ms, rep.E2E1P95ms, rep.E2E1P99ms = e1.rate(), ms(e1.pct(50)), ms(e1.pct(95)), ms(e1.pct(99))
	rep.E2E64MsgsPerS, rep.E2E64P50ms, rep.E2E64P95ms, rep.E2E64P99ms = e64.rate(), ms(e64.pct(50)), ms(e64.pct(95)), ms(e64.pct(99))
	rep.E2E64Ratio = rep.E2E64MsgsPerS / rep.RawRT64MsgsPerS
	rep.E2E64VsWritesRatio = rep.E2E64MsgsPerS / rep.RawWritesRT64MsgsPerS
	rep.E2E64VsWritesNodesRatio = rep.E2E64MsgsPerS / rep.RawWritesNodesRT64MsgsPerS
	rep.E2E1P50Ratio = rep.E2E1P50ms / rep.RawRT1P50ms
	rep.Nodes100MsgsPerS = rep.E2E64MsgsPerS

	// 4. Commands on one node.
	p.step("REQCliCommand bash -c 'echo hi' to one node, 1 in flight")
	c1, err := f.load(ctx, f.command, 1, o.Commands, 1, p.count(o.Commands))
	if err != nil {
		return nil, fmt.Errorf("commands, 1 in flight: %w", err)
	}
	p.step(fmt.Sprintf("REQCliCommand bash -c 'echo hi' to one node, %d in flight", o.Window))
	c64, err := f.load(ctx, f.command, 1, o.Commands, o.Window, p.count(o.Commands))
	if err != nil {
		return nil, fmt.Errorf("commands, %d in flight: %w", o.Window, err)
	}
	rep.CLI1MsgsPerS, rep.CLI1P50ms = c1.rate(), ms(c1.pct(50))
	rep.CLI64MsgsPerS, rep.CLI64P50ms = c64.rate(), ms(c64.pct(50))
	rep.CLI64Ratio = rep.CLI64MsgsPerS / rep.RawExec64PerS

	// 5. Fan-out.
	p.step(fmt.Sprintf("fan-out to %d nodes", o.FanOut))
	if err := f.grow(ctx, o.FanOut, func(int) {}); err != nil {
		return nil, err
	}
	fo, err := f.fanout(ctx, o.FanOut, p.count(o.FanOut))
	if err != nil {
		return nil, fmt.Errorf("fan-out: %w", err)
	}
	rep.FanOutS = fo.Seconds()

	// 6. Scale: register, memory, throughput, deadlines.
	p.step(fmt.Sprintf("registering %d nodes", o.ScaleNodes))
	heapBefore := heapInUse()
	regBegin := time.Now()
	if err := register(ctx, js, f.started, o.ScaleNodes, inMemory, p.count(o.ScaleNodes)); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	rep.RegisterS = time.Since(regBegin).Seconds()
	if added := o.ScaleNodes - f.started; added > 0 {
		rep.BrokerKiBPerNode = float64(int64(heapInUse())-int64(heapBefore)) / 1024 / float64(added)
	}
	p.step(fmt.Sprintf("starting %d nodes (until central has had their first hellos)", o.ScaleNodes))
	if err := f.grow(ctx, o.ScaleNodes, p.count(o.ScaleNodes)); err != nil {
		return nil, err
	}
	if err := f.settle(ctx, p.count(o.ScaleNodes)); err != nil {
		return nil, err
	}
	p.step(fmt.Sprintf("steward end to end, %d in flight, %d nodes", o.Window, o.ScaleNodes))
	big, err := f.load(ctx, f.ping, o.ScaleNodes, o.Messages, o.Window, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("steward at %d nodes: %w", o.ScaleNodes, err)
	}
	rep.Nodes10kMsgsPerS = big.rate()
	rep.Nodes10kVs100Ratio = rep.Nodes10kMsgsPerS / rep.Nodes100MsgsPerS
	p.step(fmt.Sprintf("steward end to end, %d in flight, %d nodes, for %s: every node says hello once", o.Window, o.ScaleNodes, o.HelloRun))
	hellos := f.hellos.Load()
	hb, err := f.loadUntil(ctx, f.ping, o.ScaleNodes, 1<<20, time.Now().Add(o.HelloRun), o.Window, func(n int) { p.note(fmt.Sprintf("%d sent", n)) })
	if err != nil {
		return nil, fmt.Errorf("steward at %d nodes saying hello: %w", o.ScaleNodes, err)
	}
	rep.Nodes10kHelloMsgsPerS = hb.rate()
	rep.Nodes10kHellosPerS = float64(f.hellos.Load()-hellos) / hb.Elapsed.Seconds()
	rep.HelloRunS = hb.Elapsed.Seconds()
	p.step(fmt.Sprintf("steward end to end, %d in flight, %d busy nodes of %d", o.Window, o.Nodes, o.ScaleNodes))
	busy, err := f.load(ctx, f.ping, o.Nodes, o.Messages, o.Window, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("steward, %d of %d nodes: %w", o.Nodes, o.ScaleNodes, err)
	}
	rep.Nodes10kBusy100MsgsPerS = busy.rate()
	p.step("delivery deadlines judged by central")
	if rep.DeadlineTimeouts, err = f.judged(ctx, p.count(len(f.offline))); err != nil {
		return nil, fmt.Errorf("deadlines: %w", err)
	}
	p.step(fmt.Sprintf("stopping %d nodes", o.ScaleNodes))
	f.close()

	// 7. Raw JetStream over the same consumers.
	p.step(fmt.Sprintf("raw JetStream round trip, %d in flight, spread over the %d nodes' consumers", o.Window, o.ScaleNodes))
	spread, err := rawSpread(ctx, url, o.ScaleNodes, o.Messages, o.Window, reqBody, repBody, p.count(o.ScaleNodes))
	if err != nil {
		return nil, fmt.Errorf("raw over %d consumers: %w", o.ScaleNodes, err)
	}
	rep.Raw10kMsgsPerS = spread.rate()
	rep.Nodes10kRatio = rep.Nodes10kMsgsPerS / rep.Raw10kMsgsPerS

	// 8. Broker stop and restart.
	p.step(fmt.Sprintf("broker stop with %d consumers", o.ScaleNodes))
	nc.Close()
	stopBegin := time.Now()
	srv.Shutdown()
	srv.WaitForShutdown()
	rep.BrokerStopS = time.Since(stopBegin).Seconds()
	p.step(fmt.Sprintf("broker restart with %d consumers", o.ScaleNodes))
	restartBegin := time.Now()
	srv, err = broker.Start(broker.Options{Listen: listen, StoreDir: storeDir, Name: "bench", Logger: o.Logger, ReadyTimeout: 5 * time.Minute})
	if err != nil {
		return nil, fmt.Errorf("restart broker: %w", err)
	}
	if !inMemory {
		if err := waitStreamReady(ctx, url, o.ScaleNodes); err != nil {
			return nil, err
		}
	} else {
		// The broker forgot the queues: ready is when the nodes have
		// made theirs again, as they do when they reconnect.
		if err := waitStreamReady(ctx, url, 0); err != nil {
			return nil, err
		}
		if err := registerAgain(ctx, url, o.ScaleNodes); err != nil {
			return nil, err
		}
	}
	rep.RestartS = time.Since(restartBegin).Seconds()

	// 9. A real node process.
	if o.StewardBin != "" {
		p.step("a real node process")
		fp, err := measureFootprint(ctx, o.StewardBin, url, o.Dir, o.Idle, p.note)
		if err != nil {
			return nil, fmt.Errorf("node footprint: %w", err)
		}
		rep.NodeStartMs, rep.NodeIdleRSSMiB = fp.StartMs, fp.IdleRSS
	}
	p.done()
	rep.TotalS = time.Since(begin).Seconds()
	if o.OnReport != nil {
		o.OnReport(rep)
	}
	return rep, nil
}

// samplePayloads are a typical request and reply as steward puts them on
// the wire, used as the raw baseline's payloads.
func samplePayloads() (req, rep []byte) {
	now := time.Now().UTC()
	r := 3
	m := &message.Message{ToNode: "n00001", Method: "REQPing", Directory: "bench", FileName: "pong.log",
		ACKTimeout: 30, Retries: &r, ReplyACKTimeout: 30, ReplyRetries: &r, MethodTimeout: 10,
		ReplyMethod: "REQPong", ID: "ABCDEFGHIJKLMNOPQRSTUV", FromNode: "central", SentAt: now, Deadline: now.Add(time.Hour)}
	req, _ = json.Marshal(m)
	reply := *m
	reply.ToNode, reply.FromNode, reply.Method, reply.ReplyMethod = "central", "n00001", "REQPong", ""
	reply.Data = message.Data("pong from n00001 at " + now.Format(time.RFC3339Nano))
	reply.Reply = &message.ReplyInfo{DeliveryID: m.ID + ".n00001", Method: "REQPing", Status: "succeeded", Chunks: 1}
	rep, _ = json.Marshal(&reply)
	return req, rep
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
