package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/netfault"
	"github.com/stewardfleet/steward/internal/stream"
)

// ensure starts a broker, runs stream.Apply with l and returns the
// JetStream context and the assets.
func ensure(t testing.TB, l stream.Layout) (jetstream.JetStream, *stream.Assets) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	a, err := stream.Apply(natstest.Context(t, 20*time.Second), js, l, nil)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return js, a
}

func TestSubjectHelpers(t *testing.T) {
	cases := []struct {
		name, got, want string
	}{
		{"message subject", stream.MessageSubject("ship1"), "steward.msg.ship1"},
		{"deadline subject", stream.DeadlineSubject("ABC123.ship1"), "steward.deadline.at.ABC123.ship1"},
		{"claim subject", stream.ClaimSubject("ABC123.ship1"), "steward.deadline.claim.ABC123.ship1"},
		{"deadline due subject", stream.DeadlineDueSubject("central"), "steward.deadline.due.central"},
		{"stream name", stream.MessagesStream, "STEWARD_MESSAGES"},
		{"deadlines stream name", stream.DeadlinesStream, "STEWARD_DEADLINES"},
		{"status bucket", stream.StatusBucket, "steward_status"},
		{"nodes bucket", stream.NodesBucket, "steward_nodes"},
		{"status history", fmt.Sprint(stream.StatusHistory), "10"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := natstest.Context(t, 20*time.Second)

	if _, err := stream.Open(ctx, js); !errors.Is(err, stream.ErrNoLayout) {
		t.Fatalf("Open before Apply: want ErrNoLayout, got %v", err)
	}

	for _, run := range []string{"first", "second"} {
		t.Run(run, func(t *testing.T) {
			a, err := stream.Apply(ctx, js, stream.Layout{}, nil)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			info, err := a.Messages.Info(ctx)
			if err != nil {
				t.Fatalf("stream info: %v", err)
			}
			cfg := info.Config
			if cfg.Name != "STEWARD_MESSAGES" {
				t.Errorf("stream name %q", cfg.Name)
			}
			if len(cfg.Subjects) != 1 || cfg.Subjects[0] != "steward.msg.*" {
				t.Errorf("subjects %v, want [steward.msg.*]", cfg.Subjects)
			}
			if cfg.Retention != jetstream.LimitsPolicy {
				t.Errorf("retention %v, want Limits", cfg.Retention)
			}
			if cfg.Storage != jetstream.FileStorage {
				t.Errorf("storage %v, want file", cfg.Storage)
			}
			if !cfg.AllowMsgTTL {
				t.Error("AllowMsgTTL is off")
			}
			if cfg.AllowMsgSchedules {
				t.Error("AllowMsgSchedules is on: schedules (rollups) would walk every node's consumer")
			}
			dinfo, err := a.Deadlines.Info(ctx)
			if err != nil {
				t.Fatalf("deadlines stream info: %v", err)
			}
			if d := dinfo.Config; d.Name != "STEWARD_DEADLINES" || !d.AllowMsgSchedules || !d.AllowMsgTTL ||
				len(d.Subjects) != 1 || d.Subjects[0] != "steward.deadline.>" {
				t.Errorf("deadlines stream config %+v", d)
			}
			for _, c := range []jetstream.StreamConfig{cfg, dinfo.Config} {
				if c.Metadata[stream.VersionKey] != fmt.Sprint(stream.Version) {
					t.Errorf("stream %s has layout %q, want %d", c.Name, c.Metadata[stream.VersionKey], stream.Version)
				}
			}
			if cfg.MaxConsumers != stream.DefaultLayout().MaxNodes || cfg.MaxConsumers < 10_000 {
				t.Errorf("MaxConsumers %d, want %d", cfg.MaxConsumers, stream.DefaultLayout().MaxNodes)
			}

			st, err := a.Status.Status(ctx)
			if err != nil {
				t.Fatalf("status bucket: %v", err)
			}
			if st.Bucket() != "steward_status" {
				t.Errorf("status bucket %q", st.Bucket())
			}
			if st.History() != stream.StatusHistory {
				t.Errorf("status history %d, want %d", st.History(), stream.StatusHistory)
			}
			if st.TTL() != 0 {
				t.Errorf("status bucket TTL %s, want none (records carry their own)", st.TTL())
			}
			sinfo, err := js.Stream(ctx, "KV_steward_status")
			if err != nil {
				t.Fatal(err)
			}
			if !sinfo.CachedInfo().Config.AllowMsgTTL {
				t.Error("status records cannot carry their own TTL")
			}
			nodes, err := a.Nodes.Status(ctx)
			if err != nil {
				t.Fatalf("nodes bucket: %v", err)
			}
			if nodes.Bucket() != "steward_nodes" {
				t.Errorf("nodes bucket %q", nodes.Bucket())
			}

			if _, err := stream.Open(ctx, js); err != nil {
				t.Errorf("Open after Apply: %v", err)
			}
		})
	}

	// Exactly one message stream, whatever the number of runs.
	var names []string
	lister := js.StreamNames(ctx)
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(names, ","), stream.MessagesStream); n != 1 {
		t.Errorf("streams %v: want STEWARD_MESSAGES once", names)
	}
}

func TestApplyKeepsMessagesAndConsumers(t *testing.T) {
	js, a := ensure(t, stream.Layout{})
	ctx := natstest.Context(t, 20*time.Second)
	if _, err := js.Publish(ctx, stream.MessageSubject("ship1"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := stream.OpenConsumer(ctx, a.Messages, stream.ConsumerConfig("ship1", time.Second, 10, 0)); err != nil {
		t.Fatal(err)
	}
	a2, err := stream.Apply(ctx, js, stream.Layout{}, nil)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	info, err := a2.Messages.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || info.State.Consumers != 1 {
		t.Errorf("after a second Apply: %d messages, %d consumers; want 1 and 1", info.State.Msgs, info.State.Consumers)
	}
}

func TestLayoutMaxNodesIsEnforced(t *testing.T) {
	_, a := ensure(t, stream.Layout{MaxNodes: 2})
	ctx := natstest.Context(t, 20*time.Second)
	for _, n := range []string{"a", "b"} {
		if _, _, err := stream.OpenConsumer(ctx, a.Messages, stream.ConsumerConfig(n, time.Second, 10, 0)); err != nil {
			t.Fatalf("consumer %s: %v", n, err)
		}
	}
	_, _, err := stream.OpenConsumer(ctx, a.Messages, stream.ConsumerConfig("c", time.Second, 10, 0))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeMaximumConsumersLimit {
		t.Fatalf("third consumer with MaxNodes 2: want the maximum-consumers error, got %v", err)
	}
	if !strings.Contains(err.Error(), "create consumer c") {
		t.Errorf("error does not name the consumer: %v", err)
	}
}

// TestStreamTakesMoreThan1000Consumers proves that Apply lifts the
// server's default cap of 1,000 consumers per stream. The cap counts every
// consumer whatever its storage; memory-backed consumers keep this fast.
func TestStreamTakesMoreThan1000Consumers(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,001 consumers")
	}
	const n = 1001
	_, a := ensure(t, stream.Layout{})
	ctx := natstest.Context(t, 2*time.Minute)

	const workers = 8
	names := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for name := range names {
				cfg := stream.ConsumerConfig(name, 30*time.Second, 100, 0)
				cfg.MemoryStorage = true
				if _, _, err := stream.OpenConsumer(ctx, a.Messages, cfg); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		names <- fmt.Sprintf("node-%04d", i)
	}
	close(names)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating %d consumers: %v", n, err)
	}
	info, err := a.Messages.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != n {
		t.Errorf("stream has %d consumers, want %d", info.State.Consumers, n)
	}
}

func TestConsumerConfig(t *testing.T) {
	cfg := stream.ConsumerConfig("ship1", 7*time.Second, 42, 0)
	cases := []struct {
		name      string
		got, want any
	}{
		{"durable", cfg.Durable, "ship1"},
		{"filter", cfg.FilterSubject, "steward.msg.ship1"},
		{"no inactive threshold", cfg.InactiveThreshold, time.Duration(0)},
		{"max deliver", cfg.MaxDeliver, -1},
		{"ack policy", cfg.AckPolicy, jetstream.AckExplicitPolicy},
		{"deliver policy", cfg.DeliverPolicy, jetstream.DeliverAllPolicy},
		{"ack wait", cfg.AckWait, 7 * time.Second},
		{"max ack pending", cfg.MaxAckPending, 42},
		{"start again at", stream.ConsumerConfig("ship1", time.Second, 1, 17).OptStartSeq, uint64(17)},
		{"start again policy", stream.ConsumerConfig("ship1", time.Second, 1, 17).DeliverPolicy, jetstream.DeliverByStartSequencePolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

// TestConsumerOnServer checks what the server made of ConsumerConfig: a
// durable with no inactive threshold that sees only its node's messages
// (not those of a node whose name merely starts the same).
func TestConsumerOnServer(t *testing.T) {
	js, a := ensure(t, stream.Layout{})
	ctx := natstest.Context(t, 20*time.Second)
	for _, subj := range []string{
		stream.MessageSubject("ship1"),
		stream.MessageSubject("ship1"),
		stream.MessageSubject("ship10"),
		stream.MessageSubject("ship2"),
	} {
		if _, err := js.Publish(ctx, subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c, created, err := stream.OpenConsumer(ctx, a.Messages, stream.ConsumerConfig("ship1", 5*time.Second, 10, 0))
	if err != nil || !created {
		t.Fatal(created, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.InactiveThreshold != 0 {
		t.Errorf("InactiveThreshold %s on the server, want none", info.Config.InactiveThreshold)
	}
	if info.Config.MaxDeliver != -1 {
		t.Errorf("MaxDeliver %d on the server, want -1", info.Config.MaxDeliver)
	}
	if info.Config.Durable != "ship1" {
		t.Errorf("durable %q", info.Config.Durable)
	}
	if info.NumPending != 2 {
		t.Errorf("consumer ship1 has %d pending, want 2 (only steward.msg.ship1.*)", info.NumPending)
	}
	// Opening it again keeps the consumer and its position; a new
	// AckWait is taken.
	c2, created, err := stream.OpenConsumer(ctx, a.Messages, stream.ConsumerConfig("ship1", 9*time.Second, 10, 0))
	if err != nil || created {
		t.Fatalf("second OpenConsumer: %v (created %v)", err, created)
	}
	if got := c2.CachedInfo(); got.Config.AckWait != 9*time.Second || got.NumPending != 2 {
		t.Errorf("after opening again: AckWait %s, %d pending", got.Config.AckWait, got.NumPending)
	}
	if _, err := a.Messages.Consumer(ctx, "ship1"); err != nil {
		t.Errorf("consumer gone: %v", err)
	}
}

func TestIsNotFound(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"stream", fmt.Errorf("x: %w", jetstream.ErrStreamNotFound), true},
		{"consumer", jetstream.ErrConsumerNotFound, true},
		{"key", fmt.Errorf("get: %w", jetstream.ErrKeyNotFound), true},
		{"bucket", jetstream.ErrBucketNotFound, true},
		{"layout", fmt.Errorf("x: %w", stream.ErrNoLayout), true},
		{"other", errors.New("boom"), false},
		{"nil", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := stream.IsNotFound(tc.err); got != tc.want {
				t.Errorf("IsNotFound(%v) = %v", tc.err, got)
			}
		})
	}
}

// A ship on an older build cannot put back old settings: Apply leaves
// alone a stream that a newer layout wrote, and Open refuses an older one.
func TestLayoutVersionsOnlyGoForward(t *testing.T) {
	js, a := ensure(t, stream.Layout{})
	ctx := natstest.Context(t, 20*time.Second)
	newer := a.Messages.CachedInfo().Config
	newer.Metadata = map[string]string{stream.VersionKey: fmt.Sprint(stream.Version + 1)}
	newer.MaxConsumers = 5_000_000
	if _, err := js.UpdateStream(ctx, newer); err != nil {
		t.Fatal(err)
	}
	a2, err := stream.Apply(ctx, js, stream.Layout{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := a2.Messages.CachedInfo().Config; got.MaxConsumers != 5_000_000 {
		t.Errorf("Apply rewrote a newer layout: MaxConsumers %d", got.MaxConsumers)
	}

	older := a2.Deadlines.CachedInfo().Config
	older.Metadata = map[string]string{stream.VersionKey: "1"}
	if _, err := js.UpdateStream(ctx, older); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Open(ctx, js); !errors.Is(err, stream.ErrNoLayout) {
		t.Errorf("Open of an older layout: want ErrNoLayout, got %v", err)
	}
	if _, err := stream.Apply(ctx, js, stream.Layout{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Open(ctx, js); err != nil {
		t.Errorf("Open after Apply brought it up to date: %v", err)
	}
}

// Open never writes: a node that is not central opens the layout with
// read access only and cannot change it.
func TestOpenChangesNothing(t *testing.T) {
	js, a := ensure(t, stream.Layout{})
	ctx := natstest.Context(t, 20*time.Second)
	before, _ := a.Messages.Info(ctx)
	for range 3 {
		if _, err := stream.Open(ctx, js); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := a.Messages.Info(ctx)
	if !after.Created.Equal(before.Created) || after.Config.MaxConsumers != before.Config.MaxConsumers {
		t.Errorf("Open changed the stream: %+v → %+v", before.Config, after.Config)
	}
}

func TestReplicasAreConfigurable(t *testing.T) {
	l := stream.Layout{Replicas: 3}
	if l.MessagesConfig().Replicas != 3 || l.DeadlinesConfig().Replicas != 3 {
		t.Errorf("replicas not applied: %d %d", l.MessagesConfig().Replicas, l.DeadlinesConfig().Replicas)
	}
	// A single server refuses three replicas: Apply says so.
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if _, err := stream.Apply(natstest.Context(t, 20*time.Second), js, l, nil); err == nil {
		t.Error("three replicas on a single server accepted")
	}
}

func TestBrokerNowIsTheBrokersClock(t *testing.T) {
	js, a := ensure(t, stream.Layout{})
	ctx := natstest.Context(t, 20*time.Second)
	before := time.Now()
	now, err := stream.BrokerNow(ctx, js, a.Deadlines, "ship1")
	if err != nil {
		t.Fatal(err)
	}
	// The test broker runs on this machine's clock.
	if now.Before(before.Add(-time.Second)) || now.After(time.Now().Add(time.Second)) {
		t.Errorf("broker time %s, local %s", now, before)
	}
}

func TestPublishAsyncAndAwait(t *testing.T) {
	js, a := ensure(t, stream.Layout{})
	ctx := natstest.Context(t, 20*time.Second)
	const n = 20
	var futures []jetstream.PubAckFuture
	for i := range n {
		msg := nats.NewMsg(stream.MessageSubject("ship1"))
		msg.Data = fmt.Appendf(nil, "%d", i)
		f, err := stream.PublishAsync(ctx, js, msg)
		if err != nil {
			t.Fatalf("PublishAsync %d: %v", i, err)
		}
		futures = append(futures, f)
	}
	futures = append(futures, nil) // Await skips nil futures
	if err := stream.Await(ctx, futures...); err != nil {
		t.Fatalf("Await: %v", err)
	}
	info, err := a.Messages.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Errorf("stream holds %d messages, want %d", info.State.Msgs, n)
	}
}

// TestPublishAsyncRetriesStalls: with room for one publish in flight and no
// patience for a stall, nats.go returns ErrTooManyStalledMsgs at once;
// PublishAsync must retry until every message is stored.
func TestPublishAsyncRetriesStalls(t *testing.T) {
	srv := natstest.Start(t)
	nc, _ := natstest.Connect(t, srv)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := natstest.Context(t, 30*time.Second)
	a, err := stream.Apply(ctx, js, stream.Layout{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var futures []jetstream.PubAckFuture
	for i := range n {
		msg := nats.NewMsg(stream.MessageSubject("ship1"))
		msg.Data = fmt.Appendf(nil, "%d", i)
		f, err := stream.PublishAsync(ctx, js, msg, jetstream.WithStallWait(time.Nanosecond))
		if err != nil {
			t.Fatalf("PublishAsync %d: %v", i, err)
		}
		futures = append(futures, f)
	}
	if err := stream.Await(ctx, futures...); err != nil {
		t.Fatalf("Await: %v", err)
	}
	info, err := a.Messages.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Errorf("stream holds %d messages, want %d: a stalled publish was dropped", info.State.Msgs, n)
	}
}

// TestPublishAsyncAndAwaitHonourContext uses a subject a plain subscriber
// listens on and never answers, so a publish's ack never comes.
func TestPublishAsyncAndAwaitHonourContext(t *testing.T) {
	srv := natstest.Start(t)
	nc, _ := natstest.Connect(t, srv)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync("hold.forever"); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pending, err := stream.PublishAsync(t.Context(), js, nats.NewMsg("hold.forever"))
	if err != nil {
		t.Fatalf("first publish: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	t.Run("PublishAsync", func(t *testing.T) {
		_, err := stream.PublishAsync(ctx, js, nats.NewMsg("hold.forever"), jetstream.WithStallWait(time.Nanosecond))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stalled publish with a cancelled context: want context.Canceled, got %v", err)
		}
	})
	t.Run("Await", func(t *testing.T) {
		err := stream.Await(ctx, pending)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Await with a cancelled context: want context.Canceled, got %v", err)
		}
	})
}

func TestAwaitJoinsErrors(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := natstest.Context(t, 20*time.Second)
	if _, err := stream.Apply(ctx, js, stream.Layout{}, nil); err != nil {
		t.Fatal(err)
	}
	good, err := stream.PublishAsync(ctx, js, nats.NewMsg(stream.MessageSubject("ship1")))
	if err != nil {
		t.Fatal(err)
	}
	// No stream listens on this subject: the server answers "no responders".
	bad, err := stream.PublishAsync(ctx, js, nats.NewMsg("nowhere.at.all"))
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Await(ctx, good, bad)
	if err == nil {
		t.Fatal("Await of a publish nobody stored returned nil")
	}
	if !strings.Contains(err.Error(), "nowhere.at.all") {
		t.Errorf("error does not name the subject: %v", err)
	}
	if strings.Contains(err.Error(), "steward.msg.ship1") {
		t.Errorf("error blames the good publish: %v", err)
	}
}

// A publish acknowledgement lost on its way (the link drops what the
// broker sends back) does not park its waiter forever: the future fails
// within the JetStream context's ack timeout. (Seen before: one lost ack
// parked a delivery forever while its lease kept being renewed.)
func TestLostPublishAckFailsInBoundedTime(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if _, err := stream.Apply(natstest.Context(t, 20*time.Second), js, stream.Layout{}, nil); err != nil {
		t.Fatal(err)
	}
	link, err := netfault.Start(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	nc, err := nats.Connect(link.URL(), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pjs, err := stream.NewJetStream(nc, 500*time.Millisecond, "")
	if err != nil {
		t.Fatal(err)
	}
	link.Cut(netfault.DropToClient)
	f, err := stream.PublishAsync(t.Context(), pjs, nats.NewMsg(stream.MessageSubject("ship1")))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stream.Await(context.Background(), f) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the publish was confirmed through a link that drops every answer")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Await still waits on a lost acknowledgement")
	}
	// The broker did store it: the waiter only learned nothing.
	natstest.Eventually(t, 5*time.Second, "the message stored", func() bool {
		s, err := js.Stream(t.Context(), stream.MessagesStream)
		return err == nil && s.CachedInfo().State.Msgs == 1
	})
}

// Where the broker keeps the nodes' queues is a layout setting: central
// writes it into the message stream, every node reads it when it opens
// the layout, and central can change it back.
func TestQueueStorageIsALayoutSetting(t *testing.T) {
	js, a := ensure(t, stream.Layout{})
	if a.QueuesInMemory() {
		t.Fatal("queues in memory by default; want on file")
	}
	ctx := natstest.Context(t, 20*time.Second)
	if _, err := stream.Apply(ctx, js, stream.Layout{QueueStorage: stream.QueuesInMemory}, nil); err != nil {
		t.Fatal(err)
	}
	opened, err := stream.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if !opened.QueuesInMemory() {
		t.Error("a node opening the layout does not see queues in memory")
	}
	if _, err := stream.Apply(ctx, js, stream.Layout{QueueStorage: stream.QueuesOnFile}, nil); err != nil {
		t.Fatal(err)
	}
	if opened, err = stream.Open(ctx, js); err != nil || opened.QueuesInMemory() {
		t.Errorf("after central set file again: in memory %v, err %v", opened != nil && opened.QueuesInMemory(), err)
	}
	for _, bad := range []string{"", "disk", "Memory"} {
		if stream.CheckQueueStorage(bad) == nil {
			t.Errorf("queue storage %q accepted", bad)
		}
	}
}
