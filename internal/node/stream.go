package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// A streaming method's output goes back to the sender while the method
// runs, as reply parts: each part holds the lines completed since the last
// one, numbered on from the last (message.ReplyInfo.Seq). Before a part is
// published the node records in the ledger how many lines it has numbered,
// so a rerun after a crash numbers on (its first part says Restart: lines
// numbered before and never published are lost). Parts go one at a time,
// each stored by the broker before the next, so they are in the sender's
// queue in order; the receiving node applies them in order (applyPart).

const (
	// partInterval is how long completed lines wait for more before they
	// are sent.
	partInterval = 250 * time.Millisecond
	// partSize is the most data one part carries; a longer line is cut.
	partSize = 64 << 10
	// maxPending bounds the lines waiting to be sent (a link that is down
	// for long): beyond it the oldest are dropped and the next part says
	// how many.
	maxPending = 16 << 20
)

// lineStream is a delivery's methods.Stream.
type lineStream struct {
	n *Node
	d *delivery

	mu      sync.Mutex
	writers []*lineWriter
	lines   [][]byte // completed, not yet sent
	size    int
	dropped int // lines dropped since the last part
	kick    chan struct{}

	// Only the run goroutine sends, so parts go in order.
	next    uint64 // number of the next line
	restart bool   // the next part is the first after a restart
	sent    bool   // everything given was sent when run ended
	closing chan struct{}
	done    chan struct{}
}

var _ methods.Stream = (*lineStream)(nil)

// newLineStream starts streaming for d; numbered lines so far come from
// the ledger.
func (n *Node) newLineStream(ctx context.Context, d *delivery, numbered uint64) *lineStream {
	s := &lineStream{n: n, d: d, kick: make(chan struct{}, 1), next: numbered + 1, restart: numbered > 0 || d.run > 1,
		closing: make(chan struct{}), done: make(chan struct{})}
	go s.run(ctx)
	return s
}

// Lines returns a writer that cuts its input into lines.
func (s *lineStream) Lines() io.Writer {
	w := &lineWriter{s: s}
	s.mu.Lock()
	s.writers = append(s.writers, w)
	s.mu.Unlock()
	return w
}

type lineWriter struct {
	s       *lineStream
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= partSize {
				w.s.add(w.partial)
				w.partial = nil
			}
			break
		}
		w.s.add(append(w.partial, p[:i+1]...))
		w.partial, p = nil, p[i+1:]
	}
	return n, nil
}

// flushPartial sends a last line that has no newline.
func (w *lineWriter) flushPartial() {
	if len(w.partial) > 0 {
		w.s.add(append(w.partial, '\n'))
		w.partial = nil
	}
}

func (s *lineStream) add(line []byte) {
	if line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.size += len(line)
	for s.size > maxPending && len(s.lines) > 1 {
		s.size -= len(s.lines[0])
		s.lines = s.lines[1:]
		s.dropped++
	}
	full := s.size >= partSize
	s.mu.Unlock()
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// run sends parts until ctx ends, or close is called and everything is
// sent.
func (s *lineStream) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(partInterval)
	defer t.Stop()
	for {
		closing := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		case <-s.closing:
			closing = true
		}
		if !s.sendAll(ctx) {
			return
		}
		if closing {
			s.sent = true
			return
		}
	}
}

// sendAll sends every completed line; false when ctx ended first.
func (s *lineStream) sendAll(ctx context.Context) bool {
	for {
		part, lines, dropped := s.take()
		if lines == 0 {
			return true
		}
		if !s.send(ctx, part, lines, dropped) {
			return false
		}
	}
}

// take removes up to partSize of completed lines.
func (s *lineStream) take() (part []byte, lines, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.lines) > 0 && (lines == 0 || len(part)+len(s.lines[0]) <= partSize) {
		part = append(part, s.lines[0]...)
		s.size -= len(s.lines[0])
		s.lines = s.lines[1:]
		lines++
	}
	dropped, s.dropped = s.dropped, 0
	return part, lines, dropped
}

