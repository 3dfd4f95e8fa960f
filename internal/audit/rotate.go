package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Rotation defaults, used for zero Options fields.
const (
	DefaultMaxSize = 100 << 20
	DefaultMaxAge  = 24 * time.Hour
	DefaultKeep    = 10
)

// Options bound the log on disk. The zero value means the defaults.
type Options struct {
	// MaxSize is the largest a file grows, in bytes, before it is rotated:
	// the line that would take it past MaxSize goes to a new file. Zero
	// means DefaultMaxSize (100 MiB); negative, never rotate by size.
	MaxSize int64
	// MaxAge rotates the file before the first write once its first line
	// is MaxAge old. The age is measured from the time field of the file's
	// first line, which every process sharing the file reads alike and
	// which survives restarts; a file whose first line has no readable
	// time is dated by its modification time. A first line dated in the
	// future counts as written when the log first sees it. Zero means
	// DefaultMaxAge (24h); negative, never rotate by age.
	MaxAge time.Duration
	// Keep is how many rotated files are kept; older ones are deleted
	// after each rotation. Zero means DefaultKeep (10); negative keeps all.
	Keep int
	// Now is the clock for record times, file ages and rotated names.
	// Nil means time.Now.
	Now func() time.Time
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// stampLayout is the time in rotated names: fixed width, so names sort by
// time.
const stampLayout = "20060102T150405.000Z"

// reopen opens the file at path (creating it) in place of the open one.
func (l *logFile) reopen() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat audit log: %w", err)
	}
	if l.file != nil {
		l.file.Close() // only written to, and every write was checked
	}
	l.file, l.info, l.born = f, fi, time.Time{}
	return nil
}

// MaxBatch bounds the bytes of the lines one write call takes together;
// a longer line is written alone.
const MaxBatch = 256 << 10

// appendAll writes the queued lines, in order, holding the lock once: in
// batches of whole lines, each with one write call, and sets each line's
// error. Called with l.mu held.
func (l *logFile) appendAll(lines []*queued) {
	if err := lockFile(l.lock); err != nil {
		// Better lines in a log that may overgrow than no lines.
		for _, q := range lines {
			if _, werr := l.file.Write(q.b); werr != nil {
				q.err = fmt.Errorf("audit write: %w", werr)
				continue
			}
			q.err = fmt.Errorf("%w: lock: %w", ErrNotRotated, err)
		}
		return
	}
	// An unlock error leaves the lock to Close, which releases it too.
	defer unlockFile(l.lock)
	limit := int64(MaxBatch)
	if l.o.MaxSize > 0 {
		limit = min(limit, l.o.MaxSize)
	}
	for len(lines) > 0 {
		n, size := 1, int64(len(lines[0].b))
		for n < len(lines) && size+int64(len(lines[n].b)) <= limit {
			size += int64(len(lines[n].b))
			n++
		}
		err := l.append(lines[:n], size)
		for _, q := range lines[:n] {
			q.err = err
		}
		lines = lines[n:]
	}
}

// append writes lines, size bytes in all, with one write call, rotating
// first when they are due to go to a new file. Called holding the lock.
func (l *logFile) append(lines []*queued, size int64) error {
	b := lines[0].b
	if len(lines) > 1 {
		b = make([]byte, 0, size)
		for _, q := range lines {
			b = append(b, q.b...)
		}
	}
	before, rotErr := l.prepare(len(b))
	if _, err := l.file.Write(b); err != nil {
		return errors.Join(fmt.Errorf("audit write: %w", err), rotErr)
	}
	if before == 0 && l.born.IsZero() {
		l.born = earliest(lines[0].t, l.o.Now())
	}
	return rotErr
}

