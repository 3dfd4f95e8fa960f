// Package message defines steward's message: the JSON format operators
// already hold in files (compatible with the original steward), the fields
// steward adds when a message enters the system, and the rules that make a
// message valid.
//
// Guarantees:
//   - Decode accepts a JSON array of messages or one message object, decodes
//     each element strictly and on its own, so one bad element yields one
//     clear error and the good ones still go.
//   - A message that passed Validate names at least one valid node, a known
//     method, sane timeouts, and a reply location that cannot leave a data
//     folder.
//   - Fields steward sets itself (id, fromNode, deadline, …) are rejected in
//     operator input.
package message

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one request (or reply) as it travels through steward. The JSON
// names of the operator-facing fields match the original steward format.
type Message struct {
	// ToNode is the node to deliver to.
	ToNode string `json:"toNode,omitempty"`
	// ToNodes delivers the same message to each node, one delivery each.
	ToNodes []string `json:"toNodes,omitempty"`
	// Method is what the receiving node does, e.g. REQCliCommand.
	Method string `json:"method"`
	// MethodArgs are the method's arguments (command line, URL, path …).
	MethodArgs []string `json:"methodArgs,omitempty"`
	// Data is the payload; in a reply it carries the method's output.
	Data Data `json:"data,omitempty"`
	// ReplyMethod is what the sender's node does with the result.
	ReplyMethod string `json:"replyMethod,omitempty"`
	// ReplyMethodArgs are the reply method's arguments.
	ReplyMethodArgs []string `json:"replyMethodArgs,omitempty"`
	// ACKTimeout, in seconds, is how long a delivery may go unacknowledged.
	ACKTimeout int `json:"ACKTimeout,omitempty"`
	// Retries is how many more deliveries are tried after the first.
	// Nil means "use the configured default"; 0 means exactly one delivery.
	Retries *int `json:"retries,omitempty"`
	// ReplyACKTimeout and ReplyRetries are the same for the reply.
	ReplyACKTimeout int  `json:"replyACKTimeout,omitempty"`
	ReplyRetries    *int `json:"replyRetries,omitempty"`
	// MethodTimeout, in seconds, bounds how long the method runs.
	MethodTimeout int `json:"methodTimeout,omitempty"`
	// ReplyMethodTimeout bounds the reply method.
	ReplyMethodTimeout int `json:"replyMethodTimeout,omitempty"`
	// Directory and FileName say where file reply methods write, always
	// under the data folder of the node that writes.
	Directory string `json:"directory,omitempty"`
	FileName  string `json:"fileName,omitempty"`
	// Operation is the older form of process operations (REQOpCommand).
	Operation *Operation `json:"operation,omitempty"`
	// DeliveryDeadline bounds how long steward tries to deliver: seconds
	// from sending, or an RFC 3339 time. Optional; a default applies.
	DeliveryDeadline *Deadline `json:"deliveryDeadline,omitempty"`
	// Repeat runs the method this many times, RepeatInterval seconds
	// apart: each run is a message of its own, with its own ID (the first
	// run's ID, then <id>r2, <id>r3, …), status and delivery deadline
	// (counted from the time the run is due).
	Repeat         int `json:"repeat,omitempty"`
	RepeatInterval int `json:"repeatInterval,omitempty"`

	// ID identifies the message; every delivery of it shares the ID.
	// Steward assigns one (a NUID) unless the operator chose it: a client
	// that chooses its IDs can always learn what became of its input, and
	// sending the same ID again sends nothing new.
	ID string `json:"id,omitempty"`

	// The fields below are set by steward, never by an operator.

	// FromNode is the node that injected the message; replies go there.
	FromNode string `json:"fromNode,omitempty"`
	// SentAt is when the message entered the system.
	SentAt time.Time `json:"sentAt,omitzero"`
	// Deadline is the absolute delivery deadline.
	Deadline time.Time `json:"deadline,omitzero"`
	// DeadlineSeq is the stream sequence of this delivery's deadline
	// schedule, which the receiving node claims before it runs the method
	// (see package deadline).
	DeadlineSeq uint64 `json:"deadlineSeq,omitempty"`
	// RepeatOf is the first run's ID and RepeatRun this run's number (2
	// and up) in a repeated message; RunAt, set by steward, is when the
	// run is due: its node does not start it before.
	RepeatOf  string    `json:"repeatOf,omitempty"`
	RepeatRun int       `json:"repeatRun,omitempty"`
	RunAt     time.Time `json:"runAt,omitzero"`
	// Event marks internal traffic (hello, error reports) that has no
	// status record and no reply.
	Event bool `json:"event,omitempty"`
	// Reply describes the request this message answers, when it is a reply.
	Reply *ReplyInfo `json:"reply,omitempty"`
	// Signer is the public nkey of the node that signed the message and
	// Signature its ed25519 signature over every other field (package
	// signature). Set by steward.
	Signer    string `json:"signer,omitempty"`
	Signature []byte `json:"signature,omitempty"`
}