// send numbers a part in the ledger, then publishes it and waits until the
// broker stored it, trying again while the link is down. It returns false
// when ctx ends first.
func (s *lineStream) send(ctx context.Context, data []byte, lines, dropped int) bool {
	if dropped > 0 {
		data = append(fmt.Appendf(nil, "steward: %d lines dropped here: the link was down and more than %d MiB waited\n", dropped, maxPending>>20), data...)
		lines++
	}
	first := s.next
	backoff := 100 * time.Millisecond
	for try := 1; ; try++ {
		err := s.n.ledger.Progress(s.d.key, first+uint64(lines)-1)
		if err == nil {
			err = s.publish(ctx, data, first, lines)
		}
		if err == nil {
			s.next += uint64(lines)
			s.restart = false
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if try == 1 {
			s.d.log.Warn("streamed output not sent yet; trying again", "error", err, "first_line", first)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *lineStream) publish(ctx context.Context, data []byte, first uint64, lines int) error {
	m := s.n.replyMessage(ctx, s.d, string(status.Running), data)
	m.Reply.Seq, m.Reply.Lines, m.Reply.Restart = first, lines, s.restart
	f, err := s.n.publishAnswer(ctx, s.d, m, partKey(m.Reply.DeliveryID, first), m.StorageTTL(m.SentAt))
	if err != nil {
		return err
	}
	return stream.Await(ctx, f)
}

// close sends what is left (a last line without a newline too), once the
// method stopped writing, and stops the stream. It returns the number of
// the next line, and whether everything was sent (false when the stream's
// context ended first).
func (s *lineStream) close() (uint64, bool) {
	s.mu.Lock()
	writers := s.writers
	s.mu.Unlock()
	for _, w := range writers {
		w.flushPartial()
	}
	close(s.closing)
	<-s.done
	return s.next, s.sent
}

// partKey is the ledger key and deduplication ID of the part of a reply
// to deliveryID that starts at line seq.
func partKey(deliveryID string, seq uint64) string {
	return deliveryID + ".reply.line." + strconv.FormatUint(seq, 10)
}

// replyMessage is a reply to d's request carrying data, with the reply
// status st. Its sentAt is on the broker's clock, as the request's is, so
// that the round trip and the reply's deadline do not carry this node's
// clock error.
func (n *Node) replyMessage(ctx context.Context, d *delivery, st string, data []byte) *message.Message {
	m := d.msg
	replyMethod := m.ReplyMethod
	if replyMethod == "" {
		replyMethod = methods.DefaultReplyMethod
	}
	r := &message.Message{
		ToNode: m.FromNode, Method: replyMethod, MethodArgs: m.ReplyMethodArgs, Data: data,
		ACKTimeout: m.ReplyACKTimeout, Retries: m.ReplyRetries, MethodTimeout: m.ReplyMethodTimeout,
		Directory: m.Directory, FileName: m.FileName,
		ID: m.ID, FromNode: n.cfg.NodeName, SentAt: n.sender.Now(ctx).UTC(),
		Reply: &message.ReplyInfo{
			DeliveryID: message.DeliveryID(m.ID, n.cfg.NodeName), Method: m.Method, Status: st,
			RequestSentAt: m.SentAt, Chunk: 0, Chunks: 1, RequestSeq: d.lease.Meta().Sequence.Stream,
		},
	}
	r.Deadline = r.SentAt.Add(n.cfg.DefaultDeliveryDeadline)
	return r
}

// The receiving side: parts of one delivery's streamed output are applied
// in order, each once. The number of the next line to apply is kept in the
// delivery's chunk folder (swept like abandoned chunks, so a late copy of
// a part finds it long after the final reply).

// gapTries is how many times a part waits (a second each) for the parts
// before it, which are in the queue ahead of it, before it is applied with
// a note of the lines that never came.
const gapTries = 10

// streamGate decides what to do with a streamed reply part, or the final
// reply of a streamed output, on its arrival: apply it now (with data
// possibly prefixed by a note of lost lines), or wait, or drop a part
// already applied. The caller holds n.streamMu.
func (n *Node) streamGate(d *delivery) (apply bool, wait bool, err error) {
	r := d.msg.Reply
	next, err := n.chunks.nextLine(r.DeliveryID)
	if err != nil {
		return false, false, err
	}
	end := r.Seq + uint64(r.Lines) // one past the last line this reply covers
	switch {
	case r.Part() && end <= next:
		return false, false, nil // applied before
	case r.Seq > next && d.lease.Meta().NumDelivered < gapTries:
		return false, true, nil
	case r.Seq > next:
		note := fmt.Appendf(nil, "steward: lines %d to %d of this output never arrived\n", next, r.Seq-1)
		if r.Restart {
			note = fmt.Appendf(nil, "steward: lines %d to %d of this output were lost when %s restarted the method\n", next, r.Seq-1, d.msg.FromNode)
		}
		d.msg.Data = append(note, d.msg.Data...)
	case r.Part() && r.Seq < next:
		// Overlaps lines applied before: keep the new ones.
		d.msg.Data = dropLines(d.msg.Data, int(next-r.Seq))
	}
	if r.Restart && r.Seq >= next {
		d.msg.Data = append(fmt.Appendf(nil, "steward: %s restarted the method here (its node stopped or died while it ran); what follows is its new run\n", d.msg.FromNode), d.msg.Data...)
	}
	return true, false, nil
}

// streamApplied records that the reply d carries was applied.
func (n *Node) streamApplied(d *delivery) error {
	r := d.msg.Reply
	return n.chunks.setNextLine(r.DeliveryID, r.Seq+uint64(r.Lines))
}

// dropLines removes the first k lines of data.
func dropLines(data []byte, k int) []byte {
	for ; k > 0 && len(data) > 0; k-- {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil
		}
		data = data[i+1:]
	}
	return data
}

// nextLine is the number of the next line of deliveryID's streamed output
// to apply (1 when none was).
func (c *chunkStore) nextLine(deliveryID string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(c.dir, deliveryID, "next-line"))
	if errors.Is(err, os.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("streamed output of %s: %w", deliveryID, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("streamed output of %s: %w", deliveryID, err)
	}
	return v, nil
}

// setNextLine records the number of the next line to apply, on disk
// before it returns.
func (c *chunkStore) setNextLine(deliveryID string, next uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := filepath.Join(c.dir, deliveryID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("streamed output of %s: %w", deliveryID, err)
	}
	name := filepath.Join(dir, "next-line")
	f, err := os.OpenFile(name+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("streamed output of %s: %w", deliveryID, err)
	}
	_, err = f.WriteString(strconv.FormatUint(next, 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name+".tmp", name)
	}
	if err != nil {
		return fmt.Errorf("streamed output of %s: %w", deliveryID, err)
	}
	return nil
}
