// Package stream owns steward's JetStream layout: the names of streams,
// subjects, consumers and KV buckets, creating and updating them (only the
// central node or an operator's `steward setup` does that), and opening
// them (everyone else).
//
// Layout (see docs/architecture.md for the measurements behind it):
//
//   - One stream, STEWARD_MESSAGES, with Limits retention, holds every
//     message to every node on subjects steward.msg.<node> (the method is in
//     the message). Acks on a Limits stream scan no other consumers, so
//     throughput holds at 10,000 nodes. Messages leave the stream by their
//     per-message TTL (Nats-TTL), derived from each message's horizon (see
//     message.Horizon).
//   - One durable pull consumer per node, named after the node, filtered on
//     the literal subject steward.msg.<node>. It never has an
//     InactiveThreshold, so a node that is offline for months keeps its
//     queue. The node creates it (and creates it again if the broker loses
//     it); nobody else does. Its state (where the node has got to) is on
//     file by default; a layout with QueuesInMemory keeps it in the
//     broker's memory, which is faster, and every node creates its queue
//     again after a broker restart (see Layout.QueueStorage).
//   - Delivery deadlines live in STEWARD_DEADLINES: one JetStream message
//     schedule per delivery on steward.deadline.at.<id>.<node>, firing into
//     steward.deadline.due.<central>, and the node's claim on
//     steward.deadline.claim.<id>.<node> (see package deadline).
//   - KV bucket steward_status holds one record per delivery, each with its
//     own TTL; steward_nodes holds the node registry; steward_keys the
//     fleet's key set (signature.KeySet), which the central node signs;
//     steward_procs each node's process table (procs.Snapshot).
//
// Every stream carries the layout version in its metadata. Apply never
// downgrades a layout written by a newer steward, so a ship on an older
// build cannot put old settings back.
//
// Every name here is a valid subject token, consumer name and KV key, and
// reads well in `nats stream ls`, `nats consumer ls` and `nats kv ls`.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream assets.
const (
	MessagesStream  = "STEWARD_MESSAGES"
	DeadlinesStream = "STEWARD_DEADLINES"
	StatusBucket    = "steward_status"
	NodesBucket     = "steward_nodes"
	KeysBucket      = "steward_keys"
	ProcsBucket     = "steward_procs"
	// KeySetKey is the key of the fleet's key set in KeysBucket.
	KeySetKey = "keyset"

	msgPrefix         = "steward.msg."
	deadlinePrefix    = "steward.deadline."
	deadlineAtPrefix  = deadlinePrefix + "at."
	claimPrefix       = deadlinePrefix + "claim."
	deadlineDuePrefix = deadlinePrefix + "due."
	defaultMaxNodes   = 1_000_000

	// StatusHistory is how many states of a delivery the status bucket keeps.
	StatusHistory = 10

	// Version is the layout this build writes and reads. Stored in every
	// stream's metadata under VersionKey.
	Version    = 2
	VersionKey = "steward_layout"
	// QueueStorageKey holds the layout's QueueStorage in the metadata of
	// the message stream, where every node reads it.
	QueueStorageKey = "steward_queues"
)

// Where the broker keeps the state of the nodes' queues (Layout.QueueStorage).
const (
	QueuesOnFile   = "file"
	QueuesInMemory = "memory"
)

// ErrNoLayout: the broker has no steward streams (yet), or only those of
// an older layout.
var ErrNoLayout = errors.New("the broker has no steward layout")

// MessageSubject is where messages for node are published; it is also the
// filter of node's consumer.
func MessageSubject(node string) string { return msgPrefix + node }

// DeadlineSubject is the schedule subject for the delivery deadline of one
// delivery ("<id>.<node>"). One schedule per subject: publishing again
// replaces it.
func DeadlineSubject(deliveryID string) string { return deadlineAtPrefix + deliveryID }

// ClaimSubject is where the receiving node claims a delivery before its
// deadline (see package deadline).
func ClaimSubject(deliveryID string) string { return claimPrefix + deliveryID }