// ReplyInfo is carried by reply messages.
type ReplyInfo struct {
	// DeliveryID is the delivery being answered (<id>.<node>).
	DeliveryID string `json:"deliveryId"`
	// Method is the request method that produced the output.
	Method string `json:"method"`
	// Status is the terminal status of the request.
	Status string `json:"status"`
	// ExitCode is the exit code where the method has one.
	ExitCode *int `json:"exitCode,omitempty"`
	// Error is the error text of a request that did not succeed.
	Error string `json:"error,omitempty"`
	// RequestSentAt is when the request entered the system.
	RequestSentAt time.Time `json:"requestSentAt,omitzero"`
	// Chunk and Chunks split output larger than one NATS message.
	Chunk  int `json:"chunk"`
	Chunks int `json:"chunks"`
	// RequestSeq is the stream sequence of the request as the answering
	// node took it: the receiving node reads the request there to check
	// the reply answers a request it sent (only senders write a node's
	// queue), with the reply method and folder it asked for.
	RequestSeq uint64 `json:"requestSeq,omitempty"`
	// A streaming method (REQCliCommandCont, REQTailFile) sends its output
	// while it runs, as parts: Lines lines numbered from Seq (the first is
	// 1), in order, so the receiver can tell a gap. Restart marks the first
	// part after the node restarted the method: lines before it that never
	// came are lost. The final reply of such a method has Streamed set, no
	// data, and Seq one past its last line.
	Seq      uint64 `json:"seq,omitempty"`
	Lines    int    `json:"lines,omitempty"`
	Restart  bool   `json:"restart,omitempty"`
	Streamed bool   `json:"streamed,omitempty"`
}

// Part reports whether the reply is a part of a streamed output.
func (r *ReplyInfo) Part() bool { return r != nil && r.Lines > 0 }

// Operation is the older form of process operations, kept for files that
// still use REQOpCommand.
type Operation struct {
	OpCmd string          `json:"opCmd"`
	OpArg json.RawMessage `json:"opArg,omitempty"`
}

// Targets returns the nodes the message goes to: toNode and toNodes merged,
// in order, without duplicates.
func (m *Message) Targets() []string {
	seen := make(map[string]bool, len(m.ToNodes)+1)
	var out []string
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	add(m.ToNode)
	for _, n := range m.ToNodes {
		add(n)
	}
	return out
}

// DeliveryID names one delivery of message id to node: "<id>.<node>". It is
// the status key, the Nats-Msg-Id of the request and the executed-ID key.
func DeliveryID(id, node string) string { return id + "." + node }

// SplitDeliveryID undoes DeliveryID.
func SplitDeliveryID(deliveryID string) (id, node string, ok bool) {
	i := strings.LastIndexByte(deliveryID, '.')
	if i <= 0 || i == len(deliveryID)-1 {
		return "", "", false
	}
	return deliveryID[:i], deliveryID[i+1:], true
}

// RetriesOr returns the message's retries, or def when it has none.
func (m *Message) RetriesOr(def int) int {
	if m.Retries == nil {
		return def
	}
	return *m.Retries
}

// MethodTimeoutDuration is MethodTimeout as a duration.
func (m *Message) MethodTimeoutDuration() time.Duration {
	return time.Duration(m.MethodTimeout) * time.Second
}

// ValidID reports whether id can be a message ID: 1 to MaxIDLen letters
// and digits (IDs become subject tokens and KV keys, so no dots or
// wildcards).
func ValidID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("id must be 1 to %d characters: %w", MaxIDLen, ErrFieldValue)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Errorf("id %q may hold only letters and digits: %w", id, ErrFieldValue)
		}
	}
	return nil
}

// ACKTimeoutDuration is ACKTimeout as a duration.
func (m *Message) ACKTimeoutDuration() time.Duration {
	return time.Duration(m.ACKTimeout) * time.Second
}

