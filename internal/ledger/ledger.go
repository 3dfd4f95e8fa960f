// Package ledger is a node's durable record of the messages it has taken:
// the executed-ID store that makes execution effectively-once.
//
// For every delivery a node runs, the ledger records
//
//	completed — the method ended (its outcome, output included, is kept);
//	finished  — the reply and terminal status are stored and the message
//	            acknowledged; only the ID is kept from here on.
//
// A delivery that arrives again is looked up first: completed or finished
// ones are never run again (a completed one's reply is re-sent from the
// ledger). A delivery the ledger does not know was never completed (a crash
// or stop interrupted it, or it never ran) and runs. The message itself
// stays in the broker until it is acknowledged, so the ledger never needs
// to keep it. Entries are kept
// until their message's expiry, which is later than any redelivery can
// arrive, then dropped when the log is compacted.
//
// The ledger is an append-only JSON-lines file. A completed record is
// written with one write call before Complete returns (together with any
// buffered finished records), so it survives the process being killed;
// with Options.Sync it is also fsynced, so it survives power loss.
package ledger

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// State is how far a delivery has come.
type State string

// The states, in order.
const (
	Completed State = "completed"
	Finished  State = "finished"
)

// Outcome is the result of a completed delivery, enough to re-send its
// reply and terminal status.
type Outcome struct {
	Status    string `json:"status"`
	ExitCode  *int   `json:"exitCode,omitempty"`
	Error     string `json:"error,omitempty"`
	ErrorCode string `json:"errorCode,omitempty"`
	Output    []byte `json:"output,omitempty"`
	Stderr    []byte `json:"stderr,omitempty"`
	// StartedAt and FinishedAt bound the method's run.
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// Entry is what the ledger knows of one delivery.
type Entry struct {
	ID      string    `json:"id"`
	State   State     `json:"state"`
	Attempt uint64    `json:"attempt,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	At      time.Time `json:"at"`
	Outcome *Outcome  `json:"outcome,omitempty"`
}

// Options tune the ledger.
type Options struct {
	// Sync fsyncs every record (survives power loss; costs a disk flush).
	Sync bool
	// Now returns the current time (tests may fix it).
	Now func() time.Time
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("ledger closed")

// Ledger is the executed-ID store. It is safe for concurrent use.
type Ledger struct {
	mu        sync.Mutex
	path      string
	file      *os.File
	entries   map[string]*Entry
	opts      Options
	written   int64 // bytes in the file
	compactAt int64 // size that triggers the next compaction
	// buf holds records not yet written (Finish records wait for the next
	// Complete or for flushTimer).
	buf        []byte
	flushTimer *time.Timer
}

const minCompactSize = 8 << 20

// Open opens (or creates) the ledger at path, replays it and compacts it.
func Open(path string, opts Options) (*Ledger, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("ledger folder: %w", err)
	}
	l := &Ledger{path: path, entries: map[string]*Entry{}, opts: opts}
	if err := l.replay(); err != nil {
		return nil, err
	}
	if err := l.compact(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Ledger) replay() error {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// A torn last line from a crash mid-write: everything before it
			// is intact, and the delivery it described will come again.
			continue
		}
		l.apply(&e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read ledger: %w", err)
	}
	return nil
}

// apply merges a record into memory.
func (l *Ledger) apply(rec *Entry) {
	cur, ok := l.entries[rec.ID]
	if !ok {
		cur = &Entry{ID: rec.ID}
		l.entries[rec.ID] = cur
	}
	cur.State, cur.At = rec.State, rec.At
	if rec.Attempt != 0 {
		cur.Attempt = rec.Attempt
	}
	if !rec.Expires.IsZero() {
		cur.Expires = rec.Expires
	}
	if rec.Outcome != nil {
		cur.Outcome = rec.Outcome
	}
	if cur.State == Finished {
		cur.Outcome = nil
	}
}

// compact rewrites the file with the live entries only.
func (l *Ledger) compact() error {
	now := l.opts.Now()
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("compact ledger: %w", err)
	}
	w := bufio.NewWriter(f)
	var size int64
	for id, e := range l.entries {
		if !e.Expires.IsZero() && now.After(e.Expires) {
			delete(l.entries, id)
			continue
		}
		b, err := json.Marshal(e)
		if err != nil {
			f.Close()
			return fmt.Errorf("compact ledger: %w", err)
		}
		b = append(b, '\n')
		n, _ := w.Write(b)
		size += int64(n)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("compact ledger: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("compact ledger: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("compact ledger: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("compact ledger: %w", err)
	}
	if l.file != nil {
		l.file.Close()
	}
	l.file, err = os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("reopen ledger: %w", err)
	}
	l.written = size
	l.compactAt = max(4*size, minCompactSize)
	return nil
}

// Get returns a copy of the entry for a delivery.
func (l *Ledger) Get(id string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[id]
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

// Complete records the outcome of a delivery (its attempt-th delivery),
// kept until expires. It returns once the record is written.
func (l *Ledger) Complete(id string, attempt uint64, expires time.Time, o *Outcome) error {
	return l.write(&Entry{ID: id, State: Completed, Attempt: attempt, Expires: expires, Outcome: o}, true)
}

// Finish records that a delivery's reply and status are stored and the
// message acknowledged; its output is forgotten. The record is buffered and
// written with the next Complete, or within FlushInterval: losing it in a
// crash only means a redelivery re-sends the reply, which the broker and
// the sender deduplicate.
func (l *Ledger) Finish(id string) error {
	return l.write(&Entry{ID: id, State: Finished}, false)
}

// FlushInterval bounds how long a buffered Finish record waits.
const FlushInterval = 200 * time.Millisecond

func (l *Ledger) write(rec *Entry, now bool) error {
	rec.At = l.opts.Now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("ledger record %s: %w", rec.ID, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return ErrClosed
	}
	l.apply(rec)
	l.buf = append(append(l.buf, b...), '\n')
	if !now {
		if l.flushTimer == nil {
			l.flushTimer = time.AfterFunc(FlushInterval, l.flushBuffered)
		}
		return nil
	}
	return l.flushLocked()
}

// flushBuffered writes buffered records (timer callback).
func (l *Ledger) flushBuffered() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushTimer = nil
	if l.file != nil {
		_ = l.flushLocked() // a failed write is retried with the next record
	}
}

// flushLocked writes the buffer with one call; the caller holds mu.
func (l *Ledger) flushLocked() error {
	if len(l.buf) == 0 {
		return nil
	}
	if _, err := l.file.Write(l.buf); err != nil {
		return fmt.Errorf("ledger write: %w", err)
	}
	if l.opts.Sync {
		if err := l.file.Sync(); err != nil {
			return fmt.Errorf("ledger sync: %w", err)
		}
	}
	l.written += int64(len(l.buf))
	l.buf = l.buf[:0]
	if l.written > l.compactAt {
		return l.compact()
	}
	return nil
}

// Len is the number of entries kept.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Close writes what is buffered and closes the file.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	if l.flushTimer != nil {
		l.flushTimer.Stop()
		l.flushTimer = nil
	}
	ferr := l.flushLocked()
	err := l.file.Close()
	if err == nil {
		err = ferr
	}
	l.file = nil
	return err
}
