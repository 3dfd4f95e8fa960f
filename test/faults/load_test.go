package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// msg is one message the harness sends, and what became of sending it.
type msg struct {
	ID     string
	Node   string
	Sleep  time.Duration
	Expect []string // terminal states that are right for it
	// Deadline is the deliveryDeadline in seconds.
	Deadline int

	// Set by the sender.
	tries     int
	accepted  bool
	queued    bool // a receipt said it waits in an outbox
	resent    int  // sent again after it was accepted
	firstSend time.Time
	lastError string
}

// wire is the message as steward takes it.
func (m *msg) wire(runsLog string) map[string]any {
	return map[string]any{
		"id":               m.ID,
		"toNode":           m.Node,
		"method":           "REQCliCommand",
		"methodArgs":       []string{"sh", "-c", script(runsLog, m.ID, m.Node, m.Sleep)},
		"methodTimeout":    120,
		"retries":          1000,
		"ACKTimeout":       2,
		"deliveryDeadline": m.Deadline,
		"directory":        "faults",
		"fileName":         m.ID + ".out",
	}
}

// receipt is the part of a `steward send -o json` receipt the harness
// reads.
type receipt struct {
	Index     int    `json:"index"`
	ID        string `json:"id"`
	Error     string `json:"error"`
	Code      string `json:"code"`
	Duplicate bool   `json:"duplicate"`
	Queued    bool   `json:"queued"`
}

// sender sends messages through `steward send` and keeps every message it
// was asked to send.
type sender struct {
	f   *fleet
	mu  sync.Mutex
	all []*msg
	// operator says where the last `steward send` ran; the calls take
	// turns between central's folder (where an outbox keeps messages
	// while the broker is away) and a plain operator folder (where a send
	// fails while the broker is away, and the harness sends it again).
	operator bool
	calls    int
	failures int      // calls that reported no receipt at all
	refused  []string // receipts that refused a message for another reason than the broker
}

func newSender(f *fleet) *sender {
	if err := os.MkdirAll(filepath.Join(f.Root(), "operator"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	return &sender{f: f}
}

// messages returns every message asked for so far.
func (s *sender) messages() []*msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}

// send sends ms (new or not yet accepted) and resend (already accepted,
// sent again on purpose) in one call of `steward send`. It returns how
// many of ms were accepted.
func (s *sender) send(ms []*msg, resend []*msg) int {
	s.mu.Lock()
	for _, m := range ms {
		if m.tries == 0 {
			s.all = append(s.all, m)
			m.firstSend = time.Now()
		}
		m.tries++
	}
	for _, m := range resend {
		m.resent++
	}
	s.operator = !s.operator
	operator := s.operator
	s.calls++
	s.mu.Unlock()

	batch := append(slices.Clone(ms), resend...)
	var input []map[string]any
	for _, m := range batch {
		input = append(input, m.wire(s.f.runsLog))
	}
	data, err := json.Marshal(input)
	if err != nil {
		panic(err)
	}
	dir, args := s.f.Dir(central), []string{"send", "-f", "-", "-o", "json"}
	if operator {
		dir = filepath.Join(s.f.Root(), "operator")
		args = append(args, "--node-name", central, "--broker-address", s.f.BrokerURL())
	}
	out, errOut, code, err := s.f.Command(dir, data, 30*time.Second, args...)
	if err != nil {
		errOut += err.Error()
	}
	var res struct {
		Receipts []receipt `json:"receipts"`
	}
	if json.Unmarshal([]byte(out), &res) != nil {
		res.Receipts = nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(res.Receipts) == 0 {
		s.failures++
	}
	got := 0
	for i, m := range batch {
		var r *receipt
		for j := range res.Receipts {
			if res.Receipts[j].Index == i {
				r = &res.Receipts[j]
			}
		}
		switch {
		case r == nil:
			m.lastError = fmt.Sprintf("exit %d, no receipt: %s", code, firstLine(errOut))
		case r.Error != "":
			m.lastError = fmt.Sprintf("exit %d: %s (%s)", code, r.Error, r.Code)
			if r.Code != "publish_failed" {
				// The same message sent again is never wrong input.
				s.refused = append(s.refused, fmt.Sprintf("%s (try %d, sent again %d times): %s", m.ID, m.tries, m.resent, m.lastError))
			}
		case r.ID != m.ID:
			m.lastError = fmt.Sprintf("receipt for %s has id %q", m.ID, r.ID)
		default:
			if i < len(ms) {
				got++
			}
			m.accepted = true
			m.queued = m.queued || r.Queued
		}
	}
	return got
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// load keeps sending: every interval one batch of new messages made by
// gen, with the messages not yet accepted, and now and then one message
// sent again that was accepted before. It returns when ctx ends.
func (s *sender) load(ctx context.Context, interval time.Duration, gen func() []*msg) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ms := append(s.unaccepted(), gen()...)
		s.send(ms, s.pickResend())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// unaccepted returns the messages no receipt has accepted yet.
func (s *sender) unaccepted() []*msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*msg
	for _, m := range s.all {
		if !m.accepted {
			out = append(out, m)
		}
	}
	return out
}

// pickResend picks, one time in three, an accepted message to send again.
func (s *sender) pickResend() []*msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) == 0 || rand.IntN(3) != 0 {
		return nil
	}
	m := s.all[rand.IntN(len(s.all))]
	if !m.accepted {
		return nil
	}
	return []*msg{m}
}

// finish sends the messages not accepted yet again until they are, or
// until timeout. It returns how many are still not accepted.
func (s *sender) finish(timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		left := s.unaccepted()
		if len(left) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			return len(left)
		}
		s.send(left, nil)
		time.Sleep(500 * time.Millisecond)
	}
}

// idGen makes message IDs: a prefix and a counter.
type idGen struct {
	prefix string
	mu     sync.Mutex
	n      int
}

func (g *idGen) next() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	return fmt.Sprintf("%s%05d", g.prefix, g.n)
}

// sleepBetween is a random duration in [lo, hi], in tenths of a second.
func sleepBetween(lo, hi time.Duration) time.Duration {
	tenths := int(lo/(100*time.Millisecond)) + rand.IntN(int((hi-lo)/(100*time.Millisecond))+1)
	return time.Duration(tenths) * 100 * time.Millisecond
}
