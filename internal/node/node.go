// Package node runs one steward node: its connection to the broker (or its
// embedded broker), its durable consumer, the methods it runs, the replies
// and error reports it sends, its hellos and its unix socket.
//
// Delivery guarantees (see docs/architecture.md):
//   - A delivery never runs twice at once: a redelivery of a delivery that
//     is still in the node's hands (a link cut longer than AckWait) is
//     adopted by the running one, whose lease it renews.
//   - A delivery never runs again after it completed, and never runs after
//     the node refused it, whatever the broker's delivery count says: the
//     ledger records both before anything leaves the node.
//   - A run is rerun only after the node that ran it died (its processes
//     died with it), at most retries times, counted in the ledger.
//   - A tracked delivery runs only after the node claimed it before its
//     delivery deadline, as the broker's clock decides (package deadline).
//   - A message is acknowledged only after its outcome is in the ledger and
//     its reply, terminal status and error report are stored by the broker;
//     every wait for the broker is bounded.
//   - The node's consumer is created again within seconds if the broker
//     loses it, from where the node had got to, and the node says so in
//     its log, to central's error log and in the registry.
//   - Every processed message is written to the audit log.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/ledger"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/metrics"
	"github.com/stewardfleet/steward/internal/outbox"
	"github.com/stewardfleet/steward/internal/policy"
	"github.com/stewardfleet/steward/internal/procs"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/signature"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
	"github.com/stewardfleet/steward/internal/telemetry"
)

// Options are the node's collaborators that do not come from config.
type Options struct {
	Logger  *slog.Logger
	Stdout  io.Writer // where REQToConsole prints; os.Stdout when nil
	Version string
	// Now is the node's clock (time.Now when nil). Nothing that decides a
	// delivery's fate reads it; tests skew it to prove that.
	Now func() time.Time
	// Ready, if not nil, is closed once the node consumes its queue.
	Ready chan<- struct{}
	// Opened, if not nil, is called once the node has taken its settings:
	// its broker started or connected, its keys and folders opened; before
	// it listens for input or takes messages.
	Opened func()
	// OnDone, if not nil, is called after each delivery this node took to
	// its end (acknowledged or terminated). It must not block.
	OnDone func(Done)
	// Tracing, if not nil, traces the messages the node sends and the
	// traced deliveries it takes (package telemetry); its caller shuts
	// it down after the node stopped.
	Tracing *telemetry.Tracing

	// Resources a caller may share between several nodes in one process.
	// The node uses each one given instead of opening its own from cfg,
	// and leaves it open when it stops; it opens and closes what it is not
	// given. It does the same work either way.

	// Link is the connection to the broker (no embedded broker is started).
	Link *Link
	// Ledger records the node's deliveries (its keys carry the node's
	// name, so nodes can share one).
	Ledger *ledger.Ledger
	// Files is the data folder the node's methods work in. The node's own
	// state (instance, queue floor, outbox, run records, reply chunks)
	// stays in cfg's state folder.
	Files *datafolder.Folder
	// Audit is the audit log; the node's lines carry its name (Audit.For).
	Audit *audit.Log
}

// Done describes a delivery a node finished.
type Done struct {
	// Key is the delivery's ledger key: "<id>.<node>" for requests,
	// "<id>.<node>.reply.<chunk>" for replies.
	Key    string
	Msg    *message.Message
	Status string
	// Attempts is how many times the broker had delivered the message.
	Attempts uint64
}

// Node is a running node.
type Node struct {
	cfg      config.Config
	log      *slog.Logger
	version  string
	now      func() time.Time
	started  time.Time
	instance string
	signer   *signature.Signer  // nil: the node signs nothing
	keys     *signature.Keyring // nil: the node checks no signatures
	policy   *policy.Policy     // nil: every request is allowed
	procs    *procs.Table       // which methods it serves, for whom; what runs
	tracing  *telemetry.Tracing // nil: tracing off
	helloNow chan struct{}      // helloSoon asks helloLoop for a hello
	// httpTLS is the HTTP API's and the console's TLS configuration (nil:
	// plain HTTP), read once for both.
	httpTLS func() (*tls.Config, error)

	srv    *server.Server     // embedded broker, if any
	sup    *broker.Supervisor // restarts its JetStream after a full disk
	link   *Link
	nc     *nats.Conn
	js     jetstream.JetStream
	assets *stream.Assets

	status   *status.Store
	methods  *methods.Registry
	env      *methods.Env
	ledger   *ledger.Ledger
	audit    *audit.Log
	outbox   *outbox.Outbox
	runs     string        // absolute folder of run records
	forward  chan struct{} // wakes the forwarder
	sender   *sender.Sender
	files    *datafolder.Folder
	chunks   *chunkStore
	streamMu sync.Mutex // streamed replies are applied one at a time
	slots    chan struct{}
	inflight inflight
	queue    atomic.Pointer[queue]
	dues     atomic.Pointer[dueQueue] // central only
	onDone   func(Done)
	metrics  *metrics.Metrics // nil: the node serves no metrics
	owns     owned            // what the node opened, and closes
}

