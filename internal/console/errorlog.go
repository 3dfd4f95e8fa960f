package console

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// errorLog reads central's error log: <dir>/<node>/errors.log, one report
// per entry, each starting with its time and node ("2026-11-29T17:00:00Z
// ship1: text"), its further lines indented.
type errorLog struct {
	dir     string
	mu      sync.Mutex
	seen    map[string]time.Time // per node, the newest entry already sent as an event
	changed []errorEntry
	cacheMu sync.Mutex
	cache   map[string]parsed // per node, its log as last read
}

// tailSize is how much of a node's log is read: its newest entries.
const tailSize = 256 << 10

// parsed is a node's log as last read: what it was read from (its
// modification time and size) and its entries.
type parsed struct {
	mod     time.Time
	size    int64
	entries []errorEntry
}

// read returns the entries of node's log newer than since, oldest first.
// A log that has not changed since it was last read is not read again
// (the scan looks every 5 s).
func (l *errorLog) read(node string, since time.Time) []errorEntry {
	path := filepath.Join(l.dir, node, "errors.log")
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	l.cacheMu.Lock()
	p, ok := l.cache[node]
	l.cacheMu.Unlock()
	if !ok || !p.mod.Equal(st.ModTime()) || p.size != st.Size() {
		p = parsed{mod: st.ModTime(), size: st.Size(), entries: parse(path, node)}
		l.cacheMu.Lock()
		if l.cache == nil {
			l.cache = map[string]parsed{}
		}
		l.cache[node] = p
		l.cacheMu.Unlock()
	}
	i := 0
	for i < len(p.entries) && !p.entries[i].At.After(since) {
		i++
	}
	return slices.Clone(p.entries[i:])
}

// parse reads the entries of the last tailSize bytes of the log at path.
func parse(path, node string) []errorEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > tailSize {
		if _, err := f.Seek(st.Size()-tailSize, io.SeekStart); err != nil {
			return nil
		}
	}
	var out []errorEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(out) > 0 {
				out[len(out)-1].Text += "\n" + strings.TrimLeft(line, " \t")
			}
			continue
		}
		stamp, rest, ok := strings.Cut(line, " ")
		at, err := time.Parse(time.RFC3339, stamp)
		if !ok || err != nil {
			continue // a line cut by the tail's start
		}
		_, text, _ := strings.Cut(rest, ": ")
		out = append(out, errorEntry{Node: node, At: at, Text: text})
	}
	return out
}

// nodes lists the nodes with a log changed since since.
func (l *errorLog) nodes(since time.Time) []string {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || message.ValidNodeName(e.Name()) != nil {
			continue
		}
		st, err := os.Stat(filepath.Join(l.dir, e.Name(), "errors.log"))
		if err == nil && st.ModTime().After(since) {
			out = append(out, e.Name())
		}
	}
	return out
}

// recent returns up to limit entries, newest first, of node (all nodes
// when "").
func (l *errorLog) recent(node string, limit int) []errorEntry {
	nodes := []string{node}
	if node == "" {
		nodes = l.nodes(time.Time{})
	}
	var all []errorEntry
	for _, n := range nodes {
		all = append(all, l.read(n, time.Time{})...)
	}
	slices.SortStableFunc(all, func(a, b errorEntry) int { return b.At.Compare(a.At) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}

// scan counts each node's entries of the last hour and keeps the entries
// new since the last scan for changes.
func (l *errorLog) scan(now time.Time) map[string]int {
	hourAgo := now.Add(-time.Hour)
	counts := map[string]int{}
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.seen == nil
	if first {
		l.seen = map[string]time.Time{}
	}
	for _, n := range l.nodes(hourAgo) {
		entries := l.read(n, hourAgo)
		counts[n] = len(entries)
		for _, e := range entries {
			if e.At.After(l.seen[n]) {
				if !first {
					l.changed = append(l.changed, e)
				}
				l.seen[n] = e.At
			}
		}
	}
	return counts
}

// changes returns the entries new since it was last called.
func (l *errorLog) changes() []errorEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.changed
	l.changed = nil
	return out
}

// followErrors scans the error log every 5 s.
func (c *Console) followErrors(ctx context.Context) error {
	for {
		c.fleet.setErrors(c.errs.scan(c.o.Now()))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

// listErrors serves /api/errors.
func (c *Console) listErrors(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	node := q.Get("node")
	if node != "" && message.ValidNodeName(node) != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "node= names no node")
		return
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 || limit > 5000 {
		limit = 500
	}
	writeJSON(w, http.StatusOK, errorsView{Errors: c.errs.recent(node, limit)})
}
