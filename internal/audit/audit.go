// Package audit writes the audit log: one JSON line per message a node
// sends, processes or refuses, with the whole message, so the line of a
// sent or processed message can be used to recreate it.
//
// What the log guarantees:
//
//   - Lines are whole. Each line is written within one write call on a
//     file opened with O_APPEND, while holding an exclusive flock(2) on
//     <path>.lock, so the lines of several processes sharing the file (a
//     node and `steward send` beside it) never interleave or split. Lines
//     that concurrent Writes of one process bring at once share the lock,
//     the checks and the write call (group commit, up to MaxBatch bytes
//     and never past MaxSize), so a busy node pays the syscalls of a line
//     once per batch; each Write still returns only once its own line is
//     written.
//   - The log is bounded on disk. Before a line would take the file past
//     Options.MaxSize, or when the file's first line is Options.MaxAge old,
//     Write renames the file to <name>.<UTC time>.<ext> beside it (for
//     audit.jsonl: audit.20261129T083000.000Z.jsonl), starts a new file
//     and deletes the oldest rotated files beyond Options.Keep. Rotated
//     names sort in rotation order. Rotation never splits or drops a line;
//     a file is larger than MaxSize only when one line alone is.
//   - No line goes to a rotated file. Under the lock, every Write checks
//     that its open file is still the file at path (same device and inode)
//     and reopens the path when another process rotated the file, or
//     someone moved or deleted it. The check and the lock cost a stat and
//     two flock calls a write, a few microseconds (BenchmarkFileChecks).
//   - Each line is bounded: at most MaxRefusedLine bytes for a refused
//     record and MaxLine for the others. Write shortens a larger record,
//     Message.Data first, and marks it Truncated with the data's original
//     size and SHA-256. Sent and processed records up to MaxLine (64 MiB,
//     far above any sane broker's payload limit) are written whole, so they
//     recreate their message. RefusedInput records refused raw input as at
//     most MaxInput bytes plus its size and SHA-256.
//   - A failed rotation loses no line: the line goes to the current file
//     and Write returns an error wrapping ErrNotRotated.
//
// The lock file stays beside the log and is never removed: deleting it
// while processes use the log lets their rotations race. Processes sharing
// a log should use the same Options, since each rotates by its own. On
// systems without flock(2) (not Unix), only the Log values of one process
// take turns.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// Event names what happened to the message.
type Event string

// Audit events.
const (
	// Sent: the message entered the system from this node.
	Sent Event = "sent"
	// Queued: the broker could not be reached; the message waits in the
	// node's outbox (a "sent" line follows when it is sent).
	Queued Event = "queued"
	// Processed: the node handled a delivery to its end.
	Processed Event = "processed"
	// Refused: input that could not be sent, or a delivery the node refused.
	Refused Event = "refused"
)

// Record is one audit line.
type Record struct {
	Time       time.Time `json:"time"`
	Node       string    `json:"node"`
	Event      Event     `json:"event"`
	DeliveryID string    `json:"deliveryId,omitempty"`
	Status     string    `json:"status,omitempty"`
	Attempt    uint64    `json:"attempt,omitempty"`
	ExitCode   *int      `json:"exitCode,omitempty"`
	Error      string    `json:"error,omitempty"`
	// Policy is the node policy's decision on a request: the rule that
	// allowed or denied it.
	Policy  string           `json:"policy,omitempty"`
	Message *message.Message `json:"message,omitempty"`

	// Input is the start of refused input, at most MaxInput bytes (Write
	// cuts a longer one), or of the JSON of a message Write had to drop to
	// keep the line within its bound. InputBytes is the full size and
	// InputSHA256 the hex SHA-256 of the whole. See RefusedInput.
	Input       message.Data `json:"input,omitempty"`
	InputBytes  int          `json:"inputBytes,omitempty"`
	InputSHA256 string       `json:"inputSha256,omitempty"`

	// Truncated says Write shortened the record to keep its line within
	// the bound: it cut Message.Data (then DataBytes is the data's full
	// size and DataSHA256 its hex SHA-256), the error text, or dropped the
	// message, keeping the start of its JSON in Input.
	Truncated  bool   `json:"truncated,omitempty"`
	DataBytes  int    `json:"dataBytes,omitempty"`
	DataSHA256 string `json:"dataSha256,omitempty"`
}

