// Package status keeps one record per delivery (one message to one node) in
// a JetStream KV bucket and moves it through steward's lifecycle:
//
//	pending → delivered → running → succeeded | failed | execution_timed_out
//	pending → delivery_timed_out | undeliverable | rejected | cancelled
//
// The key of a record is its delivery ID, "<message id>.<node>". The sender
// creates the record with Create, which never overwrites, so a fast node's
// later status cannot be replaced by a late "pending". The node that runs
// the message writes every later state with Put, in order, from one
// connection. Only the deadline handler changes a record it does not own,
// and it does so with a compare-and-set on the pending revision.
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

	SentAt      time.Time `json:"sentAt,omitzero"`
	Deadline    time.Time `json:"deadline,omitzero"`
	DeliveredAt time.Time `json:"deliveredAt,omitzero"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Key is the record's KV key.
func (r *Record) Key() string { return r.ID + "." + r.Node }

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
