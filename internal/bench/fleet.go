package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// fleet is a set of in-process nodes run by node.Run as it ships: each
// with its durable consumer, its state folder (instance, queue floor,
// outbox, run records), its socket, hellos at the default interval and
// the audit log. The central node opens everything itself, as `steward
// node run` does. The other nodes are given shared resources, so that
// 10,000 of them fit in one process: a few links to the broker, one
// ledger, one data folder for their methods and one audit log (each line
// names its node). Which resource a node opened itself changes who closes
// it, nothing else.
type fleet struct {
	url string
	dir string
	log *slog.Logger
	// queueStorage is the central node's queue-storage setting.
	queueStorage string
	// deadline is the deliveryDeadline of every message the bench sends:
	// short enough that the deadline schedules of the messages to the
	// offline node fire during the run, so central's judge does its work,
	// and long enough that no message to a running node times out.
	deadline time.Duration

	links  []*node.Link // shared by the simulated nodes
	ledger *ledger.Ledger
	files  *datafolder.Folder
	audit  *audit.Log

	// The bench sends as an operator beside central does (`steward send`):
	// on its own link, into central's audit log.
	opLink  *node.Link
	opAudit *audit.Log
	sender  *sender.Sender
	status  *status.Store

	mu      sync.Mutex
	cancels []context.CancelFunc
	wg      sync.WaitGroup
	started int // simulated nodes running

	// onReply is called for every reply the central node finished.
	onReply atomic.Pointer[func(*message.Message)]
	// hellos counts the hellos central handled; greeted is the nodes it
	// had one from.
	hellos  atomic.Int64
	greetMu sync.Mutex
	greeted map[string]bool

	// offline holds the IDs of the messages sent to offlineNode, whose
	// delivery deadlines central is to judge during the run.
	offMu   sync.Mutex
	offline []string
}

// nodeLinks is how many broker connections the simulated nodes share.
const nodeLinks = 8

// offlineNode is a node nobody runs: messages to it wait in the stream
// until their delivery deadline fires.
const offlineNode = "offline"

// offlineEvery is how often, during the load runs, a message goes to
// offlineNode.
const offlineEvery = 100 * time.Millisecond

func newFleet(url, dir string, deadline time.Duration, queueStorage string, log *slog.Logger) *fleet {
	return &fleet{url: url, dir: dir, deadline: deadline, queueStorage: queueStorage, log: log, greeted: map[string]bool{}}
}

func nodeName(i int) string { return fmt.Sprintf("n%05d", i) }

// config is a node's configuration: the defaults, with its own folders.
func (f *fleet) config(name string) config.Config {
	cfg := config.Default()
	cfg.NodeName = name
	cfg.BrokerAddress = f.url
	cfg.DataFolder = filepath.Join(f.dir, "nodes", name)
	cfg.SocketFolder = filepath.Join(f.dir, "sock", name)
	cfg.ConfigFolder = filepath.Join(f.dir, "etc")
	cfg.QueueStorage = f.queueStorage
	return cfg
}