// CancelSubject is where a sender cancels a delivery before it runs
// (steward cancel): the alternative to the node's claim.
func CancelSubject(deliveryID string) string { return deadlinePrefix + "cancel." + deliveryID }

// ClaimSubjectPrefix starts every claim subject ("<prefix><id>.<node>").
const ClaimSubjectPrefix = claimPrefix

// ClockSubject is where node publishes to read the broker's clock.
func ClockSubject(node string) string { return deadlinePrefix + "clock." + node }

// DeadlineDueSubject is where deadline schedules fire: central's queue of
// due deadlines.
func DeadlineDueSubject(central string) string { return deadlineDuePrefix + central }

// Layout holds the tunables of the assets Apply creates.
type Layout struct {
	// Replicas for streams and buckets (1 on a single server, 3 in a
	// JetStream cluster).
	Replicas int
	// MaxNodes caps consumers on the message stream. nats-server applies a
	// default of 1,000 when a stream sets no positive limit, which would cap
	// a fleet at 1,000 nodes.
	MaxNodes int
	// MaxMsgSize is the largest message the stream takes (0: server max).
	MaxMsgSize int32
	// QueueStorage is where the broker keeps the state of every node's
	// queue (its consumer): QueuesOnFile (the default) or QueuesInMemory.
	// Messages are on file either way. A queue in memory is not rewritten
	// to disk about ten times a second while it is busy, which is most of
	// the broker's work per message in a busy fleet
	// (docs/performance.md); but the broker forgets every queue when it
	// restarts, and each node creates its own again, when it reconnects,
	// from the ack floor it last read (its ledger settles what comes
	// again without running it). Queues made before a change keep their
	// storage until they are made again.
	QueueStorage string
}

// DefaultLayout is the layout used when nothing is configured.
func DefaultLayout() Layout {
	return Layout{Replicas: 1, MaxNodes: defaultMaxNodes}
}

func (l Layout) withDefaults() Layout {
	d := DefaultLayout()
	if l.Replicas <= 0 {
		l.Replicas = d.Replicas
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = d.MaxNodes
	}
	if l.QueueStorage == "" {
		l.QueueStorage = QueuesOnFile
	}
	return l
}

// CheckQueueStorage reports whether s names a queue storage.
func CheckQueueStorage(s string) error {
	if s != QueuesOnFile && s != QueuesInMemory {
		return fmt.Errorf("queue storage %q: must be %q or %q", s, QueuesOnFile, QueuesInMemory)
	}
	return nil
}

func metadata() map[string]string { return map[string]string{VersionKey: strconv.Itoa(Version)} }

// MessagesConfig is the configuration of STEWARD_MESSAGES.
func (l Layout) MessagesConfig() jetstream.StreamConfig {
	l = l.withDefaults()
	md := metadata()
	md[QueueStorageKey] = l.QueueStorage
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
		Metadata:     md,
	}
}