// owned says which of its resources the node opened itself (the others
// are its caller's, see Options).
type owned struct {
	link, ledger, files, audit, tracing bool
}

// Run runs a node until ctx ends, then shuts it down in order. It opens
// what opts does not give it (see Options) and closes that when it stops.
func Run(ctx context.Context, cfg config.Config, opts Options) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	n := newNode(cfg, opts)
	defer n.close()
	if err := n.open(ctx, opts); err != nil {
		return err
	}
	if opts.Opened != nil {
		opts.Opened()
	}
	return n.run(ctx, opts)
}

func newNode(cfg config.Config, opts Options) *Node {
	n := &Node{cfg: cfg, log: opts.Logger, version: opts.Version, now: opts.Now, onDone: opts.OnDone, tracing: opts.Tracing,
		helloNow: make(chan struct{}, 1)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.started = n.now().UTC()
	n.log = n.log.With("node", cfg.NodeName)
	return n
}

// open sets up local state, the broker connection and the JetStream
// assets, from opts where it gives them and from cfg otherwise.
func (n *Node) open(ctx context.Context, opts Options) error {
	var err error
	// The node signs what it sends with its nkey, and runs only what keys
	// it trusts signed (package signature).
	if n.cfg.NkeySeedFile != "" {
		if n.signer, err = signature.LoadSigner(n.cfg.NkeySeedFile); err != nil {
			return fmt.Errorf("nkey-seed-file: %w", err)
		}
	}
	if n.cfg.TrustedKeys != "" {
		if err := n.loadKeys(); err != nil {
			return err
		}
	}
	if n.cfg.PolicyFile != "" {
		if n.policy, err = policy.Load(n.cfg.PolicyFile); err != nil {
			return err
		}
	}
	if n.tracing == nil {
		// Off (nil) unless otlp-endpoint or the OTEL_* environment asks.
		if n.tracing, err = telemetry.New(ctx, telemetry.Settings{Endpoint: n.cfg.OTLPEndpoint, ServiceName: n.cfg.NodeName}); err != nil {
			return err
		}
		n.owns.tracing = n.tracing.On()
	}
	if n.files = opts.Files; n.files == nil {
		if n.files, err = datafolder.Open(n.cfg.DataFolder); err != nil {
			return err
		}
		n.owns.files = true
	}
	state := n.cfg.StateFolder()
	if n.instance, err = loadInstance(state); err != nil {
		return err
	}
	if n.ledger = opts.Ledger; n.ledger == nil {
		if n.ledger, err = ledger.Open(filepath.Join(state, "ledger"), ledger.Options{}); err != nil {
			return err
		}
		n.owns.ledger = true
	}
	if n.audit = opts.Audit.For(n.cfg.NodeName); n.audit == nil {
		if n.audit, err = audit.OpenWith(n.cfg.AuditPath(), n.cfg.NodeName, auditOptions(n.cfg)); err != nil {
			return err
		}
		n.owns.audit = true
	}
	if n.outbox, err = outbox.Open(n.cfg.OutboxFolder()); err != nil {
		return err
	}

	if n.link = opts.Link; n.link == nil {
		if err := n.connect(); err != nil {
			return err
		}
		n.owns.link = true
	}
	n.nc, n.js = n.link.NC, n.link.JS
	n.link.attach(n)
	if !n.nc.IsConnected() {
		n.log.Warn("broker not reachable yet; retrying in the background", "url", n.nc.Opts.Url)
	}
	if n.assets = n.link.Assets; n.assets == nil {
		if err := retry(ctx, n.log, "open the broker's steward layout", func() (err error) {
			n.assets, err = n.layout(ctx)
			return err
		}); err != nil {
			return err
		}
	}
	n.setup(opts)
	if n.procs, err = n.newProcs(); err != nil {
		return err
	}
	n.env.Procs = procTable{n}
	n.refreshKeysOrWarn(ctx)
	return n.checkInstance(ctx)
}

// layout opens the JetStream assets. The central node creates or updates
// them; every other node only opens them, and waits for central if they
// are not there yet.
func (n *Node) layout(ctx context.Context) (*stream.Assets, error) {
	if n.isCentral() {
		return stream.Apply(ctx, n.js, stream.Layout{Replicas: n.cfg.BrokerReplicas, QueueStorage: n.cfg.QueueStorage}, n.log)
	}
	a, err := stream.Open(ctx, n.js)
	if errors.Is(err, stream.ErrNoLayout) {
		return nil, fmt.Errorf("%w (waiting for central node %s to set it up)", err, n.cfg.CentralNodeName)
	}
	return a, err
}

// setup builds what a node needs on top of its connection, assets, ledger
// and data folder.
func (n *Node) setup(opts Options) {
	// Where commands keep a record of their runs (see runRecord); a folder
	// that cannot be made only costs the runs their record.
	n.runs, _ = filepath.Abs(filepath.Join(n.cfg.StateFolder(), "runs"))
	_ = os.MkdirAll(n.runs, 0o700)
	n.chunks = &chunkStore{dir: filepath.Join(n.cfg.StateFolder(), "chunks")}
	n.httpTLS = sync.OnceValues(func() (*tls.Config, error) {
		return credentials.HTTPServerTLS(n.cfg.HTTPTLSCert, n.cfg.HTTPTLSKey)
	})
	n.methods = methods.Default()
	n.slots = make(chan struct{}, n.cfg.Concurrency)
	n.inflight = inflight{m: map[string]*delivery{}}
	n.forward = make(chan struct{}, 1)
	n.status = status.NewStore(n.js, n.assets.Status)
	n.sender = sender.New(sender.Options{
		JS: n.js, Status: n.status, Methods: n.methods, Node: n.cfg.NodeName, CentralNode: n.cfg.CentralNodeName,
		Defaults: sender.Defaults{
			ACKTimeout: n.cfg.DefaultMessageTimeout, Retries: n.cfg.DefaultMessageRetries,
			DeliveryDeadline: n.cfg.DefaultDeliveryDeadline,
		},
		MaxPayload: n.nc.MaxPayload(), Audit: n.audit, Now: n.now,
		Outbox: n.outbox, Connected: n.nc.IsConnected, Signer: n.signer, Tracing: n.tracing,
		BrokerNow: func(ctx context.Context) (time.Time, error) {
			return stream.BrokerNow(ctx, n.js, n.assets.Deadlines, n.cfg.NodeName)
		},
	})
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	n.env = &methods.Env{
		NodeName: n.cfg.NodeName, CentralNodeName: n.cfg.CentralNodeName, Version: n.version,
		Files: n.files, Stdout: &lockedWriter{w: stdout}, Now: n.now, RefreshKeys: n.refreshKeys,
	}
	if n.isCentral() {
		n.env.Nodes = registry.New(n.assets.Nodes)
	}
	n.setupMetrics(opts.OnDone)
}

func (n *Node) isCentral() bool { return n.cfg.NodeName == n.cfg.CentralNodeName }

// connect starts the embedded broker when no broker address is set, and
// dials the node's own link to the broker (see Dial).
func (n *Node) connect() error {
	opts, err := credentials.ClientOptions(n.cfg)
	if err != nil {
		return err
	}
	url := n.cfg.BrokerAddress
	if url == "" {
		bo := broker.Options{
			Listen: n.cfg.BrokerListen, StoreDir: filepath.Join(n.cfg.StateFolder(), "jetstream"),
			Name: n.cfg.NodeName, Logger: n.log, Insecure: n.cfg.Insecure,
		}
		if bo.TLS, err = credentials.ServerTLS(n.cfg.BrokerTLSCert, n.cfg.BrokerTLSKey, n.cfg.BrokerTLSClientCA); err != nil {
			return err
		}
		if n.cfg.BrokerAuthorization != "" {
			if bo.Users, err = credentials.LoadAuthorization(n.cfg.BrokerAuthorization); err != nil {
				return err
			}
		}
		srv, err := broker.Start(bo)
		if err != nil {
			return err
		}
		n.srv = srv
		n.log.Info("embedded broker listening", "url", srv.ClientURL())
		if n.sup, err = broker.NewSupervisor(srv, broker.SuperviseOptions{
			Logger: n.log.With("component", "broker"), OnChange: n.brokerChanged,
		}); err != nil {
			return err
		}
		opts = append(opts, nats.InProcessServer(srv))
		url = srv.ClientURL()
	}
	link, err := Dial(url, "steward "+n.cfg.NodeName, n.cfg.BrokerDomain, n.log, opts...)
	if err != nil {
		return err
	}
	n.link = link
	return nil
}

// brokerChanged runs when the embedded broker's JetStream goes down (a
// full disk) or comes back. A JetStream that restarted dropped the
// consumers' waiting pulls: they pull anew at once.
func (n *Node) brokerChanged(st broker.Status) {
	if !st.Up {
		return // the supervisor logged why
	}
	if q := n.queue.Load(); q != nil {
		q.c.Refresh()
	}
	if q := n.dues.Load(); q != nil {
		q.c.Refresh()
	}
	n.wakeForwarder()
}

// reconnected runs after every reconnect: the broker may have lost the
// node's consumer while the link was down (a broker restarted on an empty
// store), so the queue checks at once.
func (n *Node) reconnected() {
	if q := n.queue.Load(); q != nil {
		q.check()
		// Keys may have been revoked while the link was down.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n.refreshKeysOrWarn(ctx)
		}()
		// A hello is a fact about now: say it as soon as the link is back.
		go func() {
			if n.cfg.HelloInterval <= 0 {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n.sayHello(ctx)
		}()
	}
	if q := n.dues.Load(); q != nil {
		q.c.Check()
	}
	n.wakeForwarder()
}

func (n *Node) run(ctx context.Context, opts Options) error {
	q := n.newQueue()
	var dues *dueQueue
	if n.isCentral() {
		dues = n.newDueQueue()
	}
	obs, err := n.listenObservers()
	if err != nil {
		return err
	}
	defer obs.close()
	sock, api, err := n.listenInputs()
	if err != nil {
		return err
	}
	con, closeConsole, err := n.openConsole(ctx)
	if err != nil {
		sock.Close()
		if api != nil {
			api.Close()
		}
		return err
	}
	defer closeConsole()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 16) // one per part at most
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
	goRun("queue", q.run)
	if n.sup != nil {
		goRun("broker", n.sup.Run)
	}
	if dues != nil {
		goRun("deadlines", dues.run)
	}
	goRun("socket", sock.Serve)
	if api != nil {
		goRun("http-api", api.Serve)
	}
	if con != nil {
		goRun("console", con.Serve)
	}
	goRun("hello", n.helloLoop)
	goRun("chunks", n.sweepChunks)
	goRun("outbox", n.forwardLoop)
	goRun("procs", n.publishProcs)
	obs.run(goRun)
	n.log.Info("node running", "central", n.cfg.CentralNodeName, "data", n.files.Dir(),
		"socket", n.cfg.SocketPath(), "methods", len(n.methods.Names()), "instance", n.instance)
	if opts.Ready != nil {
		close(opts.Ready)
	}
	<-runCtx.Done()
	wg.Wait()
	n.sayGoodbye()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// close shuts down what open started, in order: keep the queue's ack
// floor, flush publishes and drain the connection, stop the embedded
// broker, close local files. It closes only what the node opened.
func (n *Node) close() {
	if q := n.queue.Load(); q != nil {
		q.saveFloor()
	}
	if q := n.dues.Load(); q != nil {
		q.saveFloor()
	}
	if n.link != nil {
		n.link.detach(n)
		if n.owns.link {
			n.link.Close()
		}
	}
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
	if n.ledger != nil && n.owns.ledger {
		n.ledger.Close()
	}
	if n.audit != nil && n.owns.audit {
		n.audit.Close()
	}
	if n.files != nil && n.owns.files {
		n.files.Close()
	}
	if n.owns.tracing {
		// Last: the spans of the shutdown are exported too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.tracing.Shutdown(ctx); err != nil {
			n.log.Warn("traces not all exported", "error", err)
		}
		cancel()
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

// auditOptions are the audit log's rotation settings from cfg.
func auditOptions(cfg config.Config) audit.Options {
	return audit.Options{MaxSize: int64(cfg.AuditMaxSize) << 20, MaxAge: cfg.AuditMaxAge, Keep: cfg.AuditKeep}
}
