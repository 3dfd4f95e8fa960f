// Package client is what the operator commands (send, status, nodes) use:
// a connection to the fleet's broker as the configured node, sending
// messages, waiting for their deliveries to end, and reading status and
// the node registry.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/outbox"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/signature"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
	"github.com/stewardfleet/steward/internal/target"
	"github.com/stewardfleet/steward/internal/telemetry"
)

// ErrUnreachable wraps failures to reach the broker.
var ErrUnreachable = errors.New("cannot reach the broker")

// ErrNoLayout: the broker is reachable but nobody set steward up on it.
var ErrNoLayout = errors.New("steward is not set up on the broker")

// Client is a connection to the broker for operator commands.
type Client struct {
	cfg    config.Config
	nc     *nats.Conn
	js     jetstream.JetStream
	assets *stream.Assets
	status *status.Store
	nodes  *registry.Registry
	sender *sender.Sender
	audit  *audit.Log
	signer *signature.Signer // nil without an nkey
	// tracing traces what the client sends (nil: off); ownTracing says
	// the client built it, and flushes it on Close.
	tracing    *telemetry.Tracing
	ownTracing bool
}

// Connect connects to cfg.ClientBrokerURL() as node cfg.NodeName. It only
// opens the JetStream layout: the central node (or `steward setup`)
// creates it. What it sends is traced when cfg's otlp-endpoint or the
// OTEL_* environment asks (package telemetry).
func Connect(ctx context.Context, cfg config.Config) (*Client, error) {
	return ConnectTraced(ctx, cfg, nil)
}

// ConnectTraced is Connect with the tracing tr, which its caller shuts
// down (nil: as Connect decides).
func ConnectTraced(ctx context.Context, cfg config.Config, tr *telemetry.Tracing) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	own := false
	if tr == nil {
		var err error
		if tr, err = telemetry.New(ctx, telemetry.Settings{Endpoint: cfg.OTLPEndpoint, ServiceName: cfg.NodeName}); err != nil {
			return nil, err
		}
		own = tr.On()
	}
	url := cfg.ClientBrokerURL()
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	opts, err := credentials.ClientOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.Name("steward client "+cfg.NodeName), nats.Timeout(timeout))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, url, err)
	}
	js, err := stream.NewJetStream(nc, stream.PubAckTimeout, cfg.BrokerDomain)
	if err != nil {
		nc.Close()
		return nil, err
	}
	assets, err := stream.Open(ctx, js)
	if errors.Is(err, stream.ErrNoLayout) {
		nc.Close()
		return nil, fmt.Errorf("%w at %s: start the central node %s first (it sets the broker up), or run steward setup: %w",
			ErrNoLayout, url, cfg.CentralNodeName, err)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s has no usable JetStream: %w", ErrUnreachable, url, err)
	}
	// Messages are signed with the node's key, as the node signs them.
	var signer *signature.Signer
	if cfg.NkeySeedFile != "" {
		if signer, err = signature.LoadSigner(cfg.NkeySeedFile); err != nil {
			nc.Close()
			return nil, fmt.Errorf("nkey-seed-file: %w", err)
		}
	}
	c := &Client{cfg: cfg, nc: nc, js: js, assets: assets, signer: signer,
		status: status.NewStore(js, assets.Status), nodes: registry.New(assets.Nodes), tracing: tr, ownTracing: own}
	// Messages sent from a machine where the node runs go to its audit log.
	if _, err := os.Stat(cfg.StateFolder()); err == nil {
		if c.audit, err = audit.OpenWith(cfg.AuditPath(), cfg.NodeName, auditOptions(cfg)); err != nil {
			c.audit = nil
		}
	}
	c.sender = sender.New(sender.Options{
		JS: js, Status: c.status, Methods: methods.Default(), Node: cfg.NodeName, CentralNode: cfg.CentralNodeName,
		Defaults: sender.Defaults{
			ACKTimeout: cfg.DefaultMessageTimeout, Retries: cfg.DefaultMessageRetries,
			DeliveryDeadline: cfg.DefaultDeliveryDeadline,
		},
		MaxPayload: nc.MaxPayload(), Audit: c.audit, BrokerNow: c.Now, Signer: signer, Tracing: tr,
	})
	return c, nil
}

