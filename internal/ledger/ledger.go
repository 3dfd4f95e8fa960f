// Package ledger is a node's durable record of the deliveries it has
// taken: the executed-ID store that makes execution effectively-once.
//
// The states of a delivery, in order:
//
//	started   — a run began; the record holds the run number. Written
//	            before the method starts, so a node that crashed mid-run
//	            knows, when the message comes again, that this is a rerun
//	            (and counts it against the message's retries).
//	completed — the method ended; its outcome, output included, is kept
//	            until the delivery is finished.
//	refused   — the node ended the delivery without running it (rejected,
//	            undeliverable, deadline passed). Final like a completion.
//	finished  — the outcome is stored by the broker and the message
//	            acknowledged; only the ID and the final status are kept.
//
// A delivery that arrives again is looked up first: completed, refused and
// finished ones never run again, whatever the broker's delivery count says
// (a recreated consumer starts counting from one). The message itself
// stays in the broker until it is acknowledged, so the ledger never keeps
// it. Started, completed and refused records are written with one write
// call before the call returns (with Options.Sync also fsynced); finished
// records are buffered briefly, since losing one only means a redelivery
// is acknowledged from the completed record.
//
// The ledger is shaped for expiry: every delivery has an expiry (after
// the broker can no longer redeliver it, see message.LedgerExpiry), and all
// records of a delivery go to the segment file of the hour it expires in,
// <dir>/<YYYYMMDDTHH>.jsonl. A segment is deleted whole once its hour has
// passed; nothing is ever rewritten or compacted, so no write waits for a
// compaction.
package ledger

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// State is how far a delivery has come.
type State string

// The states, in order.
const (
	Started   State = "started"
	Completed State = "completed"
	Refused   State = "refused"
	Finished  State = "finished"
)

// Final reports whether a delivery in state s must never run again.
func (s State) Final() bool { return s == Completed || s == Refused || s == Finished }

// Outcome is how a delivery ended, enough to send its reply and terminal
// status again.
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
	// ReplyRan marks a reply delivery whose reply method ran (on the whole
	// output: a chunk that only completed nothing else is not one).
	ReplyRan bool `json:"replyRan,omitempty"`
}

