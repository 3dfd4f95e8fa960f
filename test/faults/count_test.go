package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/fleettest"
)

// record is the part of a status record the harness reads.
type record struct {
	ID        string    `json:"id"`
	Node      string    `json:"node"`
	Status    string    `json:"status"`
	Reply     bool      `json:"reply"`
	ReplySent bool      `json:"replySent"`
	Attempt   uint64    `json:"attempt"`
	Error     string    `json:"error"`
	ErrorCode string    `json:"errorCode"`
	Output    string    `json:"output"`
	Stderr    string    `json:"stderr"`
	Deadline  time.Time `json:"deadline"`
	UpdatedAt time.Time `json:"updatedAt"`
}

var terminalStates = []string{"succeeded", "failed", "execution_timed_out", "delivery_timed_out", "undeliverable", "rejected", "cancelled"}

func terminal(s string) bool { return slices.Contains(terminalStates, s) }

// history is every stored state of one status key, oldest first. A
// deleted or purged key shows as "<delete>" or "<purge>".
type history struct {
	states []string
	recs   []record
}

func (h *history) latest() *record {
	if h == nil || len(h.recs) == 0 {
		return nil
	}
	return &h.recs[len(h.recs)-1]
}

// changedAfterTerminal returns the entries written after the first
// terminal one (nil if none).
func (h *history) changedAfterTerminal() []string {
	if h == nil {
		return nil
	}
	for i, s := range h.states {
		if terminal(s) {
			return h.states[i+1:]
		}
	}
	return nil
}

func (h *history) String() string {
	if h == nil {
		return "(no record)"
	}
	var b strings.Builder
	for i, r := range h.recs {
		if i > 0 {
			b.WriteString(" → ")
		}
		b.WriteString(h.states[i])
		if r.Attempt > 0 {
			fmt.Fprintf(&b, "#%d", r.Attempt)
		}
		if !r.UpdatedAt.IsZero() {
			fmt.Fprintf(&b, "@%s", stamp(r.UpdatedAt))
		}
		if r.ErrorCode != "" {
			fmt.Fprintf(&b, "(%s)", r.ErrorCode)
		}
	}
	return b.String()
}

// readStatuses reads the history of every key of the status bucket.
func readStatuses(js jetstream.JetStream) (map[string]*history, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, statusBucket)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", statusBucket, err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IncludeHistory())
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", statusBucket, err)
	}
	defer w.Stop()
	out := map[string]*history{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read %s: %w", statusBucket, ctx.Err())
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			h := out[e.Key()]
			if h == nil {
				h = &history{}
				out[e.Key()] = h
			}
			var r record
			switch e.Operation() {
			case jetstream.KeyValueDelete:
				r.Status = "<delete>"
			case jetstream.KeyValuePurge:
				r.Status = "<purge>"
			default:
				if err := json.Unmarshal(e.Value(), &r); err != nil {
					r.Status = "<not json>"
				}
			}
			h.states = append(h.states, r.Status)
			h.recs = append(h.recs, r)
		}
	}
}

// replyLines counts the lines of id's reply file on central that are the
// ID (the command prints nothing else), and returns the file's content.
func replyLines(f *fleet, m *msg) (int, string) {
	b, err := os.ReadFile(filepath.Join(f.Dir(central), "data", "faults", m.Node, m.ID+".out"))
	if err != nil {
		return 0, ""
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == m.ID {
			n++
		}
	}
	return n, string(b)
}

// settled reports whether every accepted message has ended (and its reply
// was handled, if it sent one), or what it still waits for.
func settled(f *fleet, ms []*msg) (bool, string) {
	st, err := readStatuses(f.jetStream())
	if err != nil {
		return false, err.Error()
	}
	waiting := 0
	var first string
	for _, m := range ms {
		if !m.accepted {
			continue
		}
		r := st[m.ID+"."+m.Node].latest()
		done := r != nil && terminal(r.Status)
		if done && r.ReplySent {
			// Central records the reply once it has written the file.
			reply := st[m.ID+"."+m.Node+".reply"].latest()
			done = reply != nil && terminal(reply.Status)
		}
		if !done {
			waiting++
			if first == "" {
				first = fmt.Sprintf("%s.%s: %s", m.ID, m.Node, st[m.ID+"."+m.Node])
			}
		}
	}
	if waiting > 0 {
		return false, fmt.Sprintf("%d messages not done, e.g. %s", waiting, first)
	}
	return true, ""
}