// prepare makes l.file the file at path and rotates it when a line of n
// bytes is due to go to a new file. It returns the file's size before the
// line. Its errors wrap ErrNotRotated: the line can still go to l.file.
func (l *logFile) prepare(n int) (int64, error) {
	fi, err := os.Stat(l.path)
	switch {
	case err == nil && os.SameFile(fi, l.info):
	case err == nil || errors.Is(err, fs.ErrNotExist):
		// Rotated by another process, or moved away by hand.
		if err := l.reopen(); err != nil {
			return -1, fmt.Errorf("%w: %w", ErrNotRotated, err)
		}
		fi = l.info
	default:
		return -1, fmt.Errorf("%w: stat audit log: %w", ErrNotRotated, err)
	}
	size := fi.Size()
	if size == 0 {
		return 0, nil
	}
	now := l.o.Now()
	if !l.due(fi, size+int64(n), now) {
		return size, nil
	}
	if err := l.rotate(now); err != nil {
		return size, err
	}
	return 0, nil
}

// due says whether the file, at size bytes with the next line, is to be
// rotated.
func (l *logFile) due(fi os.FileInfo, size int64, now time.Time) bool {
	if l.o.MaxSize > 0 && size > l.o.MaxSize {
		return true
	}
	if l.o.MaxAge < 0 {
		return false
	}
	if l.born.IsZero() {
		l.born = earliest(l.firstLineTime(fi), now)
	}
	return now.Sub(l.born) >= l.o.MaxAge
}

// firstLineTime reads the time field of the file's first line, which
// encoding/json writes first; it falls back to the modification time.
func (l *logFile) firstLineTime(fi os.FileInfo) time.Time {
	const head = `{"time":"`
	buf := make([]byte, len(head)+len(time.RFC3339Nano)+8)
	n, err := l.file.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fi.ModTime()
	}
	rest, ok := bytes.CutPrefix(buf[:n], []byte(head))
	if !ok {
		return fi.ModTime()
	}
	stamp, _, ok := bytes.Cut(rest, []byte(`"`))
	if !ok {
		return fi.ModTime()
	}
	t, err := time.Parse(time.RFC3339Nano, string(stamp))
	if err != nil {
		return fi.ModTime()
	}
	return t
}

// rotate renames the file at path, which is l.file, opens a new one and
// deletes the oldest rotated files beyond Keep. Called holding the lock.
func (l *logFile) rotate(now time.Time) error {
	names, err := l.rotated()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotRotated, err)
	}
	// A name later than every earlier one, even within one millisecond or
	// when the clock stepped back: names stay unique and in order.
	at := now.UTC().Truncate(time.Millisecond)
	if len(names) > 0 {
		if last, ok := l.stamp(names[len(names)-1]); ok && !at.After(last) {
			at = last.Add(time.Millisecond)
		}
	}
	name := l.prefix + at.Format(stampLayout) + l.ext
	if err := os.Rename(l.path, filepath.Join(filepath.Dir(l.path), name)); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRotated, err)
	}
	if err := l.reopen(); err != nil {
		// The line goes to the renamed file; the next write opens path.
		return fmt.Errorf("%w: %w", ErrNotRotated, err)
	}
	return l.prune(append(names, name))
}

// rotated lists the names of the rotated files, oldest first.
func (l *logFile) rotated() ([]string, error) {
	entries, err := os.ReadDir(filepath.Dir(l.path))
	if err != nil {
		return nil, fmt.Errorf("list rotated audit logs: %w", err)
	}
	var names []string
	for _, e := range entries { // sorted by name, so by time
		if _, ok := l.stamp(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// stamp parses the time of a rotated name; ok is false for other names.
func (l *logFile) stamp(name string) (t time.Time, ok bool) {
	if len(name) != len(l.prefix)+len(stampLayout)+len(l.ext) ||
		name[:len(l.prefix)] != l.prefix || name[len(name)-len(l.ext):] != l.ext {
		return time.Time{}, false
	}
	t, err := time.Parse(stampLayout, name[len(l.prefix):len(name)-len(l.ext)])
	return t, err == nil
}

// prune deletes the oldest of names (sorted, oldest first) beyond Keep.
func (l *logFile) prune(names []string) error {
	if l.o.Keep < 0 || len(names) <= l.o.Keep {
		return nil
	}
	var errs []error
	dir := filepath.Dir(l.path)
	for _, name := range names[:len(names)-l.o.Keep] {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: delete old audit logs: %w", ErrNotRotated, err)
	}
	return nil
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
