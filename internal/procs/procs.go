// Package procs is a node's process table: which methods it serves and
// for whom (the original steward's subscriber processes, switched with its
// -startSubREQ… flags and REQOpProcessStart/Stop), and which deliveries
// it is running now. A method that is stopped answers "method not
// running"; stopping it also stops its running deliveries. Only requests
// are gated: replies and steward's own events (hello, error reports) are
// always handled, since they carry results and reports the node itself
// asked for or must keep.
//
// The table is the node's own and lives in memory: a restarted node serves
// what its configuration says. The node publishes a snapshot (Snapshot) to
// the broker for `steward ps`.
package procs

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

var (
	// ErrNotRunning: the method is stopped on this node.
	ErrNotRunning = errors.New("method not running")
	// ErrSenderNotAllowed: the method runs, but not for this sender.
	ErrSenderNotAllowed = errors.New("method not running for this sender")
	// ErrUnknown: no such method, or no such running delivery.
	ErrUnknown = errors.New("no such process")
)

// Method is one method's process.
type Method struct {
	Name    string `json:"method"`
	Running bool   `json:"running"`
	// Senders are the nodes it runs for; empty: every node.
	Senders []string  `json:"senders,omitempty"`
	Since   time.Time `json:"since"`
}

// Run is a delivery the node is running now.
type Run struct {
	ID      string    `json:"id"` // the delivery: <message id>.<node>
	Method  string    `json:"method"`
	From    string    `json:"from"`
	Started time.Time `json:"started"`
}

// Snapshot is the table at one moment.
type Snapshot struct {
	Node    string    `json:"node"`
	At      time.Time `json:"at"`
	Methods []Method  `json:"methods"`
	Running []Run     `json:"running"`
}

// Table is a node's process table. It is safe for concurrent use.
type Table struct {
	node string
	now  func() time.Time

	mu       sync.Mutex
	methods  map[string]*Method
	running  map[string]*run
	onChange func()
}

type run struct {
	Run
	stop func(reason string)
}

// Senders is how a method is configured: "" or "*" runs it for every
// node, "off" stops it, anything else lists the nodes it runs for
// (separated by spaces or commas).
func parseSenders(spec string) (running bool, senders []string) {
	spec = strings.TrimSpace(spec)
	switch strings.ToLower(spec) {
	case "", "*", "true", "on":
		return true, nil
	case "off", "false":
		return false, nil
	}
	for _, s := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ' ' }) {
		if s == "*" {
			return true, nil
		}
		senders = append(senders, s)
	}
	return true, senders
}

// New builds the table of a node serving methods (canonical names), each
// as configured (see parseSenders; a method not in config runs for every
// node). It fails on a configured method that is not in methods.
func New(node string, methods []string, config map[string]string, now func() time.Time) (*Table, error) {
	if now == nil {
		now = time.Now
	}
	t := &Table{node: node, now: now, methods: map[string]*Method{}, running: map[string]*run{}}
	at := now().UTC()
	for _, name := range methods {
		t.methods[name] = &Method{Name: name, Running: true, Since: at}
	}
	for name, spec := range config {
		m, ok := t.methods[name]
		if !ok {
			return nil, fmt.Errorf("methods: %q is not a method this node serves: %w", name, ErrUnknown)
		}
		m.Running, m.Senders = parseSenders(spec)
	}
	return t, nil
}

// Notify sets a function called (outside the table's lock) after every
// change.
func (t *Table) Notify(f func()) {
	t.mu.Lock()
	t.onChange = f
	t.mu.Unlock()
}

func (t *Table) changed() {
	t.mu.Lock()
	f := t.onChange
	t.mu.Unlock()
	if f != nil {
		f()
	}
}

// Allows reports whether method runs for sender from.
func (t *Table) Allows(method, from string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.methods[method]
	switch {
	case !ok:
		return nil // not a served method (an event, a reply): not gated
	case !m.Running:
		return fmt.Errorf("%s: %w on %s", method, ErrNotRunning, t.node)
	case len(m.Senders) > 0 && !slices.Contains(m.Senders, from):
		return fmt.Errorf("%s: %w %s on %s (it runs for %s)", method, ErrSenderNotAllowed, from, t.node, strings.Join(m.Senders, ", "))
	}
	return nil
}

