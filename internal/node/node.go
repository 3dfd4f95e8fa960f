// Package node runs one steward node: its connection to the broker (or its
// embedded broker), its durable consumer, the methods it runs, the replies
// and error reports it sends, its hellos and its unix socket.
//
// Delivery guarantees (see docs/architecture.md):
//   - A message is acknowledged only after its outcome is in the node's
//     ledger and its reply and terminal status are stored by the broker.
//   - A message whose method completed is never run again; one whose method
//     was interrupted (crash, stop) runs again when it is redelivered.
//   - Every processed message is written to the audit log.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/socket"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// Options are the node's collaborators that do not come from config.
type Options struct {
	Logger  *slog.Logger
	Stdout  io.Writer // where REQToConsole prints; os.Stdout when nil
	Version string
	// Ready, if not nil, is closed once the node consumes its queue.
	Ready chan<- struct{}
	// OnDone, if not nil, is called after each delivery this node took to
	// its end (acknowledged or terminated). It must not block.
	OnDone func(Done)
}

// Done describes a delivery a node finished.
type Done struct {
	// Key is the delivery's ledger key: "<id>.<node>" for requests,
	// "<id>.<node>.reply.<chunk>" for replies.
	Key    string
	Msg    *message.Message
	Status string
}

// Shared holds what several in-process nodes can share. Run opens its own;
// RunShared runs a node on these, without an embedded broker, socket or
// audit log, and leaves them open when it stops. Benchmarks and
// simulations use it to run many nodes in one process on the real code
// path.
type Shared struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Assets *stream.Assets
	Files  *datafolder.Folder
	Ledger *ledger.Ledger
}

// Node is a running node.
type Node struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	started time.Time

	srv    *server.Server // embedded broker, if any
	nc     *nats.Conn
	js     jetstream.JetStream
	assets *stream.Assets

	status  *status.Store
	methods *methods.Registry
	env     *methods.Env
	ledger  *ledger.Ledger
	audit   *audit.Log
	sender  *sender.Sender
	files   *datafolder.Folder
	chunks  *chunkStore
	slots   chan struct{}
	onDone  func(Done)
	shared  bool // resources belong to the caller (RunShared)
}

// Run runs a node until ctx ends, then shuts it down in order.
func Run(ctx context.Context, cfg config.Config, opts Options) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	n := newNode(cfg, opts)
	defer n.close()
	if err := n.open(ctx, opts); err != nil {
		return err
	}
	return n.run(ctx, opts)
}

// RunShared runs a node on shared resources until ctx ends.
func RunShared(ctx context.Context, cfg config.Config, sh *Shared, opts Options) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	n := newNode(cfg, opts)
	n.shared = true
	n.nc, n.js, n.assets, n.files, n.ledger = sh.NC, sh.JS, sh.Assets, sh.Files, sh.Ledger
	n.setup(opts)
	return n.run(ctx, opts)
}

func newNode(cfg config.Config, opts Options) *Node {
	n := &Node{cfg: cfg, log: opts.Logger, version: opts.Version, started: time.Now().UTC(), onDone: opts.OnDone}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("node", cfg.NodeName)
	return n
}

// open sets up local state, the broker connection and the JetStream assets.
func (n *Node) open(ctx context.Context, opts Options) error {
	var err error
	if n.files, err = datafolder.Open(n.cfg.DataFolder); err != nil {
		return err
	}
	state := n.cfg.StateFolder()
	if n.ledger, err = ledger.Open(filepath.Join(state, "ledger.jsonl"), ledger.Options{}); err != nil {
		return err
	}
	if n.audit, err = audit.Open(filepath.Join(state, "audit.jsonl"), n.cfg.NodeName); err != nil {
		return err
	}
	if err := n.connect(); err != nil {
		return err
	}
	if err := retry(ctx, n.log, "set up JetStream", func() error {
		n.assets, err = stream.Ensure(ctx, n.js, stream.DefaultLayout())
		return err
	}); err != nil {
		return err
	}
	n.setup(opts)
	return nil
}

// setup builds what a node needs on top of its connection, assets, ledger
// and data folder.
func (n *Node) setup(opts Options) {
	n.chunks = &chunkStore{dir: filepath.Join(n.cfg.StateFolder(), "chunks")}
	n.methods = methods.Default()
	n.slots = make(chan struct{}, n.cfg.Concurrency)
	n.status = status.NewStore(n.js, n.assets.Status)
	n.sender = sender.New(sender.Options{
		JS: n.js, Status: n.status, Methods: n.methods, Node: n.cfg.NodeName, CentralNode: n.cfg.CentralNodeName,
		Defaults: sender.Defaults{
			ACKTimeout: n.cfg.DefaultMessageTimeout, Retries: n.cfg.DefaultMessageRetries,
			DeliveryDeadline: n.cfg.DefaultDeliveryDeadline,
		},
		MaxPayload: n.nc.MaxPayload(), Audit: n.audit,
	})
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	n.env = &methods.Env{
		NodeName: n.cfg.NodeName, CentralNodeName: n.cfg.CentralNodeName, Version: n.version,
		Files: n.files, Stdout: &lockedWriter{w: stdout},
	}
	if n.isCentral() {
		n.env.Nodes = registry.New(n.assets.Nodes)
		n.env.Status = n.status
	}
}

