package client

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/procs"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// WatchNodes streams the node registry, each time whole and sorted by
// name as Nodes returns it: first once the registry has been read, then
// after every change (a hello, a goodbye, a node removed), until ctx
// ends; the channel closes then. Changes that arrive together give one
// list. It is a KV watch on the registry bucket: nothing is polled.
func (c *Client) WatchNodes(ctx context.Context) (<-chan []*registry.Node, error) {
	w, err := c.assets.Nodes.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch the node registry: %w", err)
	}
	byName := map[string]*registry.Node{}
	apply := func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			delete(byName, e.Key())
			return
		}
		var n registry.Node
		if json.Unmarshal(e.Value(), &n) != nil {
			return // not a record this steward reads: Nodes leaves it out too
		}
		n.LastSeen = e.Created().UTC() // as registry.Get: when the broker stored it
		byName[e.Key()] = &n
	}
	out := make(chan []*registry.Node)
	go follow(ctx, w, apply, func() bool {
		list := make([]*registry.Node, 0, len(byName))
		for _, n := range byName {
			list = append(list, n)
		}
		slices.SortFunc(list, func(a, b *registry.Node) int { return strings.Compare(a.Name, b.Name) })
		select {
		case out <- list:
			return true
		case <-ctx.Done():
			return false
		}
	}, func() { close(out) })
	return out, nil
}

// WatchProcesses streams node's process table as Processes returns it:
// first the one on the broker (nil when the node has published none),
// then every one the node publishes (nil if it is removed), until ctx
// ends; the channel closes then. It is a KV watch on the node's key of
// the process-table bucket.
func (c *Client) WatchProcesses(ctx context.Context, node string) (<-chan *procs.Snapshot, error) {
	if c.assets.Procs == nil {
		return nil, fmt.Errorf("the broker has no %s bucket: its layout is older than this steward (upgrade the central node)", stream.ProcsBucket)
	}
	if message.ValidNodeName(node) != nil {
		return nil, fmt.Errorf("%w: %q is not a node name", ErrNotFound, node)
	}
	w, err := c.assets.Procs.Watch(ctx, node)
	if err != nil {
		return nil, fmt.Errorf("watch the process table of %s: %w", node, err)
	}
	var latest *procs.Snapshot
	apply := func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			latest = nil
			return
		}
		var s procs.Snapshot
		if json.Unmarshal(e.Value(), &s) != nil {
			return // keep the last one that decoded
		}
		latest = &s
	}
	out := make(chan *procs.Snapshot)
	go follow(ctx, w, apply, func() bool {
		select {
		case out <- latest:
			return true
		case <-ctx.Done():
			return false
		}
	}, func() { close(out) })
	return out, nil
}

// follow runs a KV watch: apply takes each entry, and once the values
// the watch started with have all been applied, emit is called, then
// again after each later batch of entries (those already waiting when
// one is taken: a burst of changes is emitted once). It returns when ctx
// ends, the watch ends or emit returns false, after stopping the watch
// and calling done.
func follow(ctx context.Context, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry), emit func() bool, done func()) {
	defer done()
	defer w.Stop()
	caughtUp := false
	// take applies e; nil marks the end of the initial values.
	take := func(e jetstream.KeyValueEntry) {
		if e == nil {
			caughtUp = true
			return
		}
		apply(e)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			take(e)
		}
		// Whatever else is waiting belongs to the same burst.
		for more := true; more; {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				take(e)
			default:
				more = false
			}
		}
		if caughtUp && !emit() {
			return
		}
	}
}

// WatchRegistry streams changes of the node registry: first every record
// there is, then each record as it changes, one at a time (a removed node
// comes as a Node with only its Name and Removed set), until ctx ends; the
// channel closes then. nil marks the end of the first records. Unlike
// WatchNodes it never builds the whole list again, so a fleet of 10,000
// nodes saying hello costs one entry per hello.
func (c *Client) WatchRegistry(ctx context.Context) (<-chan RegistryChange, error) {
	w, err := c.assets.Nodes.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch the node registry: %w", err)
	}
	out := make(chan RegistryChange, 256)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				return
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			}
			var ch RegistryChange
			switch {
			case e == nil:
				ch.CaughtUp = true
			case e.Operation() != jetstream.KeyValuePut:
				ch.Node, ch.Removed = &registry.Node{Name: e.Key()}, true
			default:
				var n registry.Node
				if json.Unmarshal(e.Value(), &n) != nil {
					continue // not a record this steward reads
				}
				n.LastSeen = e.Created().UTC()
				ch.Node = &n
			}
			select {
			case out <- ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// RegistryChange is one change of the node registry (WatchRegistry).
type RegistryChange struct {
	Node     *registry.Node
	Removed  bool
	CaughtUp bool // the records the watch started with have all come
}

// WatchStatuses streams every status record written from now on, of every
// message (with initial, first the latest record of every delivery and
// reply there is, then nil), until ctx ends; the channel closes then.
func (c *Client) WatchStatuses(ctx context.Context, initial bool) (<-chan *status.Record, error) {
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if !initial {
		opts = append(opts, jetstream.UpdatesOnly())
	}
	w, err := c.assets.Status.WatchAll(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("watch status: %w", err)
	}
	out := make(chan *status.Record, 256)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			var r *status.Record
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					r = new(status.Record)
					if json.Unmarshal(e.Value(), r) != nil {
						continue
					}
				}
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// QueueDepths returns, for every node with a queue (a consumer on the
// message stream), how many messages wait in it that it has not taken yet.
func (c *Client) QueueDepths(ctx context.Context) (map[string]uint64, error) {
	depths := map[string]uint64{}
	list := c.assets.Messages.ListConsumers(ctx)
	for info := range list.Info() {
		depths[info.Name] = info.NumPending
	}
	if err := list.Err(); err != nil {
		return depths, fmt.Errorf("list the queues: %w", err)
	}
	return depths, nil
}