// Start starts method for senders (none: every node), or changes whom a
// running method serves.
func (t *Table) Start(method string, senders []string) (string, error) {
	t.mu.Lock()
	m, ok := t.methods[method]
	if !ok {
		t.mu.Unlock()
		return "", fmt.Errorf("%q: %w: this node serves %s", method, ErrUnknown, strings.Join(t.names(), ", "))
	}
	was := m.Running
	m.Running, m.Senders = true, slices.Clone(senders)
	if !was {
		m.Since = t.now().UTC()
	}
	t.mu.Unlock()
	t.changed()
	whom := "every node"
	if len(senders) > 0 {
		whom = strings.Join(senders, ", ")
	}
	if was {
		return fmt.Sprintf("%s was running on %s; it now runs for %s", method, t.node, whom), nil
	}
	return fmt.Sprintf("%s started on %s for %s", method, t.node, whom), nil
}

// Stop stops method: its messages are rejected from now on, and each of
// its running deliveries is stopped. Only the delivery id is stopped when
// id is given (the method keeps running).
func (t *Table) Stop(method, id, reason string) (string, error) {
	t.mu.Lock()
	if id != "" {
		r, ok := t.running[id]
		if !ok || method != "" && r.Method != method {
			t.mu.Unlock()
			return "", fmt.Errorf("delivery %s of %s: %w running on %s", id, method, ErrUnknown, t.node)
		}
		stop := r.stop
		t.mu.Unlock()
		stop(reason)
		t.changed()
		return fmt.Sprintf("stopped delivery %s (%s) on %s", id, r.Method, t.node), nil
	}
	m, ok := t.methods[method]
	if !ok {
		t.mu.Unlock()
		return "", fmt.Errorf("%q: %w: this node serves %s", method, ErrUnknown, strings.Join(t.names(), ", "))
	}
	was := m.Running
	m.Running, m.Senders, m.Since = false, nil, t.now().UTC()
	var stops []func(string)
	var ids []string
	for _, r := range t.running {
		if r.Method == method {
			stops, ids = append(stops, r.stop), append(ids, r.ID)
		}
	}
	t.mu.Unlock()
	for _, stop := range stops {
		stop(reason)
	}
	t.changed()
	sort.Strings(ids)
	msg := fmt.Sprintf("%s stopped on %s", method, t.node)
	if !was {
		msg = fmt.Sprintf("%s was not running on %s", method, t.node)
	}
	if len(ids) > 0 {
		msg += fmt.Sprintf("; stopped its running deliveries %s", strings.Join(ids, ", "))
	}
	return msg, nil
}

// Enter records a delivery that starts running; stop ends it (with the
// reason it is given). Leave removes it.
func (t *Table) Enter(id, method, from string, stop func(reason string)) {
	t.mu.Lock()
	t.running[id] = &run{Run: Run{ID: id, Method: method, From: from, Started: t.now().UTC()}, stop: stop}
	t.mu.Unlock()
	t.changed()
}

// Leave removes a delivery that ended.
func (t *Table) Leave(id string) {
	t.mu.Lock()
	_, ok := t.running[id]
	delete(t.running, id)
	t.mu.Unlock()
	if ok {
		t.changed()
	}
}

// Snapshot returns the table, methods and deliveries sorted by name.
func (t *Table) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Snapshot{Node: t.node, At: t.now().UTC(), Methods: []Method{}, Running: []Run{}}
	for _, name := range t.names() {
		m := *t.methods[name]
		m.Senders = slices.Clone(m.Senders)
		s.Methods = append(s.Methods, m)
	}
	for _, r := range t.running {
		s.Running = append(s.Running, r.Run)
	}
	sort.Slice(s.Running, func(i, j int) bool { return s.Running[i].ID < s.Running[j].ID })
	return s
}

// String is the snapshot as text: one line per method, then one per
// running delivery.
func (s Snapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "processes on %s at %s\n", s.Node, s.At.Format(time.RFC3339))
	for _, m := range s.Methods {
		state, whom := "stopped", ""
		if m.Running {
			state, whom = "running", " for every node"
			if len(m.Senders) > 0 {
				whom = " for " + strings.Join(m.Senders, ", ")
			}
		}
		fmt.Fprintf(&b, "method %s %s%s since %s\n", m.Name, state, whom, m.Since.Format(time.RFC3339))
	}
	for _, r := range s.Running {
		fmt.Fprintf(&b, "delivery %s %s from %s running since %s\n", r.ID, r.Method, r.From, r.Started.Format(time.RFC3339))
	}
	return b.String()
}

func (t *Table) names() []string {
	names := make([]string, 0, len(t.methods))
	for n := range t.methods {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ParseConfig reads the methods setting: "method=senders" pairs separated
// by ';' (or new lines), senders as in New ("off", "*", or node names).
func ParseConfig(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, senders, ok := strings.Cut(pair, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf(`methods: %q is not "method=senders" (senders: off, *, or node names)`, pair)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("methods: %s is named twice", name)
		}
		out[name] = strings.TrimSpace(senders)
	}
	return out, nil
}
