package message

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Catalogue is what validation needs to know about methods.
type Catalogue interface {
	// Resolve maps a method name or alias to its canonical name and says
	// whether it can be used as a reply method.
	Resolve(name string) (canonical string, replyable bool, ok bool)
}

// Limits on field values. They keep a typo from queueing a message for a
// century, and keep names usable as NATS subject tokens and file names.
const (
	MaxNodeNameLen   = 64
	MaxIDLen         = 64
	MaxRetries       = 1000
	MaxTimeout       = 30 * 24 * time.Hour
	MaxPathLen       = 1024
	MaxFileNameLen   = 255
	MaxArgs          = 1024
	MaxTargets       = 100_000
	ReservedDataPath = ".steward"
	// ErrorLogPath is the folder of central's error log, which only error
	// reports write to.
	ErrorLogPath = "errorLog"
)

// nodeNameChars reports whether name holds only [A-Za-z0-9_-].
func nodeNameChars(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidNodeName reports whether name can be a node name: letters, digits,
// '-' and '_', at most MaxNodeNameLen long (it becomes a subject token,
// a consumer name and a KV key).
func ValidNodeName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty node name: %w", ErrBadNodeName)
	case len(name) > MaxNodeNameLen:
		return fmt.Errorf("node name %.20q… is longer than %d characters: %w", name, MaxNodeNameLen, ErrBadNodeName)
	case !nodeNameChars(name):
		return fmt.Errorf("node name %q may hold only letters, digits, '-' and '_': %w", name, ErrBadNodeName)
	}
	return nil
}

// ValidateInput checks a message as an operator wrote it: the fields
// steward sets must be empty, and everything Validate checks must hold.
func ValidateInput(m *Message, cat Catalogue) error {
	if m.ID != "" {
		if err := ValidID(m.ID); err != nil {
			return fieldError("id", err)
		}
	}
	switch {
	case m.FromNode != "":
		return fieldErrorf("fromNode", "field \"fromNode\" is set by steward to the sending node: %w", ErrReserved)
	case !m.SentAt.IsZero(), !m.Deadline.IsZero():
		return fieldErrorf(firstSet("sentAt", !m.SentAt.IsZero(), "deadline"),
			"fields \"sentAt\" and \"deadline\" are set by steward (use deliveryDeadline): %w", ErrReserved)
	case m.DeadlineSeq != 0:
		return fieldErrorf("deadlineSeq", "field \"deadlineSeq\" is internal to steward: %w", ErrReserved)
	case !m.RunAt.IsZero():
		return fieldErrorf("runAt", "field \"runAt\" is set by steward (use repeat and repeatInterval): %w", ErrReserved)
	case m.Event:
		return fieldErrorf("event", "field \"event\" is internal to steward: %w", ErrReserved)
	case m.Reply != nil:
		return fieldErrorf("reply", "field \"reply\" is internal to steward: %w", ErrReserved)
	case m.Signer != "" || len(m.Signature) > 0:
		return fieldErrorf(firstSet("signer", m.Signer != "", "signature"),
			"fields \"signer\" and \"signature\" are set by steward, which signs with the node's key: %w", ErrReserved)
	}
	return Validate(m, cat)
}

// firstSet is first when it is set, else second: the field an error
// about two fields is shown on.
func firstSet(first string, set bool, second string) string {
	if set {
		return first
	}
	return second
}