// start runs the central node, then opens what the simulated nodes share
// and the operator's sender.
func (f *fleet) start(ctx context.Context) error {
	central := f.config("central")
	central.DataFolder = filepath.Join(f.dir, "central")
	err := f.run(ctx, central, node.Options{OnDone: func(d node.Done) {
		switch {
		case d.Msg == nil:
		case d.Msg.Reply != nil:
			if cb := f.onReply.Load(); cb != nil {
				(*cb)(d.Msg)
			}
		case d.Msg.Method == "REQHello":
			f.hellos.Add(1)
			f.greetMu.Lock()
			f.greeted[d.Msg.FromNode] = true
			f.greetMu.Unlock()
		}
	}})
	if err != nil {
		return err
	}
	for i := range nodeLinks {
		l, err := node.Dial(f.url, fmt.Sprintf("bench nodes%d", i), "", f.log)
		if err != nil {
			return err
		}
		f.links = append(f.links, l)
		if l.Assets, err = stream.Open(ctx, l.JS); err != nil {
			return err
		}
	}
	shared := filepath.Join(f.dir, "shared")
	if f.ledger, err = ledger.Open(filepath.Join(shared, "ledger"), ledger.Options{}); err != nil {
		return err
	}
	if f.files, err = datafolder.Open(filepath.Join(shared, "data")); err != nil {
		return err
	}
	if f.audit, err = audit.Open(filepath.Join(shared, "audit.jsonl"), "bench"); err != nil {
		return err
	}

	if f.opLink, err = node.Dial(f.url, "bench operator", "", f.log); err != nil {
		return err
	}
	assets, err := stream.Open(ctx, f.opLink.JS)
	if err != nil {
		return err
	}
	if f.opAudit, err = audit.Open(central.AuditPath(), "central"); err != nil {
		return err
	}
	f.status = status.NewStore(f.opLink.JS, assets.Status)
	f.sender = sender.New(sender.Options{
		JS: f.opLink.JS, Status: f.status, Methods: methods.Default(), Node: "central", CentralNode: "central",
		Defaults: sender.Defaults{
			ACKTimeout: central.DefaultMessageTimeout, Retries: central.DefaultMessageRetries,
			DeliveryDeadline: central.DefaultDeliveryDeadline,
		},
		MaxPayload: f.opLink.NC.MaxPayload(), Audit: f.opAudit,
	})
	return nil
}

// grow starts simulated nodes until n are running.
func (f *fleet) grow(ctx context.Context, n int, progress func(int)) error {
	for f.started < n {
		i := f.started
		opts := node.Options{Link: f.links[i%len(f.links)], Ledger: f.ledger, Files: f.files, Audit: f.audit}
		if err := f.run(ctx, f.config(nodeName(i)), opts); err != nil {
			return err
		}
		f.started++
		if f.started%100 == 0 {
			progress(f.started)
		}
	}
	return nil
}

// run starts one node and waits until it consumes.
func (f *fleet) run(ctx context.Context, cfg config.Config, opts node.Options) error {
	nctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	f.mu.Lock()
	f.cancels = append(f.cancels, cancel)
	f.mu.Unlock()
	opts.Logger, opts.Ready, opts.Version = f.log, ready, "bench"
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		errc <- node.Run(nctx, cfg, opts)
	}()
	select {
	case <-ready:
		return nil
	case err := <-errc:
		return fmt.Errorf("node %s: %w", cfg.NodeName, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops every node, then closes what they shared.
func (f *fleet) close() {
	f.mu.Lock()
	for _, c := range f.cancels {
		c()
	}
	f.cancels = nil
	f.mu.Unlock()
	f.wg.Wait()
	f.started = 0
	for _, l := range append(f.links, f.opLink) {
		if l != nil {
			l.Close()
		}
	}
	f.links, f.opLink = nil, nil
	if f.ledger != nil {
		f.ledger.Close()
	}
	if f.files != nil {
		f.files.Close()
	}
	f.audit.Close()
	f.opAudit.Close()
}

// ping is the message of the load runs: a ping, whose reply the central
// node records with REQPong (a file append).
func (f *fleet) ping(to string) *message.Message {
	return &message.Message{ToNode: to, Method: "REQPing", Directory: "bench", FileName: "pong.log",
		DeliveryDeadline: &message.Deadline{After: f.deadline}}
}

// command is the message of the command runs: `bash -c 'echo hi'`, whose
// output central appends to a file (the default reply method).
func (f *fleet) command(to string) *message.Message {
	return &message.Message{ToNode: to, Method: "REQCliCommand", MethodArgs: []string{"bash", "-c", "echo hi"},
		Directory: "bench", FileName: "cli.log", DeliveryDeadline: &message.Deadline{After: f.deadline}}
}

// load sends total messages made by mk, spread round robin over the first
// nodes running nodes, window in flight, and measures from send to the
// reply handled on central. Every reply must say the method succeeded.
// Meanwhile a message goes to offlineNode every offlineEvery.
func (f *fleet) load(ctx context.Context, mk func(to string) *message.Message, nodes, total, window int, progress func(int)) (loadResult, error) {
	return f.loadUntil(ctx, mk, nodes, total, time.Time{}, window, progress)
}

// loadUntil is load that stops sending at until (unless it is zero).
func (f *fleet) loadUntil(ctx context.Context, mk func(to string) *message.Message, nodes, total int, until time.Time, window int, progress func(int)) (loadResult, error) {
	t := newTracker()
	var failed atomic.Pointer[string]
	cb := func(m *message.Message) {
		if st := m.Reply.Status; st != string(status.Succeeded) {
			why := fmt.Sprintf("message %s to %s: %s", m.ID, m.FromNode, st)
			failed.CompareAndSwap(nil, &why)
		}
		t.complete(m.ID)
	}
	f.onReply.Store(&cb)
	defer f.onReply.Store(nil)
	stop := f.sendOffline(ctx)
	res, err := driveUntil(ctx, total, until, window, t, func(ctx context.Context, i int) (string, error) {
		r := f.sender.Send(ctx, mk(nodeName(i%nodes)))
		if !r.OK() {
			return "", errors.New(r.Error)
		}
		return r.ID, nil
	}, progress)
	if serr := stop(); err == nil {
		err = serr
	}
	if why := failed.Load(); err == nil && why != nil {
		err = fmt.Errorf("a reply did not succeed: %s", *why)
	}
	return res, err
}

// sendOffline sends a message to offlineNode every offlineEvery until the
// returned function is called, which returns the first error.
func (f *fleet) sendOffline(ctx context.Context) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		t := time.NewTicker(offlineEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-t.C:
			}
			r := f.sender.Send(ctx, f.ping(offlineNode))
			if !r.OK() {
				if ctx.Err() != nil {
					done <- nil
				} else {
					done <- fmt.Errorf("send to the offline node: %s", r.Error)
				}
				return
			}
			f.offMu.Lock()
			f.offline = append(f.offline, r.ID)
			f.offMu.Unlock()
		}
	}()
	return func() error {
		cancel()
		return <-done
	}
}