// Entry is what the ledger knows of one delivery.
type Entry struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	// Runs is how many times the method was started.
	Runs int `json:"runs,omitempty"`
	// Seq is the stream sequence of the message the delivery came in: a
	// message with the same delivery but another sequence is a copy
	// (published again, or replayed).
	Seq uint64 `json:"seq,omitempty"`
	// Lines is how many lines of streamed output the delivery has numbered
	// (sent, or about to be): a rerun numbers on from there.
	Lines uint64 `json:"lines,omitempty"`
	// AppendAt is where a run of a method that appends to a file was
	// about to append its data (nil: none noted); a rerun looks there
	// before it appends again (datafolder.Folder.Append).
	AppendAt *int64    `json:"appendAt,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
	At       time.Time `json:"at"`
	// Outcome is kept while the delivery is completed or refused but not
	// finished; a finished entry keeps only FinalStatus.
	Outcome     *Outcome `json:"outcome,omitempty"`
	FinalStatus string   `json:"finalStatus,omitempty"`
}

// Options tune the ledger.
type Options struct {
	// Sync fsyncs every durable record (survives power loss; costs a disk
	// flush per record).
	Sync bool
	// Now returns the current time (tests may move it).
	Now func() time.Time
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("ledger closed")

// ErrUnknown: a record refers to a delivery the ledger has no entry for.
var ErrUnknown = errors.New("delivery not in the ledger")

// Ledger is the executed-ID store. It is safe for concurrent use.
type Ledger struct {
	mu       sync.Mutex
	dir      string
	opts     Options
	closed   bool
	entries  map[string]*Entry
	segments map[string][]string // segment name → keys whose records are in it
	files    map[string]*os.File // open segment files
	// buffered holds finished records not yet written, by segment.
	buffered   map[string][]byte
	flushTimer *time.Timer
	nextSweep  time.Time
}

// DefaultExpiry applies to a delivery recorded without an expiry.
const DefaultExpiry = 48 * time.Hour

// FlushInterval bounds how long a buffered finished record waits.
const FlushInterval = 200 * time.Millisecond

// maxOpenFiles bounds the segment files kept open for appending.
const maxOpenFiles = 16

const segmentLayout = "20060102T15"

// Open opens (or creates) the ledger in dir and replays it. Segments
// whose hour has passed are deleted. A ledger.jsonl left beside dir by an
// older steward is imported and removed.
func Open(dir string, opts Options) (*Ledger, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger folder: %w", err)
	}
	l := &Ledger{dir: dir, opts: opts, entries: map[string]*Entry{}, segments: map[string][]string{},
		files: map[string]*os.File{}, buffered: map[string][]byte{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("ledger folder: %w", err)
	}
	now := opts.Now()
	for _, name := range names {
		seg := strings.TrimSuffix(filepath.Base(name), ".jsonl")
		if end, ok := segmentEnd(seg); !ok || !now.Before(end) {
			if err := os.Remove(name); err != nil {
				return nil, fmt.Errorf("drop expired ledger segment: %w", err)
			}
			continue
		}
		if err := l.replay(name, seg); err != nil {
			return nil, err
		}
	}
	if err := l.importLegacy(dir + ".jsonl"); err != nil {
		return nil, err
	}
	l.nextSweep = now.Add(time.Minute)
	return l, nil
}

// segmentOf names the segment that holds the records of a delivery that
// expires at exp: the hour it expires in.
func segmentOf(exp time.Time) string { return exp.UTC().Format(segmentLayout) }

// segmentEnd is when every entry of segment seg has expired.
func segmentEnd(seg string) (time.Time, bool) {
	t, err := time.Parse(segmentLayout, seg)
	if err != nil {
		return time.Time{}, false
	}
	return t.Add(time.Hour), true
}

func (l *Ledger) replay(path, seg string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.ID == "" {
			// A torn last line from a crash mid-write: everything before it
			// is intact, and the delivery it described will come again.
			continue
		}
		l.apply(&e, seg)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read ledger: %w", err)
	}
	return nil
}

// importLegacy moves the entries of a single-file ledger into segments.
func (l *Ledger) importLegacy(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	tmp := &Ledger{entries: map[string]*Entry{}, segments: map[string][]string{}}
	if err := tmp.replay(path, ""); err != nil {
		return err
	}
	now := l.opts.Now()
	for _, e := range tmp.entries {
		if e.Expires.IsZero() || !now.Before(e.Expires) || l.entries[e.ID] != nil {
			continue
		}
		if e.State == "finished" || e.State == "completed" && e.Outcome == nil {
			e.State = Finished
		}
		if err := l.writeDurable(e); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove old ledger: %w", err)
	}
	return nil
}

// apply merges a record into memory; seg is the segment it is in.
func (l *Ledger) apply(rec *Entry, seg string) {
	cur, ok := l.entries[rec.ID]
	if !ok {
		cur = &Entry{ID: rec.ID}
		l.entries[rec.ID] = cur
		l.segments[seg] = append(l.segments[seg], rec.ID)
	}
	cur.State, cur.At = rec.State, rec.At
	if rec.Runs > cur.Runs {
		cur.Runs = rec.Runs
	}
	if !rec.Expires.IsZero() {
		cur.Expires = rec.Expires
	}
	if rec.Seq != 0 {
		cur.Seq = rec.Seq
	}
	if rec.Lines > cur.Lines {
		cur.Lines = rec.Lines
	}
	if rec.AppendAt != nil {
		cur.AppendAt = rec.AppendAt
	}
	if rec.Outcome != nil {
		cur.Outcome = rec.Outcome
		cur.FinalStatus = rec.Outcome.Status
	}
	if rec.FinalStatus != "" {
		cur.FinalStatus = rec.FinalStatus
	}
	if cur.State == Finished {
		cur.Outcome = nil
	}
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

// Start records that run number Runs+1 of a delivery begins and returns
// that number. seq (the message's stream sequence) and expires are kept
// from the first record of the delivery. It returns once the record is
// written; on error nothing is recorded and the method must not run.
func (l *Ledger) Start(id string, seq uint64, expires time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	run := 1
	if e, ok := l.entries[id]; ok {
		if e.State.Final() {
			return 0, fmt.Errorf("start %s: it is %s already", id, e.State)
		}
		run, seq, expires = e.Runs+1, e.Seq, e.Expires
	}
	return run, l.writeDurable(&Entry{ID: id, State: Started, Runs: run, Seq: seq, Expires: expires})
}

// Progress records that a started delivery has numbered lines lines of
// streamed output. It returns once the record is written.
func (l *Ledger) Progress(id string, lines uint64) error {
	return l.note(id, "progress", func(r *Entry) { r.Lines = lines })
}

// NoteAppend records that a started delivery's method is about to append
// its data to a file at offset. It returns once the record is written.
func (l *Ledger) NoteAppend(id string, offset int64) error {
	return l.note(id, "note append", func(r *Entry) { r.AppendAt = &offset })
}

// note writes a record of a started delivery, what it keeps changed by set.
func (l *Ledger) note(id, what string, set func(*Entry)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[id]
	if !ok || e.State != Started {
		return fmt.Errorf("%s %s: %w", what, id, ErrUnknown)
	}
	r := &Entry{ID: id, State: Started, Runs: e.Runs, Seq: e.Seq, Lines: e.Lines, AppendAt: e.AppendAt, Expires: e.Expires}
	set(r)
	return l.writeDurable(r)
}

// Complete records the outcome of a delivery's run. It returns once the
// record is written; on error the outcome is not recorded.
func (l *Ledger) Complete(id string, expires time.Time, o *Outcome) error {
	return l.final(id, Completed, 0, expires, o)
}

// Refuse records that a delivery, which came in the message at stream
// sequence seq, ended without running (o says how). It returns once the
// record is written.
func (l *Ledger) Refuse(id string, seq uint64, expires time.Time, o *Outcome) error {
	return l.final(id, Refused, seq, expires, o)
}

func (l *Ledger) final(id string, st State, seq uint64, expires time.Time, o *Outcome) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[id]; ok {
		seq, expires = e.Seq, e.Expires
	}
	return l.writeDurable(&Entry{ID: id, State: st, Seq: seq, Expires: expires, Outcome: o})
}

// Finish records that a delivery's outcome is stored by the broker and
// its message acknowledged; its output is forgotten. The record is
// buffered and written with the next durable record or within
// FlushInterval.
func (l *Ledger) Finish(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	e, ok := l.entries[id]
	if !ok {
		return fmt.Errorf("finish %s: %w", id, ErrUnknown)
	}
	rec := &Entry{ID: id, State: Finished, Seq: e.Seq, At: l.opts.Now().UTC(), FinalStatus: e.FinalStatus}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("ledger record %s: %w", id, err)
	}
	seg := segmentOf(e.Expires)
	l.buffered[seg] = append(append(l.buffered[seg], b...), '\n')
	l.apply(rec, seg)
	l.sweepLocked()
	if l.flushTimer == nil {
		l.flushTimer = time.AfterFunc(FlushInterval, l.flushBuffered)
	}
	return nil
}

// writeDurable writes rec (after anything buffered) with one write call
// and applies it only once written. The caller holds mu.
func (l *Ledger) writeDurable(rec *Entry) error {
	if l.closed {
		return ErrClosed
	}
	rec.At = l.opts.Now().UTC()
	if rec.Expires.IsZero() {
		rec.Expires = rec.At.Add(DefaultExpiry)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("ledger record %s: %w", rec.ID, err)
	}
	seg := segmentOf(rec.Expires)
	if err := l.flushLocked(); err != nil {
		return err
	}
	if err := l.append(seg, append(b, '\n')); err != nil {
		return err
	}
	l.apply(rec, seg)
	l.sweepLocked()
	return nil
}

// append writes b to segment seg with one write call.
func (l *Ledger) append(seg string, b []byte) error {
	f, err := l.file(seg)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("ledger write: %w", err)
	}
	if l.opts.Sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("ledger sync: %w", err)
		}
	}
	return nil
}

// file returns the open file of segment seg, opening it (and closing
// another if too many are open).
func (l *Ledger) file(seg string) (*os.File, error) {
	if f, ok := l.files[seg]; ok {
		return f, nil
	}
	if len(l.files) >= maxOpenFiles {
		for name, f := range l.files {
			f.Close()
			delete(l.files, name)
			break
		}
	}
	f, err := os.OpenFile(filepath.Join(l.dir, seg+".jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger segment: %w", err)
	}
	l.files[seg] = f
	return f, nil
}

// flushBuffered writes buffered records (timer callback).
func (l *Ledger) flushBuffered() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushTimer = nil
	if !l.closed {
		_ = l.flushLocked() // a failed write is retried with the next record
	}
}

// flushLocked writes the buffered records; the caller holds mu.
func (l *Ledger) flushLocked() error {
	for seg, b := range l.buffered {
		if err := l.append(seg, b); err != nil {
			return err
		}
		delete(l.buffered, seg)
	}
	return nil
}

// sweepLocked deletes segments whose hour has passed, at most once a
// minute. The caller holds mu.
func (l *Ledger) sweepLocked() {
	now := l.opts.Now()
	if now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(time.Minute)
	for seg, keys := range l.segments {
		if end, ok := segmentEnd(seg); ok && now.Before(end) {
			continue
		}
		if f, ok := l.files[seg]; ok {
			f.Close()
			delete(l.files, seg)
		}
		delete(l.buffered, seg)
		if err := os.Remove(filepath.Join(l.dir, seg+".jsonl")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue // try again at the next sweep
		}
		for _, k := range keys {
			delete(l.entries, k)
		}
		delete(l.segments, seg)
	}
}

// Len is the number of deliveries the ledger remembers.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Segments lists the segment files on disk, oldest first.
func (l *Ledger) Segments() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.segments))
	for seg := range l.segments {
		out = append(out, seg)
	}
	slices.Sort(out)
	return out
}

// Close writes what is buffered and closes the files.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if l.flushTimer != nil {
		l.flushTimer.Stop()
		l.flushTimer = nil
	}
	err := l.flushLocked()
	for seg, f := range l.files {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		delete(l.files, seg)
	}
	l.closed = true
	return err
}
