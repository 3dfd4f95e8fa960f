// Package bench is `steward bench`: it measures steward against raw
// JetStream on one embedded broker (file storage), in one run, on one
// machine, so every number is a ratio or a bound from the same conditions.
//
// Steps, each scaled by Options:
//
//  1. raw JetStream round trip (request → consume → reply → consume), 1 and
//     64 in flight;
//  2. steward end to end with Nodes in-process nodes on the real node code
//     path, a trivial method (REQPing) and its reply method (REQPong, a file
//     append on the sender), 1 and 64 in flight;
//  3. one message to FanOut nodes, until every reply is handled;
//  4. ScaleNodes durable consumers: time to register them, broker memory
//     per node, throughput spread over ScaleNodes running nodes and over
//     Nodes of them, broker stop and restart-to-ready;
//  5. one real `steward node run` process: start-to-ready and idle RSS.
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
	"github.com/stewardfleet/steward/internal/message"
)

// Options size the run.
type Options struct {
	// Messages per load run (raw and steward, 1 and 64 in flight).
	Messages int
	// Window is the number in flight of the parallel runs.
	Window int
	// Nodes is the small fleet of the end-to-end runs.
	Nodes int
	// FanOut is the number of nodes one message goes to.
	FanOut int
	// ScaleNodes is the large fleet.
	ScaleNodes int
	// Idle is how long the real node idles before its RSS is read.
	Idle time.Duration
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
	return Options{Messages: 5000, Window: 64, Nodes: 100, FanOut: 1000, ScaleNodes: 10_000, Idle: time.Minute}
}