// DeadlinesConfig is the configuration of STEWARD_DEADLINES.
func (l Layout) DeadlinesConfig() jetstream.StreamConfig {
	l = l.withDefaults()
	return jetstream.StreamConfig{
		Name:              DeadlinesStream,
		Description:       "steward: delivery-deadline schedules and claims, fired into the central node's queue",
		Subjects:          []string{deadlinePrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          l.Replicas,
		Discard:           jetstream.DiscardOld,
		Duplicates:        2 * time.Minute,
		AllowMsgTTL:       true,
		AllowMsgSchedules: true,
		Metadata:          metadata(),
	}
}

func (l Layout) statusConfig() jetstream.KeyValueConfig {
	// Keep the transitions, so `nats kv history` shows how a delivery went
	// (pending, delivered, running, …).
	return l.bucket(StatusBucket, StatusHistory, "steward: one status record per delivery (<message id>.<node>), each with its own TTL")
}

func (l Layout) nodesConfig() jetstream.KeyValueConfig {
	return l.bucket(NodesBucket, 1, "steward: node registry (name, last seen, version, methods)")
}

func (l Layout) procsConfig() jetstream.KeyValueConfig {
	return l.bucket(ProcsBucket, 1, "steward: each node's process table (methods served, deliveries running), key <node>")
}

func (l Layout) keysConfig() jetstream.KeyValueConfig {
	return l.bucket(KeysBucket, 16, "steward: the fleet's key set (trusted and revoked keys), signed by the central node")
}

// bucket is the configuration of a steward KV bucket on file storage at
// the layout's replicas.
func (l Layout) bucket(name string, history uint8, description string) jetstream.KeyValueConfig {
	l = l.withDefaults()
	return jetstream.KeyValueConfig{Bucket: name, Description: description, History: history,
		Storage: jetstream.FileStorage, Replicas: l.Replicas}
}

// QueuesInMemory reports whether the layout keeps the nodes' queues in the
// broker's memory (Layout.QueueStorage), as the message stream said when
// it was opened.
func (a *Assets) QueuesInMemory() bool {
	return a.Messages.CachedInfo().Config.Metadata[QueueStorageKey] == QueuesInMemory
}

// Assets are the handles Apply and Open return.
type Assets struct {
	Messages  jetstream.Stream
	Deadlines jetstream.Stream
	Status    jetstream.KeyValue
	Nodes     jetstream.KeyValue
	// Keys holds the key set and Procs the process tables; nil where a
	// central node older than them made the layout.
	Keys  jetstream.KeyValue
	Procs jetstream.KeyValue
}

// Apply creates the streams and buckets, or updates them to this build's
// layout. Only the central node (at start) and `steward setup` call it. A
// stream that a newer steward wrote is left as it is (log says so).
func Apply(ctx context.Context, js jetstream.JetStream, l Layout, log *slog.Logger) (*Assets, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l = l.withDefaults()
	var a Assets
	var err error
	if a.Messages, err = applyStream(ctx, js, l.MessagesConfig(), log); err != nil {
		return nil, err
	}
	if a.Deadlines, err = applyStream(ctx, js, l.DeadlinesConfig(), log); err != nil {
		return nil, err
	}
	if a.Status, err = applyBucket(ctx, js, l.statusConfig(), true, log); err != nil {
		return nil, err
	}
	if a.Nodes, err = applyBucket(ctx, js, l.nodesConfig(), false, log); err != nil {
		return nil, err
	}
	if a.Keys, err = applyBucket(ctx, js, l.keysConfig(), false, log); err != nil {
		return nil, err
	}
	if a.Procs, err = applyBucket(ctx, js, l.procsConfig(), false, log); err != nil {
		return nil, err
	}
	return &a, nil
}

func applyStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, log *slog.Logger) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if s, err = js.CreateStream(ctx, want); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		log.Info("created stream", "stream", want.Name, "replicas", want.Replicas)
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", want.Name, err)
	}
	have := s.CachedInfo().Config
	if v := versionOf(have.Metadata); v > Version {
		log.Warn("stream written by a newer steward; leaving it as it is", "stream", want.Name, "layout", v, "this_build", Version)
		return s, nil
	}
	if streamConfigMatches(have, want) {
		return s, nil
	}
	if s, err = js.UpdateStream(ctx, want); err != nil {
		return nil, fmt.Errorf("update stream %s: %w", want.Name, err)
	}
	log.Info("updated stream", "stream", want.Name, "layout", Version)
	return s, nil
}

// streamConfigMatches compares the fields steward manages (the server
// stores "no limit" as -1 where steward asks with 0).
func streamConfigMatches(have, want jetstream.StreamConfig) bool {
	limit := func(v int) int { return max(v, 0) }
	return slices.Equal(have.Subjects, want.Subjects) && have.Replicas == want.Replicas &&
		limit(have.MaxConsumers) == limit(want.MaxConsumers) && limit(int(have.MaxMsgSize)) == limit(int(want.MaxMsgSize)) &&
		have.AllowMsgTTL == want.AllowMsgTTL && have.AllowMsgSchedules == want.AllowMsgSchedules &&
		have.Duplicates == want.Duplicates && have.Description == want.Description &&
		versionOf(have.Metadata) == versionOf(want.Metadata) && have.Metadata[QueueStorageKey] == want.Metadata[QueueStorageKey]
}

