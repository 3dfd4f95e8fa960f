// Package methods holds everything a node can do: one file per method, each
// a Spec (name, summary, default timeout, handler), all registered in one
// explicit list (List). Handlers are synchronous and honour their context;
// the node owns concurrency, deadlines, acks and keep-alives.
//
// Adding a method is one file and one line in List.
package methods

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// Kind says how a node treats a method's messages.
type Kind int

const (
	// Command runs on request; its delivery has a status record and its
	// result goes back to the sender with the reply method.
	Command Kind = iota
	// ReplyHandler handles results on the sender's node (REQToFile, …). It
	// can also be sent as a command, e.g. to write a file on a node.
	ReplyHandler
	// Event is internal traffic (hello, error reports): no status, no reply.
	Event
)

// Handler runs a method. A returned error makes the delivery failed (or
// execution_timed_out when ctx's deadline passed); Result may still carry
// partial output.
type Handler func(ctx context.Context, req *Request) (*Result, error)

// Spec describes one method.
type Spec struct {
	// Name is the wire name, e.g. "REQCliCommand".
	Name string
	// Aliases are other accepted spellings (older files, short names).
	Aliases []string
	// Summary is one line for help texts and `steward methods`.
	Summary string
	Kind    Kind
	// DefaultTimeout applies when a message sets no methodTimeout.
	DefaultTimeout time.Duration
	// DefaultReplyMethod applies when a message sets no replyMethod
	// (REQToFileAppend when empty).
	DefaultReplyMethod string
	// Internal methods are sent only by steward itself, never by operators.
	Internal bool
	// Idempotent methods may run twice with no harm: their deliveries are
	// not recorded in the ledger (nor audited).
	Idempotent bool
	// PolicyExempt methods are not decided by a node's policy: they only
	// make the node act on something it checks itself (REQKeys takes a key
	// set only when central's key signed it).
	PolicyExempt bool
	// Streams methods send their output while they run (Request.Stream):
	// their final reply carries no output of its own.
	Streams bool
	// RunsProcess methods start a process under the process guard, which
	// keeps a run record of it (Request.RunRecord).
	RunsProcess bool
	// Validate checks method-specific fields before sending (optional);
	// its errors name the field they are about (checks makes them so).
	Validate func(m *message.Message) error
	Handler  Handler
}

// Request is one execution of a method.
type Request struct {
	Msg *message.Message
	// Attempt is the run number of this execution (1 for the first).
	Attempt uint64
	// Stored is when the broker stored the message (the broker's clock).
	Stored time.Time
	// RunRecord, if set, is the base path of the run record that a method
	// which runs a process has its process guard keep (procguard.Cmd.Record):
	// a node that dies right after the process ended finds out, at restart,
	// that it ran and what it printed (EndedRun), and does not run it again.
	RunRecord string
	// Stream is where a method that Streams sends its output while it
	// runs (nil for other methods).
	Stream Stream
	// AppendAt, if set, records durably where a method that appends to a
	// file is about to write (before it writes); PriorAppend is where an
	// earlier run of the same delivery was about to (-1: none), so that a
	// rerun after a crash does not append the data twice.
	AppendAt    func(offset int64) error
	PriorAppend int64
	Env         *Env
	Log         *slog.Logger
}

// Stream takes a streaming method's output. Each writer Lines returns cuts
// what it is given into lines (a write may hold part of a line, or many):
// give each source (standard output, standard error) its own. Lines from
// all writers are sent in the order they were completed, each numbered.
type Stream interface {
	Lines() io.Writer
}

// Result is what a method produced.
type Result struct {
	// Output goes back to the sender in the reply's data.
	Output []byte
	// Stderr and ExitCode are recorded for methods that run a process.
	Stderr   []byte
	ExitCode *int
}

// DefaultReplyMethod is the reply method of messages that name none.
const DefaultReplyMethod = "REQToFileAppend"

// List is every method steward knows, in the order `steward methods`
// shows them. This is the one place methods are registered.
func List() []Spec {
	return []Spec{
		cliCommand,
		cliCommandCont,
		tailFile,
		hello,
		errorLog,
		toFile,
		toFileAppend,
		toConsole,
		ping,
		pong,
		httpGet,
		opProcessList,
		opProcessStart,
		opProcessStop,
		opCommand,
		keys,
	}
}

// Registry resolves method names to specs.
type Registry struct {
	specs    []Spec
	byName   map[string]int
	disabled map[string]bool
}

// NewRegistry builds a registry from specs. Duplicate names or aliases are
// an error wrapping ErrDuplicateMethod.
func NewRegistry(specs []Spec) (*Registry, error) {
	r := &Registry{byName: map[string]int{}, disabled: map[string]bool{}}
	for _, s := range specs {
		if s.Handler == nil {
			return nil, fmt.Errorf("method %s has no handler", s.Name)
		}
		for _, n := range append([]string{s.Name}, s.Aliases...) {
			if _, dup := r.byName[n]; dup {
				return nil, fmt.Errorf("%w: %s", ErrDuplicateMethod, n)
			}
			r.byName[n] = len(r.specs)
		}
		r.specs = append(r.specs, s)
	}
	return r, nil
}

// Default is the registry of List. List is fixed, so it cannot fail.
func Default() *Registry {
	r, err := NewRegistry(List())
	if err != nil {
		panic(err)
	}
	return r
}

// Lookup returns the spec for a name or alias.
func (r *Registry) Lookup(name string) (Spec, error) {
	i, ok := r.byName[name]
	if !ok {
		return Spec{}, fmt.Errorf("%w: %q", ErrUnknownMethod, name)
	}
	s := r.specs[i]
	if r.disabled[s.Name] {
		return s, fmt.Errorf("%w: %s", ErrMethodDisabled, s.Name)
	}
	return s, nil
}

// Resolve implements message.Catalogue for operator input: internal
// methods are not offered.
func (r *Registry) Resolve(name string) (string, bool, bool) {
	i, ok := r.byName[name]
	if !ok || r.specs[i].Internal {
		return "", false, false
	}
	s := r.specs[i]
	return s.Name, s.Kind == ReplyHandler, true
}

// Disable stops the node from running a method; its messages are rejected.
func (r *Registry) Disable(name string) error {
	i, ok := r.byName[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownMethod, name)
	}
	r.disabled[r.specs[i].Name] = true
	return nil
}

// Names lists the canonical names of the enabled methods.
func (r *Registry) Names() []string {
	var out []string
	for _, s := range r.specs {
		if !r.disabled[s.Name] {
			out = append(out, s.Name)
		}
	}
	return out
}

// Specs returns every registered spec.
func (r *Registry) Specs() []Spec { return slices.Clone(r.specs) }

// internalCatalogue resolves every method, internal ones included; nodes
// use it to validate what arrives from the broker.
type internalCatalogue struct{ r *Registry }

func (c internalCatalogue) Resolve(name string) (string, bool, bool) {
	i, ok := c.r.byName[name]
	if !ok {
		return "", false, false
	}
	s := c.r.specs[i]
	return s.Name, s.Kind == ReplyHandler, true
}

// All returns a catalogue that also knows internal methods.
func (r *Registry) All() message.Catalogue { return internalCatalogue{r} }

// checks makes check a Validate whose errors name field, the message field
// it checks (message.FieldOf), unless an error names one already.
func checks(field string, check func(*message.Message) error) func(*message.Message) error {
	return func(m *message.Message) error {
		err := check(m)
		if err == nil || message.FieldOf(err) != "" {
			return err
		}
		return &message.FieldError{Field: field, Err: err}
	}
}