// judged waits until central has judged every message sent to
// offlineNode delivery_timed_out, and returns how many there were. Their
// deadlines passed during the run; the wait covers the last few.
func (f *fleet) judged(ctx context.Context, progress func(int)) (int, error) {
	f.offMu.Lock()
	ids := f.offline
	f.offMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, f.deadline+time.Minute)
	defer cancel()
	for i, id := range ids {
		key := message.DeliveryID(id, offlineNode)
		for {
			r, _, err := f.status.Get(ctx, key)
			if err == nil && r.Status == status.DeliveryTimedOut {
				break
			}
			if err == nil && r.Status.Terminal() {
				return i, fmt.Errorf("delivery %s ended %s, not %s", key, r.Status, status.DeliveryTimedOut)
			}
			select {
			case <-ctx.Done():
				return i, fmt.Errorf("delivery %s not judged timed out (%d of %d were): %w", key, i, len(ids), ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
		progress(i + 1)
	}
	return len(ids), nil
}

// settle waits until central has handled a hello from every simulated
// node running: each says one when it starts, and a load sent while
// central still works through those of 10,000 nodes just started would
// measure their start, not their running.
func (f *fleet) settle(ctx context.Context, progress func(int)) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		n := 0
		f.greetMu.Lock()
		for i := range f.started {
			if f.greeted[nodeName(i)] {
				n++
			}
		}
		f.greetMu.Unlock()
		progress(n)
		if n == f.started {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("central had hellos from %d of %d nodes: %w", n, f.started, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fanout sends one ping to the first n nodes and waits for every reply.
func (f *fleet) fanout(ctx context.Context, n int, progress func(int)) (time.Duration, error) {
	var got atomic.Int64
	all := make(chan struct{})
	cb := func(*message.Message) {
		if got.Add(1) == int64(n) {
			close(all)
		}
	}
	f.onReply.Store(&cb)
	defer f.onReply.Store(nil)
	m := f.ping("")
	for i := range n {
		m.ToNodes = append(m.ToNodes, nodeName(i))
	}
	begin := time.Now()
	if r := f.sender.Send(ctx, m); !r.OK() {
		return 0, errors.New(r.Error)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-all:
			progress(n)
			return time.Since(begin), nil
		case <-tick.C:
			progress(int(got.Load()))
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d replies: %w", got.Load(), n, ctx.Err())
		}
	}
}