// Clone returns a copy that shares no slices or pointers with m, so a
// fan-out can give each delivery its own message.
func (m *Message) Clone() *Message {
	c := *m
	c.ToNodes = append([]string(nil), m.ToNodes...)
	c.MethodArgs = append([]string(nil), m.MethodArgs...)
	c.ReplyMethodArgs = append([]string(nil), m.ReplyMethodArgs...)
	c.Data = append(Data(nil), m.Data...)
	if m.Retries != nil {
		r := *m.Retries
		c.Retries = &r
	}
	if m.ReplyRetries != nil {
		r := *m.ReplyRetries
		c.ReplyRetries = &r
	}
	if m.Operation != nil {
		op := *m.Operation
		c.Operation = &op
	}
	if m.DeliveryDeadline != nil {
		d := *m.DeliveryDeadline
		c.DeliveryDeadline = &d
	}
	if m.Reply != nil {
		r := *m.Reply
		c.Reply = &r
	}
	c.Signature = append([]byte(nil), m.Signature...)
	return &c
}

// Data is a message payload. In JSON it is a string (text), an array of
// strings (lines, as old files have them, joined with newlines), null, or
// {"base64": "..."} for bytes that are not UTF-8. It is written as a string
// when it is valid UTF-8 and as {"base64": …} otherwise, so output of any
// kind survives the trip.
type Data []byte

type base64Data struct {
	Base64 string `json:"base64"`
}

// MarshalJSON implements json.Marshaler.
func (d Data) MarshalJSON() ([]byte, error) {
	if utf8.Valid(d) {
		return json.Marshal(string(d))
	}
	return json.Marshal(base64Data{Base64: base64.StdEncoding.EncodeToString(d)})
}

// UnmarshalJSON implements json.Unmarshaler. Its errors are about a
// message's field "data" (FieldOf).
func (d *Data) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null":
		*d = nil
		return nil
	case strings.HasPrefix(s, `"`):
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*d = Data(str)
		return nil
	case strings.HasPrefix(s, "["):
		var lines []string
		if err := json.Unmarshal(b, &lines); err != nil {
			return fieldErrorf("data", "data: an array must hold strings: %w", ErrFieldType)
		}
		*d = Data(strings.Join(lines, "\n"))
		return nil
	case strings.HasPrefix(s, "{"):
		var bd base64Data
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&bd); err != nil {
			return fieldErrorf("data", "data: an object must be {\"base64\": \"…\"}: %w", ErrFieldType)
		}
		raw, err := base64.StdEncoding.DecodeString(bd.Base64)
		if err != nil {
			return fieldErrorf("data", "data: invalid base64: %w", ErrFieldType)
		}
		*d = raw
		return nil
	default:
		return fieldErrorf("data", "data: must be a string, an array of strings or {\"base64\": …}: %w", ErrFieldType)
	}
}

// Deadline is the deliveryDeadline field: either a number of seconds after
// sending, or an absolute RFC 3339 time.
type Deadline struct {
	After time.Duration
	At    time.Time
}

// Resolve returns the absolute deadline for a message sent at sent.
func (d Deadline) Resolve(sent time.Time) time.Time {
	if !d.At.IsZero() {
		return d.At
	}
	return sent.Add(d.After)
}

// MarshalJSON implements json.Marshaler.
func (d Deadline) MarshalJSON() ([]byte, error) {
	if !d.At.IsZero() {
		return json.Marshal(d.At.Format(time.RFC3339Nano))
	}
	return json.Marshal(int64(d.After / time.Second))
}

// UnmarshalJSON implements json.Unmarshaler. Its errors are about the
// field "deliveryDeadline" (FieldOf).
func (d *Deadline) UnmarshalJSON(b []byte) error {
	var secs int64
	if err := json.Unmarshal(b, &secs); err == nil {
		if secs <= 0 {
			return fieldErrorf("deliveryDeadline", "deliveryDeadline: seconds must be positive: %w", ErrFieldValue)
		}
		if secs > int64(MaxTimeout/time.Second) {
			return fieldErrorf("deliveryDeadline", "deliveryDeadline: %d seconds is more than the maximum of %s: %w", secs, MaxTimeout, ErrFieldValue)
		}
		*d = Deadline{After: time.Duration(secs) * time.Second}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fieldErrorf("deliveryDeadline", "deliveryDeadline: must be seconds or an RFC 3339 time: %w", ErrFieldType)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fieldErrorf("deliveryDeadline", "deliveryDeadline: %q is not an RFC 3339 time: %w", s, ErrFieldValue)
	}
	*d = Deadline{At: t}
	return nil
}
