// Package stream owns steward's JetStream layout: the names of streams,
// subjects, consumers and KV buckets, and creating them idempotently.
//
// Layout (see docs/architecture.md for the measurements behind it):
//
//   - One stream, STEWARD_MESSAGES, with Limits retention, holds every
//     message to every node on subjects steward.msg.<node> (the method is in
//     the message). Acks on a Limits stream scan no other consumers, so
//     throughput holds at 10,000 nodes. Messages leave the stream by their
//     per-message TTL (Nats-TTL), set from each message's delivery deadline
//     and method timeout.
//   - One durable pull consumer per node, named after the node, filtered on
//     the literal subject steward.msg.<node>: the store finds a literal
//     subject's next message through its subject index, where a wildcard
//     filter would scan message blocks (slow with 10,000 node subjects). It
//     never has an InactiveThreshold, so a node that is offline for months
//     keeps its queue.
//   - Delivery deadlines are JetStream message schedules in their own
//     stream, STEWARD_DEADLINES: on steward.deadline.at.<message id>, firing
//     into steward.deadline.due.<central>, which the central node consumes.
//     They are apart because a schedule is a subject rollup, and a rollup in
//     a stream walks every consumer of that stream.
//   - KV bucket steward_status holds one record per delivery; steward_nodes
//     holds the node registry.
//
// Every name here is a valid subject token, consumer name and KV key, and
// reads well in `nats stream ls`, `nats consumer ls` and `nats kv ls`.
package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream assets.
const (
	MessagesStream  = "STEWARD_MESSAGES"
	DeadlinesStream = "STEWARD_DEADLINES"
	StatusBucket    = "steward_status"
	NodesBucket     = "steward_nodes"

	msgPrefix         = "steward.msg."
	deadlineAtPrefix  = "steward.deadline.at."
	deadlineDuePrefix = "steward.deadline.due."
	defaultMaxNodes   = 1_000_000

	// StatusHistory is how many states of a delivery the status bucket keeps.
	StatusHistory = 10
)

// MessageSubject is where messages for node are published; it is also the
// filter of node's consumer.
func MessageSubject(node string) string { return msgPrefix + node }

// DeadlineSubject is the schedule subject for the delivery deadline of a
// message (all its deliveries). One schedule per subject: publishing again
// replaces it.
func DeadlineSubject(id string) string { return deadlineAtPrefix + id }

// DeadlineDueSubject is where deadline schedules fire: central's queue of
// due deadlines.
func DeadlineDueSubject(central string) string { return deadlineDuePrefix + central }

// Layout holds the tunables of the assets Ensure creates.
type Layout struct {
	// Replicas for streams and buckets (1 on a single server, 3 in a cluster).
	Replicas int
	// MaxNodes caps consumers on the message stream. nats-server applies a
	// default of 1,000 when a stream sets no positive limit, which would cap
	// a fleet at 1,000 nodes.
	MaxNodes int
	// StatusTTL is how long status records are kept.
	StatusTTL time.Duration
	// MaxMsgSize is the largest message the stream takes (0: server max).
	MaxMsgSize int32
}

// DefaultLayout is the layout used when nothing is configured.
func DefaultLayout() Layout {
	return Layout{Replicas: 1, MaxNodes: defaultMaxNodes, StatusTTL: 7 * 24 * time.Hour}
}

func (l Layout) withDefaults() Layout {
	d := DefaultLayout()
	if l.Replicas <= 0 {
		l.Replicas = d.Replicas
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = d.MaxNodes
	}
	if l.StatusTTL <= 0 {
		l.StatusTTL = d.StatusTTL
	}
	return l
}