// row is one line of the table: what became of one scenario's messages.
type row struct {
	scenario string
	sent, accepted, executed, twice, reruns, replies, replyDoubled,
	terminal, changed, late, unexpected, lost int
	note     string
	evidence []string
}

func (r *row) violations() int {
	return r.twice + r.replyDoubled + r.changed + r.late + r.unexpected + r.lost
}

// settleAndCount waits for the scenario's messages to settle, then counts
// them into a row.
func settleAndCount(f *fleet, sz sizes, scenario string, ms []*msg, note string, nodes []string) *row {
	t := f.t
	t.Helper()
	var why string
	began := time.Now()
	ok := fleettest.Poll(sz.settle, func() bool {
		var done bool
		if done, why = settled(f, ms); !done {
			return false
		}
		done, why = f.drained(append([]string{central}, nodes...)...)
		return done
	})
	if !ok {
		t.Errorf("%s: not settled after %s: %s", scenario, sz.settle, why)
	} else {
		t.Logf("%s: settled %s after the faults ended", scenario, time.Since(began).Round(100*time.Millisecond))
	}
	// A record changed after its terminal state would show by now; give
	// a late redelivery (AckWait is 2 s) the time to try.
	time.Sleep(5 * time.Second)
	f.checkAlive()
	return count(f, scenario, ms, note)
}

// count counts ms into a row (see the package comment for each column).
func count(f *fleet, scenario string, ms []*msg, note string) *row {
	t := f.t
	t.Helper()
	r := &row{scenario: scenario, note: note}
	st, err := readStatuses(f.jetStream())
	if err != nil {
		t.Errorf("%s: %v", scenario, err)
		st = map[string]*history{}
	}
	rl, err := readRuns(f.runsLog, commandAlive)
	if err != nil {
		t.Fatalf("%s: runs log: %v", scenario, err)
	}
	for _, line := range rl.bad {
		t.Logf("%s: runs log line not understood: %q", scenario, line)
	}
	stops := f.Stops()
	byState := map[string]int{}
	withStderr, stderrExample, fromRecord := 0, "", 0
	for _, m := range ms {
		r.sent++
		if m.accepted {
			r.accepted++
		}
		key := m.ID + "." + m.Node
		h, hr := st[key], st[key+".reply"]
		last := h.latest()
		state := "(none)"
		if last != nil {
			state = last.Status
		}
		var fires time.Time
		if last != nil && !last.Deadline.IsZero() && m.Deadline < 300 {
			fires = last.Deadline.Add(time.Second).Truncate(time.Second)
		}
		runs := rl.runs[m.ID]
		v := judge(runs, stops, fires, state == "delivery_timed_out")
		replies, content := replyLines(f, m)

		var problems []string
		if v.runs > 0 {
			r.executed++
		}
		if v.twice != "" {
			r.twice++
			problems = append(problems, "executed twice: "+v.twice)
		}
		r.reruns += v.crashReruns
		if v.crashReruns > 1000 {
			problems = append(problems, fmt.Sprintf("%d reruns, more than its 1000 retries", v.crashReruns))
		}
		if v.late != "" {
			r.late++
			problems = append(problems, "ran after deadline: "+v.late)
		}
		switch {
		case replies == 1:
			r.replies++
		case replies > 1:
			r.replyDoubled++
			problems = append(problems, fmt.Sprintf("reply file holds the ID %d times: %q", replies, content))
		}
		switch {
		case last == nil || last.Stderr == "":
		case onlyStewardNotes(last.Stderr):
			// A note of steward's own, e.g. an outcome finished from
			// its run record after the node died.
			fromRecord++
		default:
			// The command writes nothing to its standard error.
			withStderr++
			if stderrExample == "" {
				stderrExample = fmt.Sprintf("%s: %q", key, firstLine(last.Stderr))
			}
		}
		if terminal(state) {
			r.terminal++
			byState[state]++
			if !slices.Contains(m.Expect, state) {
				r.unexpected++
				problems = append(problems, fmt.Sprintf("ended %s (%s), expected %s", state, last.Error, strings.Join(m.Expect, " or ")))
			}
		}
		changed := 0
		for _, hh := range []*history{h, hr} {
			if c := hh.changedAfterTerminal(); len(c) > 0 {
				changed++
				problems = append(problems, fmt.Sprintf("changed after terminal: %v", c))
			}
		}
		if changed > 0 {
			r.changed++
		}
		if m.accepted {
			var lost string
			switch {
			case !terminal(state):
				lost = "no terminal status (" + state + ")"
			case state == "succeeded" && !v.ended:
				lost = "succeeded, but no run of its command ended"
			case state == "succeeded" && replies == 0:
				lost = "succeeded, but no reply file with its ID"
			case state == "succeeded" && (hr.latest() == nil || !terminal(hr.latest().Status)):
				lost = "succeeded, but its reply record never ended (steward send --wait would not return)"
			}
			if lost != "" {
				r.lost++
				problems = append(problems, "lost: "+lost)
			}
		} else if v.runs > 0 || last != nil {
			t.Logf("%s: %s was never accepted (%d tries, last: %s) but has runs %d, status %s", scenario, m.ID, m.tries, m.lastError, v.runs, state)
		}
		if len(problems) > 0 {
			r.evidence = append(r.evidence, evidence(f, m, problems, h, hr, rl))
		}
	}
	var states []string
	for s, n := range byState {
		states = append(states, fmt.Sprintf("%d %s", n, s))
	}
	slices.Sort(states)
	resent, queued, notAccepted := 0, 0, 0
	for _, m := range ms {
		resent += m.resent
		if m.queued {
			queued++
		}
		if !m.accepted {
			notAccepted++
		}
	}
	extra := fmt.Sprintf("terminal: %s; %d sent again after acceptance, %d queued in an outbox", strings.Join(states, ", "), resent, queued)
	if notAccepted > 0 {
		extra += fmt.Sprintf(", %d never accepted", notAccepted)
	}
	if fromRecord > 0 {
		extra += fmt.Sprintf("; %d outcomes with a note of steward's (e.g. finished from a run record)", fromRecord)
	}
	if withStderr > 0 {
		extra += fmt.Sprintf("; SUSPICIOUS: %d records carry a standard error the command never wrote, e.g. %s", withStderr, stderrExample)
		t.Logf("%s: SUSPICIOUS: %d status records carry a standard error the command never wrote, e.g. %s", scenario, withStderr, stderrExample)
	}
	if r.note != "" {
		r.note += "; "
	}
	r.note += extra
	return r
}

