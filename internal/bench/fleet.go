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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// fleet is a set of in-process nodes on the real node code path
// (node.RunShared): durable consumer, ledger, status records, method,
// reply, reply method. The central node, which sends and receives the
// replies, has its own connection, ledger and data folder; the other nodes
// share a few connections, one ledger and one data folder, so that 10,000
// of them fit in one process.
type fleet struct {
	url    string
	dir    string
	log    *slog.Logger
	conns  []*nats.Conn
	shared []*node.Shared

	central *node.Shared
	sender  *sender.Sender

	mu      sync.Mutex
	cancels []context.CancelFunc
	wg      sync.WaitGroup
	started int

	// onReply is called for every reply the central node finished.
	onReply atomic.Pointer[func(*message.Message)]
}

const nodeConns = 8

func newFleet(ctx context.Context, url, dir string, log *slog.Logger) (*fleet, error) {
	f := &fleet{url: url, dir: dir, log: log}
	var err error
	if f.central, err = f.open(ctx, "central"); err != nil {
		return nil, err
	}
	for i := range nodeConns {
		sh, err := f.open(ctx, fmt.Sprintf("nodes%d", i))
		if err != nil {
			f.close()
			return nil, err
		}
		if i > 0 {
			// One ledger and data folder for all simulated nodes.
			sh.Ledger, sh.Files = f.shared[0].Ledger, f.shared[0].Files
		}
		f.shared = append(f.shared, sh)
	}
	st := status.NewStore(f.central.JS, f.central.Assets.Status)
	f.sender = sender.New(sender.Options{
		JS: f.central.JS, Status: st, Methods: methods.Default(), Node: "central", CentralNode: "central",
		Defaults:   sender.Defaults{ACKTimeout: 30 * time.Second, Retries: 3, DeliveryDeadline: time.Hour},
		MaxPayload: f.central.NC.MaxPayload(),
	})
	return f, nil
}

// open makes one connection with its JetStream assets, ledger and folder.
func (f *fleet) open(ctx context.Context, name string) (*node.Shared, error) {
	nc, err := nats.Connect(f.url, nats.Name("bench "+name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	f.conns = append(f.conns, nc)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return nil, err
	}
	assets, err := stream.Apply(ctx, js, stream.DefaultLayout(), nil)
	if err != nil {
		return nil, err
	}
	sh := &node.Shared{NC: nc, JS: js, Assets: assets}
	if name == "central" || name == "nodes0" {
		if sh.Files, err = datafolder.Open(filepath.Join(f.dir, name, "data")); err != nil {
			return nil, err
		}
		if sh.Ledger, err = ledger.Open(filepath.Join(f.dir, name, "ledger"), ledger.Options{}); err != nil {
			return nil, err
		}
	}
	return sh, nil
}

func nodeName(i int) string { return fmt.Sprintf("n%05d", i) }

func (f *fleet) config(name string) config.Config {
	cfg := config.Default()
	cfg.NodeName = name
	cfg.BrokerAddress = f.url
	cfg.DataFolder = filepath.Join(f.dir, "nodes0", "data")
	if name == "central" {
		cfg.DataFolder = filepath.Join(f.dir, "central", "data")
	}
	cfg.SocketFolder = filepath.Join(f.dir, "sock")
	cfg.HelloInterval = 0
	cfg.DefaultMessageTimeout = 30 * time.Second
	return cfg
}

// startCentral runs the central node.
func (f *fleet) startCentral(ctx context.Context) error {
	return f.run(ctx, "central", f.central, func(d node.Done) {
		if d.Msg != nil && d.Msg.Reply != nil {
			if cb := f.onReply.Load(); cb != nil {
				(*cb)(d.Msg)
			}
		}
	})
}

// grow starts simulated nodes until n are running.
func (f *fleet) grow(ctx context.Context, n int, progress func(int)) error {
	for f.started < n {
		i := f.started
		if err := f.run(ctx, nodeName(i), f.shared[i%len(f.shared)], nil); err != nil {
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
func (f *fleet) run(ctx context.Context, name string, sh *node.Shared, onDone func(node.Done)) error {
	nctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	f.mu.Lock()
	f.cancels = append(f.cancels, cancel)
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		errc <- node.RunShared(nctx, f.config(name), sh, node.Options{Logger: f.log, Ready: ready, OnDone: onDone, Version: "bench"})
	}()
	select {
	case <-ready:
		return nil
	case err := <-errc:
		return fmt.Errorf("node %s: %w", name, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopNodes stops every node.
func (f *fleet) stopNodes() {
	f.mu.Lock()
	for _, c := range f.cancels {
		c()
	}
	f.cancels = nil
	f.mu.Unlock()
	f.wg.Wait()
	f.started = 0
}

func (f *fleet) close() {
	f.stopNodes()
	for _, nc := range f.conns {
		nc.Close()
	}
	for _, sh := range append([]*node.Shared{f.central}, f.shared...) {
		if sh != nil && sh.Ledger != nil {
			sh.Ledger.Close()
		}
		if sh != nil && sh.Files != nil {
			sh.Files.Close()
		}
	}
}

// request is the message every load sends: a ping, whose reply the
// central node records with REQPong (a file append).
func request(to string) *message.Message {
	return &message.Message{ToNode: to, Method: "REQPing", Directory: "bench", FileName: "pong.log"}
}

// load sends total pings spread over the first nodes running nodes, window
// in flight, and measures from send to the reply handled on central.
func (f *fleet) load(ctx context.Context, nodes, total, window int, progress func(int)) (loadResult, error) {
	t := newTracker()
	cb := func(m *message.Message) { t.complete(m.ID) }
	f.onReply.Store(&cb)
	defer f.onReply.Store(nil)
	return drive(ctx, total, window, t, func(ctx context.Context, i int) (string, error) {
		r := f.sender.Send(ctx, request(nodeName(i%nodes)))
		if !r.OK() {
			return "", errors.New(r.Error)
		}
		return r.ID, nil
	}, progress)
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
	m := request("")
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

func (f *fleet) statusStore() *status.Store {
	return status.NewStore(f.central.JS, f.central.Assets.Status)
}