// MessagesConfig is the configuration of STEWARD_MESSAGES.
func (l Layout) MessagesConfig() jetstream.StreamConfig {
	l = l.withDefaults()
	return jetstream.StreamConfig{
		Name:         MessagesStream,
		Description:  "steward: messages to nodes, one durable consumer per node",
		Subjects:     []string{msgPrefix + "*"},
		Retention:    jetstream.LimitsPolicy,
		Storage:      jetstream.FileStorage,
		Replicas:     l.Replicas,
		MaxConsumers: l.MaxNodes,
		MaxMsgSize:   l.MaxMsgSize,
		Discard:      jetstream.DiscardOld,
		Duplicates:   2 * time.Minute,
		AllowMsgTTL:  true,
	}
}

// DeadlinesConfig is the configuration of STEWARD_DEADLINES.
func (l Layout) DeadlinesConfig() jetstream.StreamConfig {
	l = l.withDefaults()
	return jetstream.StreamConfig{
		Name:              DeadlinesStream,
		Description:       "steward: delivery-deadline schedules, fired into the central node's queue",
		Subjects:          []string{deadlineAtPrefix + "*", deadlineDuePrefix + "*"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          l.Replicas,
		Discard:           jetstream.DiscardOld,
		AllowMsgTTL:       true,
		AllowMsgSchedules: true,
	}
}

// Assets are the handles Ensure returns.
type Assets struct {
	Messages  jetstream.Stream
	Deadlines jetstream.Stream
	Status    jetstream.KeyValue
	Nodes     jetstream.KeyValue
}

// Ensure creates or updates the stream and buckets. It is idempotent and
// safe to run from every node at start.
func Ensure(ctx context.Context, js jetstream.JetStream, l Layout) (*Assets, error) {
	l = l.withDefaults()
	msgs, err := js.CreateOrUpdateStream(ctx, l.MessagesConfig())
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", MessagesStream, err)
	}
	deadlines, err := js.CreateOrUpdateStream(ctx, l.DeadlinesConfig())
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", DeadlinesStream, err)
	}
	st, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StatusBucket,
		Description: "steward: one status record per delivery (<message id>.<node>)",
		// Keep the transitions, so `nats kv history` shows how a delivery
		// went (pending, delivered, running, …).
		History:  StatusHistory,
		TTL:      l.StatusTTL,
		Storage:  jetstream.FileStorage,
		Replicas: l.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create kv %s: %w", StatusBucket, err)
	}
	nodes, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      NodesBucket,
		Description: "steward: node registry (name, last seen, version, methods)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    l.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create kv %s: %w", NodesBucket, err)
	}
	return &Assets{Messages: msgs, Deadlines: deadlines, Status: st, Nodes: nodes}, nil
}

// Open returns handles to existing assets without changing them, for
// clients such as `steward status` that only read.
func Open(ctx context.Context, js jetstream.JetStream) (*Assets, error) {
	msgs, err := js.Stream(ctx, MessagesStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", MessagesStream, err)
	}
	deadlines, err := js.Stream(ctx, DeadlinesStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", DeadlinesStream, err)
	}
	st, err := js.KeyValue(ctx, StatusBucket)
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", StatusBucket, err)
	}
	nodes, err := js.KeyValue(ctx, NodesBucket)
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", NodesBucket, err)
	}
	return &Assets{Messages: msgs, Deadlines: deadlines, Status: st, Nodes: nodes}, nil
}

// ConsumerConfig is the configuration of node's durable consumer.
func ConsumerConfig(node string, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       node,
		Description:   "steward: queue of node " + node,
		FilterSubject: MessageSubject(node),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		// Retries are per message: the node compares each delivery count
		// with the message's own retries (see package consumer).
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	}
}

// DeadlineConsumerConfig is the configuration of the central node's
// consumer of due deadlines.
func DeadlineConsumerConfig(central string, ackWait time.Duration) jetstream.ConsumerConfig {
	c := ConsumerConfig(central, ackWait, 1000)
	c.Description = "steward: due delivery deadlines, for central node " + central
	c.FilterSubject = DeadlineDueSubject(central)
	return c
}

// EnsureConsumer creates or updates node's durable consumer.
func EnsureConsumer(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

// IsNotFound reports whether err says a stream, consumer or key is missing.
func IsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrBucketNotFound)
}