// Close closes the connection after outstanding publishes are confirmed.
func (c *Client) Close() {
	select {
	case <-c.js.PublishAsyncComplete():
	case <-time.After(5 * time.Second):
	}
	c.nc.Close()
	c.audit.Close()
	if c.ownTracing {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.tracing.Shutdown(ctx) // best effort: the messages are sent
	}
}

// Receipt tells what became of one message of a batch.
type Receipt = sender.Receipt

// Send decodes, validates and sends a batch (JSON array or one object).
// It returns one receipt per input message; err is set only when nothing
// could be read. Target expressions ("*", label selectors) are resolved
// against the node registry, leaving out nodes not seen for
// target.DefaultExpiry.
func (c *Client) Send(ctx context.Context, input []byte) ([]Receipt, error) {
	return c.SendWith(ctx, input, SendOptions{Expiry: target.DefaultExpiry})
}

// SendOptions say how SendWith treats a batch.
type SendOptions struct {
	// Targets are added to every message's targets: node names, "*" or
	// label selectors (steward send --target).
	Targets []string
	// Expiry leaves nodes not seen for longer out of what target
	// expressions select (0: every node of the registry).
	Expiry time.Duration
	// Hold prepares the messages and sends nothing: each good receipt
	// carries its Message, for Publish and Withhold (a send in waves) or
	// for nothing (a dry run).
	Hold bool
}

// SendWith is Send with options. The registry is read once, when the
// first message with a target expression needs it.
func (c *Client) SendWith(ctx context.Context, input []byte, o SendOptions) ([]Receipt, error) {
	list := func(ctx context.Context) ([]*registry.Node, time.Time, error) {
		nodes, err := c.nodes.List(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		now, err := c.Now(ctx)
		return nodes, now, err
	}
	return c.sender.SendInputWith(ctx, input, sender.InputOptions{
		Targets: o.Targets, Resolver: target.Resolver(list, o.Expiry), Hold: o.Hold,
	})
}

// Publish sends a held message (a receipt's Message of SendOptions.Hold)
// to nodes, some of its targets, under its one ID (sender.Publish).
func (c *Client) Publish(ctx context.Context, m *message.Message, nodes []string) error {
	return c.sender.Publish(ctx, m, nodes)
}

// Withhold records that a held message is not sent to nodes, with reason
// (sender.Withhold): steward status shows them cancelled, not_sent.
func (c *Client) Withhold(ctx context.Context, m *message.Message, nodes []string, reason string) error {
	return c.sender.Withhold(ctx, m, nodes, reason)
}

// Wait blocks until every delivery of the given message IDs is done —
// terminal, and if it sent its output back, that reply handled on the
// sending node — or ctx ends. A message with no delivery recorded yet (one
// that waits in a node's outbox) is not done. It calls progress (if not nil) on each
// change. It returns the latest record of every delivery and reply, in
// the order of ids, then by node, each delivery before its reply. When
// ctx ends first it returns the records so far and ctx's error.
func (c *Client) Wait(ctx context.Context, ids []string, progress func(*status.Record)) ([]*status.Record, error) {
	return c.WaitWith(ctx, ids, WaitOptions{Progress: progress})
}

// WaitOptions say how WaitWith waits.
type WaitOptions struct {
	// Progress, if not nil, is called on each change, from the goroutine
	// that called WaitWith.
	Progress func(*status.Record)
	// More, if not nil, says whether deliveries of the messages are still
	// to be sent (a send in waves): WaitWith does not end while it says
	// so. It is asked after each call of Progress, which may send them.
	More func() bool
}

// WaitWith is Wait with options.
func (c *Client) WaitWith(ctx context.Context, ids []string, o WaitOptions) ([]*status.Record, error) {
	progress := o.Progress
	if len(ids) == 0 {
		return nil, nil
	}
	unseen := map[string]bool{} // IDs with no record yet: one in an outbox is not done
	var unique []string
	for _, id := range ids {
		if !unseen[id] {
			unseen[id] = true
			unique = append(unique, id)
		}
	}
	updates, err := c.status.Watch(ctx, unique)
	if err != nil {
		return nil, err
	}
	latest := map[string]*status.Record{}
	caughtUp := false
	done := func() bool {
		if !caughtUp || len(unseen) > 0 || o.More != nil && o.More() {
			return false
		}
		for _, r := range latest {
			if !r.Reply && !r.Done(latest[status.ReplyKey(r.Key())]) {
				return false
			}
		}
		return true
	}
	for !done() {
		r, ok := <-updates
		if !ok {
			// Cancelling ctx closes the watch too: report why it ended.
			if ctx.Err() != nil {
				return order(latest, ids), ctx.Err()
			}
			return order(latest, ids), errors.New("status watch ended")
		}
		if r == nil {
			caughtUp = true
			continue
		}
		latest[r.Key()] = r
		delete(unseen, r.ID)
		if progress != nil {
			progress(r)
		}
	}
	return order(latest, ids), nil
}

func order(latest map[string]*status.Record, ids []string) []*status.Record {
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		if _, ok := pos[id]; !ok {
			pos[id] = i
		}
	}
	out := make([]*status.Record, 0, len(latest))
	for _, r := range latest {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *status.Record) int {
		if d := pos[a.ID] - pos[b.ID]; d != 0 {
			return d
		}
		return status.Compare(a, b)
	})
	return out
}