// Log is an open audit log. A nil *Log discards everything. A Log is safe
// for concurrent use.
type Log struct {
	node string
	f    *logFile // shared by the Logs that For made from one OpenWith
}

// logFile is the file a Log writes to, with its rotation state.
type logFile struct {
	path string
	o    Options
	// prefix and ext frame the rotated names: <prefix><time><ext>.
	prefix, ext string

	// queue holds the lines waiting for a writer that holds mu; qmu
	// guards it alone, so a Write can queue its line while another
	// writes.
	qmu   sync.Mutex
	queue []*queued

	mu   sync.Mutex
	lock *os.File    // <path>.lock, flocked around every write
	file *os.File    // nil once closed
	info os.FileInfo // of file, to tell whether path still names it
	born time.Time   // time of file's first line; zero until known
}

// Open opens (or creates) the audit log at path for node, with the
// default Options.
func Open(path, node string) (*Log, error) {
	return OpenWith(path, node, Options{})
}

// OpenWith opens (or creates) the audit log at path for node, rotating it
// as o says. The folder is created when missing.
func OpenWith(path, node string, o Options) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("audit folder: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit lock: %w", err)
	}
	name := filepath.Base(path)
	ext := filepath.Ext(name)
	f := &logFile{path: path, o: o.withDefaults(),
		prefix: name[:len(name)-len(ext)] + ".", ext: ext, lock: lock}
	if err := f.reopen(); err != nil {
		lock.Close()
		return nil, err
	}
	return &Log{node: node, f: f}, nil
}

// For returns a Log that writes to l's file with node in its lines, so
// that several nodes in one process can share one log, its two open files
// and its rotation. They share Close too: closing any of them closes the
// file for all. For of a nil Log is nil.
func (l *Log) For(node string) *Log {
	if l == nil {
		return nil
	}
	return &Log{node: node, f: l.f}
}

// Write appends r as one line, filling in the time (when zero) and node,
// and rotating the log first when it is due. An error wrapping
// ErrNotRotated means the line was written but the log was not rotated.
func (l *Log) Write(r Record) error {
	if l == nil {
		return nil
	}
	if r.Time.IsZero() {
		r.Time = l.f.o.Now().UTC()
	}
	r.Node = l.node
	b, err := encode(r)
	if err != nil {
		return fmt.Errorf("audit record: %w", err)
	}
	return l.f.write(&queued{b: b, t: r.Time})
}

// queued is a line waiting to be written, and how that went.
type queued struct {
	b    []byte
	t    time.Time // the line's time
	err  error
	done bool
}

// write queues q and returns once it is written: by this call, together
// with the lines queued before it took mu, or by a call that took mu
// earlier and found q queued.
func (l *logFile) write(q *queued) error {
	l.qmu.Lock()
	l.queue = append(l.queue, q)
	l.qmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if q.done {
		return q.err
	}
	l.qmu.Lock()
	batch := l.queue
	l.queue = nil
	l.qmu.Unlock()
	if l.file != nil {
		l.appendAll(batch)
	}
	for _, w := range batch {
		w.done = true // discarded after Close: err stays nil
	}
	return q.err
}

// Close closes the log (and every Log For made from it). Writes after
// Close are discarded.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	f := l.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return nil
	}
	err := errors.Join(f.file.Close(), f.lock.Close())
	f.file, f.lock = nil, nil
	return err
}

// encode returns r as one line, newline included, within the bound for
// its event.
func encode(r Record) ([]byte, error) {
	limit := MaxLine
	if r.Event == Refused {
		limit = MaxRefusedLine
	}
	return encodeWithin(r, limit)
}

// line is r in JSON with a newline.
func line(r *Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
