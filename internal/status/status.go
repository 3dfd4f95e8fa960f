// Package status keeps one record per delivery (one message to one node) in
// a JetStream KV bucket and moves it through steward's lifecycle:
//
//	pending → delivered → running → succeeded | failed | execution_timed_out
//	pending → delivery_timed_out | undeliverable | rejected | cancelled
//
// The key of a record is its delivery ID, "<message id>.<node>". Each
// transition has one authority:
//
//   - the sender creates the record "pending", create-only, before it
//     publishes the message;
//   - the receiving node writes every later state, in order, from one
//     connection, and only after it has claimed the delivery before its
//     deadline (package deadline);
//   - the central node writes delivery_timed_out, and only to a record
//     that is still pending and whose delivery nobody claimed, with a
//     compare-and-set, when the broker's scheduler says the deadline passed.
//
// Once a record is terminal nothing writes it again. A delivery whose
// method ran sends its output back as a reply; the node that handles the
// reply (the message's fromNode) records how that went under
// "<message id>.<node>.reply", so `steward send --wait` returns only once
// the reply is written.
//
// Every record carries its own TTL (message.StatusTTL): it outlives
// everything that can still change it.
package status

import (
	"slices"
	"time"
	"unicode/utf8"
)

// Status is the state of one delivery.
type Status string

// The states, modelled on AWS SSM Run Command.
const (
	Pending           Status = "pending"
	Delivered         Status = "delivered"
	Running           Status = "running"
	Succeeded         Status = "succeeded"
	Failed            Status = "failed"
	ExecutionTimedOut Status = "execution_timed_out"
	DeliveryTimedOut  Status = "delivery_timed_out"
	Undeliverable     Status = "undeliverable"
	Rejected          Status = "rejected"
	Cancelled         Status = "cancelled"
)

var terminal = []Status{Succeeded, Failed, ExecutionTimedOut, DeliveryTimedOut, Undeliverable, Rejected, Cancelled}

// Terminal reports whether s is a final state.
func (s Status) Terminal() bool { return slices.Contains(terminal, s) }

// Success reports whether s is the one good final state.
func (s Status) Success() bool { return s == Succeeded }

// MaxOutput is how much of a method's output a record keeps. The whole
// output always travels in the reply; a record that holds less says so in
// OutputTruncated and OutputBytes.
const MaxOutput = 64 << 10

// Record is the stored state of one delivery.
type Record struct {
	ID       string `json:"id"`
	Node     string `json:"node"`
	FromNode string `json:"fromNode"`
	Method   string `json:"method"`
	Status   Status `json:"status"`
	// Reply marks the record of a reply: how the reply method on the
	// fromNode handled the output of delivery ID.Node.
	Reply bool `json:"reply,omitempty"`
	// ReplySent says the delivery sent its output back, so a reply record
	// will follow.
	ReplySent bool `json:"replySent,omitempty"`
	// TraceID is the OpenTelemetry trace of the message, when its sender
	// traced it (the sender sets it on the pending record, the node keeps
	// it).
	TraceID string `json:"traceId,omitempty"`
	// Attempt is the delivery count when the state was written.
	Attempt uint64 `json:"attempt,omitempty"`
	// ExitCode is set for methods that run a process.
	ExitCode *int `json:"exitCode,omitempty"`
	// Error explains a state other than succeeded.
	Error string `json:"error,omitempty"`
	// ErrorCode is a stable short name for Error.
	ErrorCode string `json:"errorCode,omitempty"`
	// Output is the start of the method's output (at most MaxOutput).
	Output          string `json:"output,omitempty"`
	OutputBytes     int    `json:"outputBytes,omitempty"`
	OutputTruncated bool   `json:"outputTruncated,omitempty"`
	// Stderr is the start of a command's standard error.
	Stderr string `json:"stderr,omitempty"`
	// File is, on a reply record, the file the reply method writes the
	// output to, relative to the sending node's data folder.
	File string `json:"file,omitempty"`

	SentAt      time.Time `json:"sentAt,omitzero"`
	Deadline    time.Time `json:"deadline,omitzero"`
	DeliveredAt time.Time `json:"deliveredAt,omitzero"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Key is the record's KV key.
func (r *Record) Key() string {
	if r.Reply {
		return ReplyKey(r.ID + "." + r.Node)
	}
	return r.ID + "." + r.Node
}

// ReplyKey is the key of the reply record of a delivery.
func ReplyKey(deliveryID string) string { return deliveryID + ".reply" }

// Done reports whether nothing more will happen to the delivery this
// record describes: it is terminal, and if it sent a reply, that is
// recorded as terminal in reply (nil when none was seen yet).
func (r *Record) Done(reply *Record) bool {
	if !r.Status.Terminal() {
		return false
	}
	return !r.ReplySent || reply != nil && reply.Status.Terminal()
}

// SetOutput stores the start of out and records its full size.
func (r *Record) SetOutput(out []byte) {
	r.OutputBytes = len(out)
	if len(out) > MaxOutput {
		out = cut(out, MaxOutput)
		r.OutputTruncated = true
	}
	r.Output = string(out)
}

// SetStderr stores the start of a command's standard error.
func (r *Record) SetStderr(errOut []byte) {
	if len(errOut) > MaxOutput {
		errOut = cut(errOut, MaxOutput)
	}
	r.Stderr = string(errOut)
}

// cut shortens b to at most n bytes without splitting a UTF-8 character
// (text only: bytes that are not UTF-8 are cut at n).
func cut(b []byte, n int) []byte {
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return b[:i]
		}
	}
	return b[:n]
}
