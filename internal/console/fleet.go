package console

import (
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stewardfleet/steward/internal/registry"
)

// fleet is the registry as the console last saw it, with each node's
// queue depth and errors of the last hour, and what changed since the
// last events went out.
type fleet struct {
	now     func() time.Time
	mu      sync.Mutex
	nodes   map[string]*registry.Node
	queues  map[string]uint64
	errors  map[string]int
	changed map[string]bool   // nodes to send again
	removed map[string]bool   // nodes gone from the registry
	qmoved  map[string]uint64 // queue depths that changed
}

func newFleet(now func() time.Time) *fleet {
	return &fleet{now: now, nodes: map[string]*registry.Node{}, queues: map[string]uint64{}, errors: map[string]int{},
		changed: map[string]bool{}, removed: map[string]bool{}, qmoved: map[string]uint64{}}
}

// view is the node as the fleet view shows it (f.mu held).
func (f *fleet) view(n *registry.Node, now time.Time) nodeView {
	v := nodeView{Name: n.Name, Online: n.Online(now), LastSeen: n.LastSeen, WindowMs: n.OnlineWindow().Milliseconds(),
		Stopped: !n.StoppedAt.IsZero(), Version: n.Version, Labels: n.Labels, Methods: n.Methods,
		Errors1h: f.errors[n.Name], Conflict: n.Conflict}
	switch {
	case v.Online && !n.StartedAt.IsZero():
		v.Since = n.StartedAt
	case v.Online:
		v.Since = n.LastSeen
	case v.Stopped:
		v.Since = n.StoppedAt
	default:
		v.Since = n.LastSeen
	}
	if q, ok := f.queues[n.Name]; ok {
		v.Queue = &q
	}
	return v
}

// all is every node, by name.
func (f *fleet) all() []nodeView {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	out := make([]nodeView, 0, len(f.nodes))
	for _, n := range f.nodes {
		out = append(out, f.view(n, now))
	}
	slices.SortFunc(out, func(a, b nodeView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// changes returns what changed since it was last called.
func (f *fleet) changes() (nodes []nodeView, queues map[string]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for name := range f.changed {
		if n, ok := f.nodes[name]; ok {
			nodes = append(nodes, f.view(n, now))
		}
	}
	for name := range f.removed {
		nodes = append(nodes, nodeView{Name: name, Removed: true})
	}
	if len(f.qmoved) > 0 {
		queues = f.qmoved
		f.qmoved = map[string]uint64{}
	}
	clear(f.changed)
	clear(f.removed)
	return nodes, queues
}

func (f *fleet) put(n *registry.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[n.Name] = n
	f.changed[n.Name] = true
	delete(f.removed, n.Name)
}

func (f *fleet) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nodes, name)
	delete(f.changed, name)
	f.removed[name] = true
}

func (f *fleet) setQueues(depths map[string]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, d := range depths {
		if old, ok := f.queues[name]; !ok || old != d {
			f.qmoved[name] = d
		}
	}
	f.queues = depths
}

func (f *fleet) setErrors(counts map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name := range f.nodes {
		if f.errors[name] != counts[name] {
			f.changed[name] = true
		}
	}
	f.errors = counts
}

// followRegistry applies the registry's changes until the watch ends.
func (c *Console) followRegistry(ctx context.Context) error {
	changes, err := c.b.WatchRegistry(ctx)
	if err != nil {
		return err
	}
	for ch := range changes {
		switch {
		case ch.CaughtUp:
		case ch.Removed:
			c.fleet.remove(ch.Node.Name)
		default:
			c.fleet.put(ch.Node)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("the registry watch ended")
}

// followQueues reads every queue's depth every 10 s.
func (c *Console) followQueues(ctx context.Context) error {
	for {
		depths, err := c.b.QueueDepths(ctx)
		if err != nil {
			return err
		}
		c.fleet.setQueues(depths)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
		}
	}
}

// getFleet serves /api/fleet, gzipped when the browser takes it: 10,000
// nodes are about 4 MB of JSON, under 0.1 MB gzipped (their method lists
// repeat).
func (c *Console) getFleet(w http.ResponseWriter, r *http.Request) {
	v := fleetView{Central: c.o.Central, Now: c.o.Now().UTC(), Nodes: c.fleet.all()}
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		writeJSON(w, http.StatusOK, v)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Set("Vary", "Accept-Encoding")
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	defer zw.Close()
	writeJSON(gzipped{w, zw}, http.StatusOK, v)
}

// gzipped is a ResponseWriter whose body goes through a gzip writer.
type gzipped struct {
	http.ResponseWriter
	zw *gzip.Writer
}

func (g gzipped) Write(b []byte) (int, error) { return g.zw.Write(b) }
