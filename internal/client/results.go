package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/procs"
	"github.com/stewardfleet/steward/internal/stream"
)

// Output is a piece of a message's output as its node sent it back: a part
// of a streamed output (lines numbered from Seq), or the whole output of a
// reply (Final; for a streamed method it holds no data, and says the
// output is complete).
type Output struct {
	Node   string
	Seq    uint64
	Lines  int
	Data   []byte
	Final  bool
	Status string
	Error  string
}

// Results reads the output the nodes sent back for message id from the
// broker (replies stay in the sender's queue until they expire), in the
// order each node sent it, and calls fn for each piece. With follow it
// waits for more until every delivery's final reply came or ctx ends;
// without, it returns once it read what is there now. A multi-chunk reply
// is given whole.
func (c *Client) Results(ctx context.Context, id string, follow bool, fn func(Output)) error {
	recs, err := c.Status(ctx, id)
	if err != nil {
		return err
	}
	from, since := recs[0].FromNode, recs[0].SentAt
	waiting := map[string]bool{}
	for _, r := range recs {
		if !r.Reply {
			waiting[r.Node] = true
		}
	}
	cons, err := c.assets.Messages.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.MessageSubject(from)},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   ptr(since.Add(-time.Second)),
	})
	if err != nil {
		return fmt.Errorf("read the replies: %w", err)
	}
	chunks := map[string][][]byte{}
	next := map[string]uint64{} // per node, the next line not given yet
	for len(waiting) > 0 {
		wait := 2 * time.Second
		if follow {
			wait = 30 * time.Second
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(wait))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			if follow {
				continue
			}
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read the replies: %w", err)
		}
		m, err := message.DecodeWire(msg.Data())
		if err != nil || m.Reply == nil || m.ID != id || !waiting[m.FromNode] && !m.Reply.Part() {
			continue
		}
		r := m.Reply
		switch {
		case r.Part():
			if r.Seq+uint64(r.Lines) <= next[m.FromNode] {
				continue // stored twice: given already
			}
			next[m.FromNode] = r.Seq + uint64(r.Lines)
			fn(Output{Node: m.FromNode, Seq: r.Seq, Lines: r.Lines, Data: m.Data, Status: r.Status})
		case r.Chunks > 1:
			key := m.FromNode
			if chunks[key] == nil {
				chunks[key] = make([][]byte, r.Chunks)
			}
			chunks[key][r.Chunk] = m.Data
			if slices.ContainsFunc(chunks[key], func(b []byte) bool { return b == nil }) {
				continue
			}
			var all []byte
			for _, b := range chunks[key] {
				all = append(all, b...)
			}
			fn(Output{Node: m.FromNode, Data: all, Final: true, Status: r.Status, Error: r.Error})
			delete(waiting, m.FromNode)
		default:
			fn(Output{Node: m.FromNode, Seq: r.Seq, Data: m.Data, Final: true, Status: r.Status, Error: r.Error})
			delete(waiting, m.FromNode)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// Processes returns node's process table as it last published it.
func (c *Client) Processes(ctx context.Context, node string) (*procs.Snapshot, error) {
	if c.assets.Procs == nil {
		return nil, fmt.Errorf("the broker has no %s bucket: its layout is older than this steward (upgrade the central node)", stream.ProcsBucket)
	}
	if message.ValidNodeName(node) != nil {
		return nil, fmt.Errorf("%w: %q is not a node name", ErrNotFound, node)
	}
	e, err := c.assets.Procs.Get(ctx, node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: node %s published no process table (is it running, and as new as this steward?)", ErrNotFound, node)
	}
	if err != nil {
		return nil, fmt.Errorf("read the process table of %s: %w", node, err)
	}
	var s procs.Snapshot
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, fmt.Errorf("the process table of %s does not decode: %w", node, err)
	}
	return &s, nil
}