func (n *Node) isCentral() bool { return n.cfg.NodeName == n.cfg.CentralNodeName }

// connect starts the embedded broker when no broker address is set, and
// connects to the broker, reconnecting forever.
func (n *Node) connect() error {
	opts := []nats.Option{
		nats.Name("steward " + n.cfg.NodeName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("disconnected from broker", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { n.log.Info("reconnected to broker", "url", c.ConnectedUrlRedacted()) }),
	}
	url := n.cfg.BrokerAddress
	if url == "" {
		srv, err := broker.Start(broker.Options{
			Listen: n.cfg.BrokerListen, StoreDir: filepath.Join(n.cfg.StateFolder(), "jetstream"),
			Name: n.cfg.NodeName, Logger: n.log,
		})
		if err != nil {
			return err
		}
		n.srv = srv
		n.log.Info("embedded broker listening", "url", srv.ClientURL())
		opts = append(opts, nats.InProcessServer(srv))
		url = srv.ClientURL()
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to broker %s: %w", url, err)
	}
	n.nc = nc
	if n.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if !nc.IsConnected() {
		n.log.Warn("broker not reachable yet; retrying in the background", "url", url)
	}
	return nil
}

func (n *Node) run(ctx context.Context, opts Options) error {
	queue := func() (*consumer.Consumer, error) {
		return n.ensureConsumer(ctx, n.assets.Messages,
			stream.ConsumerConfig(n.cfg.NodeName, n.cfg.DefaultMessageTimeout, max(1000, 4*n.cfg.Concurrency)))
	}
	cons, err := queue()
	if err != nil {
		return err
	}
	var deadlines func() (*consumer.Consumer, error)
	var dcons *consumer.Consumer
	if n.isCentral() {
		deadlines = func() (*consumer.Consumer, error) {
			return n.ensureConsumer(ctx, n.assets.Deadlines, stream.DeadlineConsumerConfig(n.cfg.NodeName, n.cfg.DefaultMessageTimeout))
		}
		if dcons, err = deadlines(); err != nil {
			return err
		}
	}
	var sock *socket.Server
	if !n.shared {
		if sock, err = socket.Listen(n.cfg.SocketPath(), n.socketInput, n.log.With("component", "socket")); err != nil {
			return err
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				stop()
			}
		}()
	}
	goRun("consumer", func(ctx context.Context) error { return n.consume(ctx, cons, queue) })
	if dcons != nil {
		goRun("deadlines", func(ctx context.Context) error { return n.consume(ctx, dcons, deadlines) })
	}
	if sock != nil {
		goRun("socket", sock.Serve)
	}
	goRun("hello", n.helloLoop)
	n.log.Info("node running", "central", n.cfg.CentralNodeName, "data", n.files.Dir(),
		"socket", n.cfg.SocketPath(), "methods", len(n.methods.Names()))
	if opts.Ready != nil {
		close(opts.Ready)
	}
	<-runCtx.Done()
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// ensureConsumer creates (or updates) a durable consumer of the node on s,
// retrying until the broker answers.
func (n *Node) ensureConsumer(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig) (*consumer.Consumer, error) {
	var c jetstream.Consumer
	if err := retry(ctx, n.log, "create consumer "+cfg.Durable+" on "+s.CachedInfo().Config.Name, func() (err error) {
		c, err = stream.EnsureConsumer(ctx, s, cfg)
		return err
	}); err != nil {
		return nil, err
	}
	return consumer.New(c, n.handle, consumer.Options{AckWait: cfg.AckWait, Logger: n.log.With("component", "consumer")}), nil
}

// consume runs a consumer until ctx ends. If the broker loses the consumer
// (an operator deleted it, a store was reset), recreate makes it again: a
// node never silently stops taking its messages.
func (n *Node) consume(ctx context.Context, cons *consumer.Consumer, recreate func() (*consumer.Consumer, error)) error {
	for {
		err := cons.Run(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, consumer.ErrLost) {
			return err
		}
		n.log.Warn("a consumer of the node is gone from the broker; creating it again", "error", err)
		if cons, err = recreate(); err != nil {
			return err
		}
	}
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// close shuts down what open started, in order: flush publishes, drain
// the connection, stop the embedded broker, close local files.
func (n *Node) close() {
	if n.shared {
		return
	}
	if n.js != nil {
		select {
		case <-n.js.PublishAsyncComplete():
		case <-time.After(5 * time.Second):
			n.log.Warn("stopping with publishes not yet confirmed by the broker")
		}
	}
	if n.nc != nil {
		if err := n.nc.Drain(); err != nil {
			n.nc.Close()
		}
		for i := 0; i < 100 && !n.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
	if n.ledger != nil {
		n.ledger.Close()
	}
	if n.audit != nil {
		n.audit.Close()
	}
	if n.files != nil {
		n.files.Close()
	}
	n.log.Info("node stopped")
}

// retry runs f until it succeeds or ctx ends, backing off up to 10s.
func retry(ctx context.Context, log *slog.Logger, what string, f func() error) error {
	backoff := 250 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		log.Warn("retrying", "what", what, "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// lockedWriter serialises writes from concurrent methods.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