// Report is one run's numbers. JSON keys are stable for scripts.
type Report struct {
	Messages   int `json:"messages"`
	Window     int `json:"window"`
	Nodes      int `json:"nodes"`
	FanOut     int `json:"fanout"`
	ScaleNodes int `json:"scale_nodes"`

	RawRT1MsgsPerS  float64 `json:"raw_rt1_msgs_per_s"`
	RawRT1P50ms     float64 `json:"raw_rt1_p50_ms"`
	RawRT1P99ms     float64 `json:"raw_rt1_p99_ms"`
	RawRT64MsgsPerS float64 `json:"raw_rt64_msgs_per_s"`
	RawRT64P50ms    float64 `json:"raw_rt64_p50_ms"`

	E2E1MsgsPerS  float64 `json:"e2e1_msgs_per_s"`
	E2E1P50ms     float64 `json:"e2e1_p50_ms"`
	E2E1P95ms     float64 `json:"e2e1_p95_ms"`
	E2E1P99ms     float64 `json:"e2e1_p99_ms"`
	E2E64MsgsPerS float64 `json:"e2e64_msgs_per_s"`
	E2E64P50ms    float64 `json:"e2e64_p50_ms"`
	E2E64P95ms    float64 `json:"e2e64_p95_ms"`
	E2E64P99ms    float64 `json:"e2e64_p99_ms"`
	E2E64Ratio    float64 `json:"e2e64_ratio"`
	E2E1P50Ratio  float64 `json:"e2e1_p50_ratio"`

	FanOutS float64 `json:"fanout1000_s"`

	RegisterS        float64 `json:"register_s"`
	BrokerKiBPerNode float64 `json:"broker_kib_per_node"`
	Nodes100MsgsPerS float64 `json:"nodes100_msgs_per_s"`
	Nodes10kMsgsPerS float64 `json:"nodes10k_msgs_per_s"`
	Nodes10kRatio    float64 `json:"nodes10k_ratio"`
	// Nodes10kBusy100MsgsPerS is the 100-node load again while all
	// ScaleNodes nodes run: what idle nodes cost the busy ones.
	Nodes10kBusy100MsgsPerS float64 `json:"nodes10k_busy100_msgs_per_s"`
	RestartS                float64 `json:"restart_s"`
	BrokerStopS             float64 `json:"broker_stop_s"`

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
	if o.Window <= 0 {
		o.Window = d.Window
	}
	if o.Nodes <= 0 {
		o.Nodes = d.Nodes
	}
	if o.FanOut <= 0 {
		o.FanOut = d.FanOut
	}
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
	p := newProgress(o.Progress, 13)
	rep := &Report{Messages: o.Messages, Window: o.Window, Nodes: o.Nodes, FanOut: o.FanOut, ScaleNodes: o.ScaleNodes}

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

	// 2. Steward end to end on a small fleet.
	f, err := newFleet(ctx, url, filepath.Join(o.Dir, "fleet"), o.Logger)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if err := f.startCentral(ctx); err != nil {
		return nil, err
	}
	p.step(fmt.Sprintf("starting %d nodes", o.Nodes))
	if err := f.grow(ctx, o.Nodes, p.count(o.Nodes)); err != nil {
		return nil, err
	}
	p.step("steward end to end, 1 in flight")
	e1, err := f.load(ctx, o.Nodes, o.Messages, 1, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("steward, 1 in flight: %w", err)
	}
	p.step(fmt.Sprintf("steward end to end, %d in flight, %d nodes", o.Window, o.Nodes))
	e64, err := f.load(ctx, o.Nodes, o.Messages, o.Window, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("steward, %d in flight: %w", o.Window, err)
	}
	rep.E2E1MsgsPerS, rep.E2E1P50ms, rep.E2E1P95ms, rep.E2E1P99ms = e1.rate(), ms(e1.pct(50)), ms(e1.pct(95)), ms(e1.pct(99))
	rep.E2E64MsgsPerS, rep.E2E64P50ms, rep.E2E64P95ms, rep.E2E64P99ms = e64.rate(), ms(e64.pct(50)), ms(e64.pct(95)), ms(e64.pct(99))
	rep.E2E64Ratio = rep.E2E64MsgsPerS / rep.RawRT64MsgsPerS
	rep.E2E1P50Ratio = rep.E2E1P50ms / rep.RawRT1P50ms
	rep.Nodes100MsgsPerS = rep.E2E64MsgsPerS

	// 3. Fan-out.
	p.step(fmt.Sprintf("fan-out to %d nodes", o.FanOut))
	if err := f.grow(ctx, o.FanOut, func(int) {}); err != nil {
		return nil, err
	}
	fo, err := f.fanout(ctx, o.FanOut, p.count(o.FanOut))
	if err != nil {
		return nil, fmt.Errorf("fan-out: %w", err)
	}
	rep.FanOutS = fo.Seconds()

	// 4. Scale: register, memory, throughput, restart.
	p.step(fmt.Sprintf("registering %d nodes", o.ScaleNodes))
	heapBefore := heapInUse()
	regBegin := time.Now()
	if err := register(ctx, js, f.started, o.ScaleNodes, p.count(o.ScaleNodes)); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	rep.RegisterS = time.Since(regBegin).Seconds()
	if added := o.ScaleNodes - f.started; added > 0 {
		rep.BrokerKiBPerNode = float64(int64(heapInUse())-int64(heapBefore)) / 1024 / float64(added)
	}
	p.step(fmt.Sprintf("starting %d nodes", o.ScaleNodes))
	if err := f.grow(ctx, o.ScaleNodes, p.count(o.ScaleNodes)); err != nil {
		return nil, err
	}
	p.step(fmt.Sprintf("steward end to end, %d in flight, %d nodes", o.Window, o.ScaleNodes))
	big, err := f.load(ctx, o.ScaleNodes, o.Messages, o.Window, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("steward at %d nodes: %w", o.ScaleNodes, err)
	}
	rep.Nodes10kMsgsPerS = big.rate()
	rep.Nodes10kRatio = rep.Nodes10kMsgsPerS / rep.Nodes100MsgsPerS
	p.step(fmt.Sprintf("steward end to end, %d in flight, %d busy nodes of %d", o.Window, o.Nodes, o.ScaleNodes))
	busy, err := f.load(ctx, o.Nodes, o.Messages, o.Window, p.count(o.Messages))
	if err != nil {
		return nil, fmt.Errorf("steward, %d of %d nodes: %w", o.Nodes, o.ScaleNodes, err)
	}
	rep.Nodes10kBusy100MsgsPerS = busy.rate()
	f.close()

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
	if err := waitStreamReady(ctx, url, o.ScaleNodes); err != nil {
		return nil, err
	}
	rep.RestartS = time.Since(restartBegin).Seconds()

	// 5. A real node process.
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