// Validate checks the rules every message must meet, wherever it is: at
// the sender, and again on the node that receives it. On success it
// replaces method names by their canonical names.
func Validate(m *Message, cat Catalogue) error {
	if err := validReply(m); err != nil {
		return err
	}
	targets := m.Targets()
	if len(targets) == 0 {
		return fieldErrorf("toNode", "the message names no node (set toNode or toNodes): %w", ErrNoTarget)
	}
	if len(targets) > MaxTargets {
		return fieldErrorf("toNodes", "toNodes lists %d nodes, at most %d are allowed: %w", len(targets), MaxTargets, ErrFieldValue)
	}
	for _, n := range targets {
		if err := ValidNodeName(n); err != nil {
			return fieldError(firstSet("toNode", n == m.ToNode, "toNodes"), err)
		}
	}
	if m.FromNode != "" {
		if err := ValidNodeName(m.FromNode); err != nil {
			return fieldErrorf("fromNode", "fromNode: %w", err)
		}
	}
	if m.Method == "" {
		return fieldErrorf("method", "the message names no method: %w", ErrNoMethod)
	}
	canonical, _, ok := cat.Resolve(m.Method)
	if !ok {
		return fieldErrorf("method", "method %q is not a steward method: %w", m.Method, ErrUnknownMethod)
	}
	m.Method = canonical
	if m.ReplyMethod != "" {
		canonical, replyable, ok := cat.Resolve(m.ReplyMethod)
		if !ok {
			return fieldErrorf("replyMethod", "replyMethod %q is not a steward method: %w", m.ReplyMethod, ErrUnknownMethod)
		}
		if !replyable {
			return fieldErrorf("replyMethod", "replyMethod %q cannot handle replies (use REQToFileAppend, REQToFile or REQToConsole): %w", m.ReplyMethod, ErrFieldValue)
		}
		m.ReplyMethod = canonical
	}
	if err := validRepeat(m); err != nil {
		return err
	}
	if len(m.MethodArgs) > MaxArgs || len(m.ReplyMethodArgs) > MaxArgs {
		return fieldErrorf(firstSet("methodArgs", len(m.MethodArgs) > MaxArgs, "replyMethodArgs"),
			"more than %d method arguments: %w", MaxArgs, ErrFieldValue)
	}
	for _, t := range []struct {
		name string
		secs int
	}{
		{"ACKTimeout", m.ACKTimeout},
		{"replyACKTimeout", m.ReplyACKTimeout},
		{"methodTimeout", m.MethodTimeout},
		{"replyMethodTimeout", m.ReplyMethodTimeout},
	} {
		if t.secs < 0 {
			return fieldErrorf(t.name, "field %q: %d seconds is negative: %w", t.name, t.secs, ErrFieldValue)
		}
		if time.Duration(t.secs)*time.Second > MaxTimeout {
			return fieldErrorf(t.name, "field %q: %d seconds is more than the maximum of %s: %w", t.name, t.secs, MaxTimeout, ErrFieldValue)
		}
	}
	for _, r := range []struct {
		name string
		n    *int
	}{{"retries", m.Retries}, {"replyRetries", m.ReplyRetries}} {
		if r.n != nil && (*r.n < 0 || *r.n > MaxRetries) {
			return fieldErrorf(r.name, "field %q: %d is outside 0..%d: %w", r.name, *r.n, MaxRetries, ErrFieldValue)
		}
	}
	if _, err := CleanDirectory(m.Directory); err != nil {
		return fieldError("directory", err)
	}
	if err := ValidFileName(m.FileName); err != nil {
		return fieldError("fileName", err)
	}
	return nil
}