// ErrNotFound: no deliveries are recorded for a message ID.
var ErrNotFound = errors.New("no such message")

// Status returns the records of every delivery of message id.
func (c *Client) Status(ctx context.Context, id string) ([]*status.Record, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q is not a message ID (IDs are letters and digits, as steward send prints them)", ErrNotFound, id)
	}
	recs, err := c.status.List(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: %s (status records are kept for %s after a delivery can no longer change)", ErrNotFound, id, message.StatusRetention)
	}
	return recs, nil
}

// Now returns the broker's current time, against which the registry's
// last-seen times are compared (this machine's clock may be off).
func (c *Client) Now(ctx context.Context) (time.Time, error) {
	return stream.BrokerNow(ctx, c.js, c.assets.Deadlines, c.cfg.NodeName)
}

// ErrNoOutbox: the broker cannot be reached and no node runs beside this
// command to keep the messages until it can.
var ErrNoOutbox = errors.New("no node here to keep the messages")

// Queue prepares the messages of input and puts them into the outbox of
// the node that runs beside this command (the one cfg's state folder
// belongs to), which sends them once the broker can be reached. It is what
// `steward send` does when the broker is out of reach; the receipts say
// Queued.
func Queue(ctx context.Context, cfg config.Config, input []byte) ([]Receipt, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.StateFolder()); err != nil {
		return nil, fmt.Errorf("%w (no node state in %s)", ErrNoOutbox, cfg.StateFolder())
	}
	ob, err := outbox.Open(cfg.OutboxFolder())
	if err != nil {
		return nil, err
	}
	log, err := audit.OpenWith(cfg.AuditPath(), cfg.NodeName, auditOptions(cfg))
	if err != nil {
		log = nil
	}
	defer log.Close()
	s := sender.New(sender.Options{
		Methods: methods.Default(), Node: cfg.NodeName, CentralNode: cfg.CentralNodeName,
		Defaults: sender.Defaults{
			ACKTimeout: cfg.DefaultMessageTimeout, Retries: cfg.DefaultMessageRetries,
			DeliveryDeadline: cfg.DefaultDeliveryDeadline,
		},
		Audit: log, Outbox: ob,
	})
	return s.SendInput(ctx, input)
}

