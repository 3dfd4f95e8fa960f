package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/consumer"
	"github.com/stewardfleet/steward/internal/stream"
)

// queue is the node's durable consumer of its messages, supervised: if the
// broker loses it, it is created again, starting where the broker had
// last acknowledged everything before (the node remembers that ack floor),
// so a recreated consumer does not hand the node its whole history again
// (and what it does hand again, the ledger settles without running).
// With queues in the broker's memory (stream.QueuesInMemory) every broker
// restart loses it: that is expected, and only logged and counted.
type queue struct {
	n *Node
	c *consumer.Consumer
	floorTracker

	mu          sync.Mutex
	recreatedAt time.Time
	recreations int
}

// floorTracker keeps a consumer's ack floor in a file, so that the
// consumer, created again, starts there.
type floorTracker struct {
	floor *floorFile

	consMu  sync.Mutex         // guards cons and created
	cons    jetstream.Consumer // the consumer as last opened
	created time.Time          // creation time of the stream it is on

	settled atomic.Bool // a delivery was settled since the floor was last read
}

// opened notes the consumer as opened on the stream made at created.
func (f *floorTracker) opened(c jetstream.Consumer, created time.Time) {
	f.consMu.Lock()
	f.cons, f.created = c, created
	f.consMu.Unlock()
}

func (n *Node) newQueue() *queue {
	q := &queue{n: n, floorTracker: floorTracker{floor: &floorFile{path: filepath.Join(n.cfg.StateFolder(), "queue.json")}}}
	q.c = consumer.New(n.handle, consumer.Options{
		Open:    q.open,
		AckWait: n.cfg.DefaultMessageTimeout,
		Logger:  n.log.With("component", "queue"),
		// The registry learns at once that the queue works (the first
		// hello usually goes before it does), or works again.
		OnHealthy: n.helloSoon,
	})
	n.queue.Store(q)
	return q
}

func (q *queue) run(ctx context.Context) error { return q.runWith(ctx, q.c) }

func (q *queue) check() { q.c.Check() }

// open opens the node's consumer, creating it when the broker has none.
// A consumer created where the node had one before (the broker lost it)
// is reported in the log, to central and in the registry.
func (q *queue) open(ctx context.Context) (jetstream.Consumer, bool, error) {
	n := q.n
	a, err := n.layout(ctx)
	if err != nil {
		return nil, false, err
	}
	created := a.Messages.CachedInfo().Created
	start := q.floor.start(created)
	cfg := stream.ConsumerConfig(n.cfg.NodeName, n.cfg.DefaultMessageTimeout, max(1000, 4*n.cfg.Concurrency), start)
	inMemory := a.QueuesInMemory()
	cfg.MemoryStorage = inMemory
	c, isNew, err := stream.OpenConsumer(ctx, a.Messages, cfg)
	if err != nil {
		return nil, false, err
	}
	q.opened(c, created)
	q.mu.Lock()
	hadOne := q.recreations > 0 || q.floor.existed()
	if isNew && hadOne {
		q.recreations++
		q.recreatedAt = n.now().UTC()
	}
	q.mu.Unlock()
	if isNew {
		switch {
		case hadOne && inMemory:
			// The broker keeps queues in memory: it restarted, or the
			// queue was deleted. The registry counts it; it is no error.
			n.log.Info("created this node's queue again (the fleet's queues are kept in the broker's memory, which forgets them when it restarts)", "from_stream_seq", max(start, 1))
			go n.sayHello(context.WithoutCancel(ctx))
		case hadOne:
			n.log.Warn("the broker had lost this node's queue; created it again", "from_stream_seq", max(start, 1))
			n.queueRecreated(ctx, start)
		}
		q.floor.save(created, start)
	}
	return c, isNew, nil
}

// state is what the node's hello says about its queue.
func (q *queue) state() (healthy bool, recreatedAt time.Time, recreations int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.c.Healthy(), q.recreatedAt, q.recreations
}

// floorInterval is how often the node reads its consumer's ack floor, if
// it settled anything since (idle nodes ask nothing).
const floorInterval = 30 * time.Second

// runWith runs c, reading its ack floor meanwhile, until ctx is done.
func (f *floorTracker) runWith(ctx context.Context, c *consumer.Consumer) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.trackFloor(ctx)
	}()
	err := c.Run(ctx)
	<-done
	return err
}