// CleanDirectory turns a message's directory into a clean relative path
// under a data folder. An absolute directory is placed under the data
// folder; ".." parts that would leave it, NUL bytes, the reserved
// ".steward" folder and the error log's folder are rejected. The empty
// string means the data folder.
func CleanDirectory(dir string) (string, error) {
	if len(dir) > MaxPathLen {
		return "", fmt.Errorf("directory is longer than %d bytes: %w", MaxPathLen, ErrBadPath)
	}
	if strings.ContainsRune(dir, 0) {
		return "", fmt.Errorf("directory contains a NUL byte: %w", ErrBadPath)
	}
	rel := path.Clean(strings.TrimLeft(strings.ReplaceAll(dir, `\`, "/"), "/"))
	if rel == "." {
		return "", nil
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("directory %q leaves the data folder: %w", dir, ErrBadPath)
	}
	switch first, _, _ := strings.Cut(rel, "/"); first {
	case ReservedDataPath:
		return "", fmt.Errorf("directory %q is inside steward's own state folder %s: %w", dir, ReservedDataPath, ErrBadPath)
	case ErrorLogPath:
		return "", fmt.Errorf("directory %q is inside the error log's folder %s, which only error reports write to: %w", dir, ErrorLogPath, ErrBadPath)
	}
	return rel, nil
}

// ValidFileName checks that name is a plain file name (or empty, meaning
// the method's default): no separators, not "." or "..", no NUL.
func ValidFileName(name string) error {
	switch {
	case name == "":
		return nil
	case len(name) > MaxFileNameLen:
		return fmt.Errorf("fileName is longer than %d bytes: %w", MaxFileNameLen, ErrBadPath)
	case name == "." || name == "..":
		return fmt.Errorf("fileName %q is not a file name: %w", name, ErrBadPath)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("fileName %q must be a plain name without '/' (put folders in directory): %w", name, ErrBadPath)
	}
	return nil
}

// MaxReplyChunks bounds how many chunks one reply may come in (a node
// sends at most 64 MiB of output, in chunks of 128 KiB: 512).
const MaxReplyChunks = 1024

// validReply checks what a reply says about the delivery it answers: its
// deliveryId names a folder and status records on the receiving node, so
// it must be exactly "<id>.<node>", and a node answers only its own
// deliveries: the node is the reply's fromNode, the id its id.
func validReply(m *Message) error {
	r := m.Reply
	if r == nil {
		return nil
	}
	id, node, ok := SplitDeliveryID(r.DeliveryID)
	if !ok || ValidID(id) != nil || ValidNodeName(node) != nil {
		return fieldErrorf("reply.deliveryId", "reply.deliveryId %.80q is not <id>.<node>: %w", r.DeliveryID, ErrFieldValue)
	}
	if id != m.ID || node != m.FromNode {
		return fieldErrorf("reply.deliveryId", "reply.deliveryId %s is not the delivery of message %s to %s, the node it comes from: a node answers only its own deliveries: %w",
			r.DeliveryID, m.ID, m.FromNode, ErrFieldValue)
	}
	if r.Chunks < 0 || r.Chunks > MaxReplyChunks || r.Chunk < 0 || (r.Chunks > 0 && r.Chunk >= r.Chunks) {
		return fieldErrorf("reply.chunk", "reply chunk %d of %d is out of range (at most %d chunks): %w", r.Chunk, r.Chunks, MaxReplyChunks, ErrFieldValue)
	}
	if r.Lines < 0 || (r.Lines > 0 || r.Streamed) && (r.Seq == 0 || r.Chunks > 1) || r.Lines > 0 && r.Streamed {
		return fieldErrorf("reply.lines", "reply part of %d lines from line %d is out of range: %w", r.Lines, r.Seq, ErrFieldValue)
	}
	return nil
}

// MaxRepeat bounds how many runs a repeated message asks for.
const MaxRepeat = 1000

// RunID is the ID of run n (from 2) of the repeated message id.
func RunID(id string, n int) string { return fmt.Sprintf("%sr%d", id, n) }

// validRepeat checks repeat, repeatInterval and, on a run of a repeated
// message, that it is the run it says.
func validRepeat(m *Message) error {
	switch {
	case m.Repeat < 0 || m.Repeat > MaxRepeat:
		return fieldErrorf("repeat", "field \"repeat\": %d runs; from 1 to %d: %w", m.Repeat, MaxRepeat, ErrFieldValue)
	case m.RepeatInterval < 0:
		return fieldErrorf("repeatInterval", "field \"repeatInterval\": %d seconds is negative: %w", m.RepeatInterval, ErrFieldValue)
	case m.Repeat > 1 && m.RepeatInterval == 0:
		return fieldErrorf("repeatInterval", "field \"repeatInterval\" is needed with repeat %d: the seconds between runs: %w", m.Repeat, ErrFieldValue)
	case m.Repeat > 1 && time.Duration(m.Repeat-1)*time.Duration(m.RepeatInterval)*time.Second > MaxTimeout:
		return fieldErrorf("repeat", "repeat %d every %d seconds reaches beyond %s: %w", m.Repeat, m.RepeatInterval, MaxTimeout, ErrFieldValue)
	case m.Repeat > 1 && m.ID != "" && len(RunID(m.ID, m.Repeat)) > MaxIDLen:
		return fieldErrorf("id", "id %q is too long to number %d runs (%s): %w", m.ID, m.Repeat, RunID(m.ID, m.Repeat), ErrFieldValue)
	case m.RepeatRun == 0 && m.RepeatOf == "":
		return nil
	case m.RepeatRun < 2 || m.RepeatRun > m.Repeat || m.ID != RunID(m.RepeatOf, m.RepeatRun):
		return fieldErrorf("repeatRun", "run %d of %q is not a run of a message repeated %d times (its id must be %s): %w",
			m.RepeatRun, m.RepeatOf, m.Repeat, RunID(m.RepeatOf, m.RepeatRun), ErrFieldValue)
	}
	return nil
}