// applyBucket creates or updates a KV bucket. With perKeyTTL the bucket's
// stream takes per-message TTLs (Nats-TTL), which steward sets on every
// status record. (The KV API enables them only together with subject
// delete markers, and with markers on, nats-server 2.15.2 did not expire
// TTL'd messages in our tests; so the stream is updated directly.)
func applyBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig, perKeyTTL bool, log *slog.Logger) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, want.Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		if kv, err = js.CreateKeyValue(ctx, want); err != nil {
			return nil, fmt.Errorf("create kv %s: %w", want.Bucket, err)
		}
		log.Info("created bucket", "bucket", want.Bucket, "replicas", want.Replicas)
	case err != nil:
		return nil, fmt.Errorf("kv %s: %w", want.Bucket, err)
	}
	s, err := js.Stream(ctx, "KV_"+want.Bucket)
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", want.Bucket, err)
	}
	have := s.CachedInfo().Config
	if v := versionOf(have.Metadata); v > Version {
		log.Warn("bucket written by a newer steward; leaving it as it is", "bucket", want.Bucket, "layout", v, "this_build", Version)
		return kv, nil
	}
	cfg := have
	cfg.Description, cfg.Replicas, cfg.MaxMsgsPerSubject = want.Description, want.Replicas, int64(want.History)
	cfg.AllowMsgTTL = have.AllowMsgTTL || perKeyTTL
	if perKeyTTL {
		cfg.MaxAge = 0 // records carry their own TTL
	}
	cfg.Metadata = metadata()
	if cfg.Description == have.Description && cfg.Replicas == have.Replicas && cfg.MaxMsgsPerSubject == have.MaxMsgsPerSubject &&
		cfg.AllowMsgTTL == have.AllowMsgTTL && cfg.MaxAge == have.MaxAge && versionOf(have.Metadata) == Version {
		return kv, nil
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("update kv %s: %w", want.Bucket, err)
	}
	return js.KeyValue(ctx, want.Bucket)
}

func versionOf(md map[string]string) int {
	v, _ := strconv.Atoi(md[VersionKey])
	return v
}

// Open returns handles to the existing assets without changing them. It
// fails with an error wrapping ErrNoLayout when they are missing or older
// than this build's layout.
func Open(ctx context.Context, js jetstream.JetStream) (*Assets, error) {
	var a Assets
	var err error
	for _, s := range []struct {
		name string
		dst  *jetstream.Stream
	}{{MessagesStream, &a.Messages}, {DeadlinesStream, &a.Deadlines}} {
		if *s.dst, err = js.Stream(ctx, s.name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil, fmt.Errorf("%w: stream %s is missing", ErrNoLayout, s.name)
			}
			return nil, fmt.Errorf("open stream %s: %w", s.name, err)
		}
		if v := versionOf((*s.dst).CachedInfo().Config.Metadata); v < Version {
			return nil, fmt.Errorf("%w: stream %s has layout %d, this build needs %d (upgrade the central node, or run steward setup)", ErrNoLayout, s.name, v, Version)
		}
	}
	for _, b := range []struct {
		name string
		dst  *jetstream.KeyValue
	}{{StatusBucket, &a.Status}, {NodesBucket, &a.Nodes}} {
		if *b.dst, err = js.KeyValue(ctx, b.name); err != nil {
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return nil, fmt.Errorf("%w: bucket %s is missing", ErrNoLayout, b.name)
			}
			return nil, fmt.Errorf("open kv %s: %w", b.name, err)
		}
	}
	if a.Keys, err = js.KeyValue(ctx, KeysBucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("open kv %s: %w", KeysBucket, err)
	}
	if a.Procs, err = js.KeyValue(ctx, ProcsBucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("open kv %s: %w", ProcsBucket, err)
	}
	return &a, nil
}