func (f *floorTracker) trackFloor(ctx context.Context) {
	t := time.NewTicker(floorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if f.settled.Swap(false) {
				f.readFloor(ctx)
			}
		}
	}
}

// readFloor reads the consumer's ack floor from the broker and keeps it.
func (f *floorTracker) readFloor(ctx context.Context) {
	f.consMu.Lock()
	c, created := f.cons, f.created
	f.consMu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		f.settled.Store(true) // try again next time
		return
	}
	f.floor.save(created, info.AckFloor.Stream+1)
}

// saveFloor reads and keeps the ack floor once more (at shutdown).
func (f *floorTracker) saveFloor() {
	if f.settled.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		f.readFloor(ctx)
	}
}

// floorFile keeps the stream sequence a recreated consumer starts at,
// with the creation time of the stream it belongs to: a stream created
// again (a broker on an empty store) starts from its beginning.
type floorFile struct {
	path string
	mu   sync.Mutex
	have *floorState
}

type floorState struct {
	StreamCreated time.Time `json:"streamCreated"`
	Next          uint64    `json:"next"`
}

func (f *floorFile) load() *floorState {
	if f.have != nil {
		return f.have
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil
	}
	var s floorState
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	f.have = &s
	return f.have
}

// existed reports whether the node has had a queue before.
func (f *floorFile) existed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.load() != nil
}

// start is where a consumer created on the stream made at created begins.
func (f *floorFile) start(created time.Time) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.load()
	if s == nil || !s.StreamCreated.Equal(created) {
		return 0
	}
	return s.Next
}

func (f *floorFile) save(created time.Time, next uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.load(); s != nil && s.StreamCreated.Equal(created) && s.Next >= next && next != 0 {
		return
	}
	s := &floorState{StreamCreated: created, Next: next}
	b, _ := json.Marshal(s)
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return
	}
	if os.Rename(tmp, f.path) == nil {
		f.have = s
	}
}

// queueRecreated tells central that this node's queue had been lost.
func (n *Node) queueRecreated(ctx context.Context, start uint64) {
	text := fmt.Sprintf("the broker had lost the queue of node %s; the node created it again from stream sequence %d", n.cfg.NodeName, max(start, 1))
	n.reportError(ctx, fmt.Sprintf("queue.%d", n.now().UnixNano()), text)
	go n.sayHello(context.WithoutCancel(ctx))
}

// dueQueue is central's consumer of due delivery deadlines. It keeps its
// ack floor like the node's queue does: created again (queues in memory
// are, after every broker restart), it does not judge every due deadline
// still in the stream again.
type dueQueue struct {
	c *consumer.Consumer
	floorTracker
}

func (n *Node) newDueQueue() *dueQueue {
	q := &dueQueue{floorTracker: floorTracker{floor: &floorFile{path: filepath.Join(n.cfg.StateFolder(), "deadlines.json")}}}
	handle := func(ctx context.Context, l *consumer.Lease) consumer.Disposition {
		disp := n.handleDue(ctx, l)
		if !disp.Retry() {
			q.settled.Store(true)
		}
		return disp
	}
	q.c = consumer.New(handle, consumer.Options{
		Open: func(ctx context.Context) (jetstream.Consumer, bool, error) {
			a, err := n.layout(ctx)
			if err != nil {
				return nil, false, err
			}
			created := a.Deadlines.CachedInfo().Created
			cfg := stream.DeadlineConsumerConfig(n.cfg.NodeName, n.cfg.DefaultMessageTimeout, q.floor.start(created))
			cfg.MemoryStorage = a.QueuesInMemory()
			c, isNew, err := stream.OpenConsumer(ctx, a.Deadlines, cfg)
			if err != nil {
				return nil, false, err
			}
			q.opened(c, created)
			if isNew {
				q.floor.save(created, cfg.OptStartSeq)
			}
			return c, isNew, nil
		},
		AckWait: n.cfg.DefaultMessageTimeout,
		Logger:  n.log.With("component", "deadlines"),
	})
	n.dues.Store(q)
	return q
}

func (q *dueQueue) run(ctx context.Context) error { return q.runWith(ctx, q.c) }