// Setup creates or updates steward's streams and buckets on the broker at
// cfg.ClientBrokerURL(), with cfg.BrokerReplicas copies of each, as the
// central node does when it starts. It reports what it did to log.
func Setup(ctx context.Context, cfg config.Config, log *slog.Logger) (*stream.Assets, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	url := cfg.ClientBrokerURL()
	nc, err := nats.Connect(url, nats.Name("steward setup"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, url, err)
	}
	defer nc.Close()
	js, err := stream.NewJetStream(nc, stream.PubAckTimeout, cfg.BrokerDomain)
	if err != nil {
		return nil, err
	}
	return stream.Apply(ctx, js, stream.Layout{Replicas: cfg.BrokerReplicas, QueueStorage: cfg.QueueStorage}, log)
}

// Nodes returns the node registry.
func (c *Client) Nodes(ctx context.Context) ([]*registry.Node, error) {
	return c.nodes.List(ctx)
}

// RemoveNode removes n's registry record as Nodes returned it (see
// registry.Registry.Delete).
func (c *Client) RemoveNode(ctx context.Context, n *registry.Node) error {
	return c.nodes.Delete(ctx, n)
}

// validID reports whether id looks like a message ID (a NUID): letters and
// digits only, so it can never act as a subject wildcard.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// auditOptions are the audit log's rotation settings from cfg.
func auditOptions(cfg config.Config) audit.Options {
	return audit.Options{MaxSize: int64(cfg.AuditMaxSize) << 20, MaxAge: cfg.AuditMaxAge, Keep: cfg.AuditKeep}
}

// KeySet returns the fleet's key set as it is on the broker (an empty one,
// version 0, when central has not published any).
func (c *Client) KeySet(ctx context.Context) (*signature.KeySet, error) {
	ks, _, err := c.keySet(ctx)
	return ks, err
}

func (c *Client) keySet(ctx context.Context) (*signature.KeySet, uint64, error) {
	if c.assets.Keys == nil {
		return nil, 0, fmt.Errorf("the broker has no %s bucket: its layout is older than this steward (upgrade the central node)", stream.KeysBucket)
	}
	e, err := c.assets.Keys.Get(ctx, stream.KeySetKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &signature.KeySet{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the key set: %w", err)
	}
	var ks signature.KeySet
	if err := json.Unmarshal(e.Value(), &ks); err != nil {
		return nil, 0, fmt.Errorf("the key set on the broker does not decode: %w", err)
	}
	return &ks, e.Revision(), nil
}

// ChangeKeySet applies change to the fleet's key set and publishes it as
// the next version, signed with this client's key, which must be the
// central node's: nodes take only key sets central signed. Concurrent
// changes do not overwrite each other (compare-and-set, then again).
func (c *Client) ChangeKeySet(ctx context.Context, change func(*signature.KeySet) error) (*signature.KeySet, error) {
	if c.cfg.NodeName != c.cfg.CentralNodeName || c.signer == nil {
		return nil, fmt.Errorf("key sets are signed with the central node's key: run this as node %s with its nkey-seed-file", c.cfg.CentralNodeName)
	}
	for {
		ks, rev, err := c.keySet(ctx)
		if err != nil {
			return nil, err
		}
		if err := change(ks); err != nil {
			return nil, err
		}
		if err := c.signer.SignKeySet(ks, time.Now()); err != nil {
			return nil, err
		}
		b, err := json.Marshal(ks)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			_, err = c.assets.Keys.Create(ctx, stream.KeySetKey, b)
		} else {
			_, err = c.assets.Keys.Update(ctx, stream.KeySetKey, b, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
			continue // changed meanwhile: change the newer one
		}
		if err != nil {
			return nil, fmt.Errorf("publish the key set: %w", err)
		}
		return ks, nil
	}
}

// isWrongLastSequence reports a compare-and-set that lost.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
