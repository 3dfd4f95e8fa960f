package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
)

// limitValue is the value of --max-concurrency and --max-errors: a number
// of deliveries, or a percentage of the send's deliveries ("10%").
type limitValue struct {
	n   int
	pct bool
	set bool
}

var _ pflag.Value = (*limitValue)(nil)

func (l *limitValue) Set(s string) error {
	s = strings.TrimSpace(s)
	num, pct := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(num)
	switch {
	case err != nil:
		return fmt.Errorf("%q: want a number of deliveries (10) or a percentage (10%%)", s)
	case n < 1:
		return fmt.Errorf("%q: must be at least 1", s)
	case pct && n > 100:
		return fmt.Errorf("%q: a percentage is at most 100%%", s)
	}
	*l = limitValue{n: n, pct: pct, set: true}
	return nil
}

func (l *limitValue) String() string {
	switch {
	case !l.set:
		return ""
	case l.pct:
		return strconv.Itoa(l.n) + "%"
	}
	return strconv.Itoa(l.n)
}

func (l *limitValue) Type() string { return "N|N%" }

// of is the limit for a send of total deliveries: a percentage is rounded
// up, and is at least 1.
func (l *limitValue) of(total int) int {
	if !l.pct {
		return l.n
	}
	return max(1, (total*l.n+99)/100)
}

// rollout sends held messages (client.SendOptions.Hold) in waves: at most
// limit deliveries of the send not yet terminal at once, in the order of
// the messages and their targets, and none after maxErrors deliveries
// failed (0: no such stop). Every wave is part of its message, under its
// one ID. Its update is the progress function of WaitWith: when a
// delivery ends it sends the next.
type rollout struct {
	fl        fleet
	limit     int
	maxErrors int

	mu       sync.Mutex
	queue    []rolloutTarget // not sent yet, in order
	inflight int
	failed   int
	ended    map[string]bool // delivery keys seen terminal
	// stopped says why no more is sent ("" while sending goes on).
	stopped string
	// withheld are the records of the deliveries not sent, and errs what
	// went wrong writing them.
	withheld []*status.Record
	errs     []error
}

// rolloutTarget is one delivery still to send.
type rolloutTarget struct {
	m    *message.Message
	node string
}

func newRollout(fl fleet, receipts []client.Receipt, limit, maxErrors int) *rollout {
	r := &rollout{fl: fl, limit: limit, maxErrors: maxErrors, ended: map[string]bool{}}
	for _, rc := range receipts {
		if rc.Message == nil || !rc.OK() {
			continue
		}
		for _, n := range rc.Nodes {
			r.queue = append(r.queue, rolloutTarget{m: rc.Message, node: n})
		}
	}
	return r
}

// start sends the first wave.
func (r *rollout) start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fill(ctx)
}

// update takes a status change: a delivery that ended frees its slot (and
// counts as an error unless it succeeded), and the next are sent.
func (r *rollout) update(ctx context.Context, rec *status.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Reply || !rec.Status.Terminal() || r.ended[rec.Key()] {
		return
	}
	r.ended[rec.Key()] = true
	r.inflight--
	if !rec.Status.Success() {
		r.failed++
		if r.maxErrors > 0 && r.failed >= r.maxErrors && r.stopped == "" && len(r.queue) > 0 {
			r.stop(ctx, fmt.Sprintf("--max-errors %d reached (%d deliveries did not succeed)", r.maxErrors, r.failed))
		}
	}
	r.fill(ctx)
}

// fill sends queued deliveries while there are free slots, one Publish
// per message and wave.
func (r *rollout) fill(ctx context.Context) {
	for r.stopped == "" && len(r.queue) > 0 && r.inflight < r.limit {
		n := min(r.limit-r.inflight, len(r.queue))
		wave := r.queue[:n]
		// One message's consecutive targets go together.
		m, k := wave[0].m, 1
		for k < len(wave) && wave[k].m == m {
			k++
		}
		nodes := make([]string, k)
		for i := range k {
			nodes[i] = wave[i].node
		}
		if err := r.fl.Publish(ctx, m, nodes); err != nil {
			r.stop(ctx, fmt.Sprintf("sending to %s failed: %v", strings.Join(nodes, ","), err))
			return
		}
		r.queue = r.queue[k:]
		r.inflight += k
	}
}

// more reports whether deliveries are still to be sent: WaitWith waits
// for them too.
func (r *rollout) more() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped == "" && len(r.queue) > 0
}

// notYet is how many deliveries are not sent (yet).
func (r *rollout) notYet() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// stop ends the sending: every delivery not sent gets a cancelled
// record (code not_sent) that says why, which also lets WaitWith see
// every message of the send.
func (r *rollout) stop(ctx context.Context, why string) {
	if r.stopped == "" {
		r.stopped = why
	}
	reason := "not sent: " + r.stopped
	for len(r.queue) > 0 {
		m, k := r.queue[0].m, 1
		for k < len(r.queue) && r.queue[k].m == m {
			k++
		}
		var nodes []string
		for _, t := range r.queue[:k] {
			nodes = append(nodes, t.node)
			r.withheld = append(r.withheld, &status.Record{ID: m.ID, Node: t.node, FromNode: m.FromNode, Method: m.Method,
				Status: status.Cancelled, Error: reason, ErrorCode: sender.CodeNotSent, SentAt: m.SentAt, Deadline: m.Deadline})
		}
		if err := r.fl.Withhold(ctx, m, nodes, reason); err != nil {
			r.errs = append(r.errs, err)
		}
		r.queue = r.queue[k:]
	}
}

// finish withholds what is still not sent when the wait ended first (why
// says how), and returns the records of every delivery not sent.
func (r *rollout) finish(ctx context.Context, why string) ([]*status.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stop(ctx, why)
	return r.withheld, errors.Join(r.errs...)
}