// ConsumerConfig is the configuration of node's durable consumer. A
// consumer created again after the broker lost it starts at startSeq
// (0: at the beginning of the stream).
func ConsumerConfig(node string, ackWait time.Duration, maxAckPending int, startSeq uint64) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable:       node,
		Description:   "steward: queue of node " + node,
		FilterSubject: MessageSubject(node),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		// Retries are per message: the node counts each delivery's runs in
		// its ledger and compares them with the message's own retries.
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	}
	if startSeq > 1 {
		c.DeliverPolicy, c.OptStartSeq = jetstream.DeliverByStartSequencePolicy, startSeq
	}
	return c
}

// DeadlineConsumerConfig is the configuration of the central node's
// consumer of due deadlines, starting at startSeq when it is created
// again (0: at the beginning of the stream).
func DeadlineConsumerConfig(central string, ackWait time.Duration, startSeq uint64) jetstream.ConsumerConfig {
	c := ConsumerConfig(central, ackWait, 1000, startSeq)
	c.Description = "steward: due delivery deadlines, for central node " + central
	c.FilterSubject = DeadlineDueSubject(central)
	return c
}

// OpenConsumer returns the durable consumer cfg.Durable on s, creating it
// with cfg if it does not exist (created is then true). An existing
// consumer keeps where it is; only its AckWait, MaxAckPending and
// description are brought in line with cfg.
func OpenConsumer(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig) (c jetstream.Consumer, created bool, err error) {
	c, err = s.Consumer(ctx, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if c, err = s.CreateConsumer(ctx, cfg); err != nil {
			return nil, false, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
		}
		return c, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	have := c.CachedInfo().Config
	if have.AckWait == cfg.AckWait && have.MaxAckPending == cfg.MaxAckPending && have.Description == cfg.Description &&
		have.FilterSubject == cfg.FilterSubject {
		return c, false, nil
	}
	upd := have
	upd.AckWait, upd.MaxAckPending, upd.Description, upd.FilterSubject = cfg.AckWait, cfg.MaxAckPending, cfg.Description, cfg.FilterSubject
	if c, err = s.UpdateConsumer(ctx, upd); err != nil {
		return nil, false, fmt.Errorf("update consumer %s: %w", cfg.Durable, err)
	}
	return c, false, nil
}

// IsNotFound reports whether err says a stream, consumer or key is missing.
func IsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, ErrNoLayout)
}

// PubAckTimeout bounds every wait for the broker to confirm a publish, so
// no delivery waits forever on one lost acknowledgement.
const PubAckTimeout = 30 * time.Second

// NewJetStream returns the JetStream context steward uses on nc: its
// asynchronous publishes fail after ackTimeout (PubAckTimeout) instead of
// waiting forever. A domain other than "" is the JetStream domain whose
// layout steward uses (a node behind a leaf node reaching the hub's).
func NewJetStream(nc *nats.Conn, ackTimeout time.Duration, domain string) (jetstream.JetStream, error) {
	opt := jetstream.WithPublishAsyncTimeout(ackTimeout)
	var js jetstream.JetStream
	var err error
	if domain != "" {
		js, err = jetstream.NewWithDomain(nc, domain, opt)
	} else {
		js, err = jetstream.New(nc, opt)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// BrokerNow returns the broker's current time: it stores a small message
// on steward.deadline.clock.<node> (kept a minute) and reads back when the
// broker stored it. Decisions that compare times across machines use it,
// so a machine whose clock is off still decides right.
func BrokerNow(ctx context.Context, js jetstream.JetStream, deadlines jetstream.Stream, node string) (time.Time, error) {
	ack, err := js.Publish(ctx, ClockSubject(node), nil, jetstream.WithMsgTTL(time.Minute))
	if err != nil {
		return time.Time{}, fmt.Errorf("broker clock: %w", err)
	}
	m, err := deadlines.GetMsg(ctx, ack.Sequence)
	if err != nil {
		return time.Time{}, fmt.Errorf("broker clock: %w", err)
	}
	return m.Time, nil
}
