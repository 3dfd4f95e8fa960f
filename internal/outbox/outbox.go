// Package outbox keeps the messages a node was given while it could not
// reach the broker, on the node's disk, until they are sent.
//
// An outbox is a folder of files, one per message, each holding the
// message as the sender prepared it (ID, deadline and defaults fixed). A
// message is written to a temporary file, synced, and renamed into place,
// so a file in the outbox is always whole, and it is there before Put
// returns: a node killed right after it answered an operator still sends
// the message after its restart. Several processes may put messages into
// one outbox (the node and `steward send` beside it); only the node takes
// them out. Files are named by the time they were put, so List returns
// them in that order.
//
// The outbox decides nothing about sending: the sender sends a message
// again with the same ID, which the broker and the receiving node
// deduplicate, so a message sent twice (sent, then the node died before
// Remove) still runs once.
package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// Outbox is a folder of messages waiting to be sent.
type Outbox struct {
	dir string
	mu  sync.Mutex
	// now names the files; tests may fix it.
	now func() time.Time

	emptyMu sync.Mutex
	emptyAt time.Time // the folder's modification time when it was last found empty
}

// Open opens (or creates) the outbox in dir.
func Open(dir string) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return &Outbox{dir: dir, now: time.Now}, nil
}

// Dir is the outbox's folder.
func (o *Outbox) Dir() string { return o.dir }

// Entry is one message waiting in the outbox.
type Entry struct {
	// Name is the entry's file name, which Remove takes.
	Name string
	Msg  *message.Message
}

// ErrNoID: a message without an ID cannot wait in the outbox (it could
// not be told apart when it is sent again).
var ErrNoID = errors.New("message without an id")

// Put stores m (prepared, with its ID) and returns once it is on disk.
func (o *Outbox) Put(m *message.Message) error {
	if m.ID == "" {
		return ErrNoID
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("outbox: encode %s: %w", m.ID, err)
	}
	name := strconv.FormatInt(o.now().UnixNano(), 10) + "-" + m.ID + ".json"
	tmp, err := os.CreateTemp(o.dir, ".put-*")
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("outbox: write %s: %w", m.ID, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("outbox: sync %s: %w", m.ID, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(o.dir, name)); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return syncDir(o.dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("outbox: sync folder: %w", err)
	}
	return nil
}

// List returns the waiting messages, oldest first. A file that cannot be
// read as a message is left where it is and skipped (with its name in
// bad), never deleted: an operator can look at it.
func (o *Outbox) List() (entries []Entry, bad []string, err error) {
	names, err := o.names()
	if err != nil {
		return nil, nil, err
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(o.dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // sent and removed meanwhile
		}
		if err != nil {
			return entries, bad, fmt.Errorf("outbox: %w", err)
		}
		var m message.Message
		if err := json.Unmarshal(b, &m); err != nil || m.ID == "" {
			bad = append(bad, name)
			continue
		}
		entries = append(entries, Entry{Name: name, Msg: &m})
	}
	return entries, bad, nil
}

// Len is how many messages wait.
func (o *Outbox) Len() int {
	names, _ := o.names()
	return len(names)
}

// Empty reports whether the outbox holds no message. It reads the folder
// only when the folder changed since it was last found empty: one stat
// instead of a listing for the node's regular look (another process, such
// as `steward send`, may put messages in). The modification time is
// trusted only once it is more than a second old when the listing found
// the folder empty, so that a message put in within the file system's
// timestamp granularity of that listing still changes it.
func (o *Outbox) Empty() bool {
	st, err := os.Stat(o.dir)
	if err != nil {
		return o.Len() == 0
	}
	mt := st.ModTime()
	o.emptyMu.Lock()
	defer o.emptyMu.Unlock()
	if !o.emptyAt.IsZero() && mt.Equal(o.emptyAt) {
		return true
	}
	names, err := o.names()
	empty := err == nil && len(names) == 0
	o.emptyAt = time.Time{}
	if empty && time.Since(mt) > time.Second {
		o.emptyAt = mt
	}
	return empty
}

func (o *Outbox) names() ([]string, error) {
	des, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	var names []string
	for _, de := range des {
		if n := de.Name(); de.Type().IsRegular() && strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Remove takes a sent message out of the outbox.
func (o *Outbox) Remove(name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := os.Remove(filepath.Join(o.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}