// evidence describes one message that broke a rule: what broke, its status
// history, its runs, and the node log lines that name it.
func evidence(f *fleet, m *msg, problems []string, h, hr *history, rl *runsLog) string {
	var b strings.Builder
	fmt.Fprintf(&b, "VIOLATION %s to %s (sleep %s, deadline %ds, %d send tries, sent again %d times):\n", m.ID, m.Node, m.Sleep, m.Deadline, m.tries, m.resent)
	for _, p := range problems {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	fmt.Fprintf(&b, "  status history: %s\n", h)
	fmt.Fprintf(&b, "  reply history:  %s\n", hr)
	fmt.Fprintf(&b, "  runs log:\n")
	for _, line := range rl.lines[m.ID] {
		fmt.Fprintf(&b, "    %s\n", line)
	}
	for _, s := range f.Stops() {
		if s.Node == m.Node && !m.firstSend.IsZero() && s.Until.After(m.firstSend.Add(-time.Second)) &&
			(len(rl.runs[m.ID]) == 0 || s.At.Before(rl.runs[m.ID][len(rl.runs[m.ID])-1].start.Add(10*time.Second))) {
			fmt.Fprintf(&b, "  harness: %s %s at %s (exited %s)\n", s.Node, s.Signal, stamp(s.At), stamp(s.Until))
		}
	}
	for _, node := range []string{m.Node, central} {
		lines := f.logGrep(node, m.ID, 30)
		if len(lines) > 0 {
			fmt.Fprintf(&b, "  %s's log:\n", node)
			for _, l := range lines {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
	return b.String()
}

// onlyStewardNotes reports whether every line of stderr is a note steward
// adds to a command's standard error ("steward: …").
func onlyStewardNotes(stderr string) bool {
	for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if !strings.HasPrefix(line, "steward: ") {
			return false
		}
	}
	return true
}
