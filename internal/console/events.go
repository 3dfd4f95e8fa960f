package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// hub hands events to every open event stream. A stream that cannot keep
// up is closed (its browser reconnects and reads the state again) rather
// than holding the others back.
type hub struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
}

func newHub() *hub { return &hub{subs: map[chan []byte]struct{}{}} }

// frame is one server-sent event with v as its JSON data.
func frame(event string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte("null")
	}
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, data)
}

// publish sends event with v as its data to every stream.
func (h *hub) publish(event string, v any) {
	frame := frame(event, v)
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- frame:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) subscribe() chan []byte {
	ch := make(chan []byte, 64)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *hub) unsubscribe(ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// streamEvents makes w an event stream; it returns a function that writes
// one frame, or nil when w cannot stream.
func streamEvents(w http.ResponseWriter) func(frame []byte) error {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(frame []byte) error {
		if _, err := w.Write(frame); err != nil {
			return err
		}
		return rc.Flush()
	}
	if write([]byte("retry: 2000\n\n")) != nil {
		return nil
	}
	return write
}

// events serves /api/events until the browser goes or the console stops.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	ch := c.hub.subscribe()
	defer c.hub.unsubscribe(ch)
	write := streamEvents(w)
	if write == nil {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case frame, ok := <-ch:
			if !ok {
				return // too slow: the browser reconnects and reloads
			}
			if write(frame) != nil {
				return
			}
		case <-ping.C:
			if write([]byte(": ping\n\n")) != nil {
				return
			}
		}
	}
}

// follow keeps the console's state: the registry and the status bucket
// through KV watches, queue depths every 10 s, the error log every 5 s;
// changes go out as events at most twice a second. It returns when ctx
// ends; a watch that ends is started again.
func (c *Console) follow(ctx context.Context) {
	go c.keep(ctx, "registry", c.followRegistry)
	go c.keep(ctx, "status", c.followStatuses)
	go c.keep(ctx, "queues", c.followQueues)
	go c.keep(ctx, "error log", c.followErrors)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if nodes, queues := c.fleet.changes(); len(nodes) > 0 || len(queues) > 0 {
			if len(nodes) > 0 {
				c.hub.publish("nodes", nodes)
			}
			if len(queues) > 0 {
				c.hub.publish("queues", queues)
			}
		}
		if ds := c.msgs.changes(); len(ds) > 0 {
			c.hub.publish("deliveries", ds)
		}
		if es := c.errs.changes(); len(es) > 0 {
			c.hub.publish("errors", es)
		}
	}
}

// keep runs f until ctx ends, again 2 s after each time it returns.
func (c *Console) keep(ctx context.Context, what string, f func(context.Context) error) {
	for ctx.Err() == nil {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("console: following the fleet", "what", what, "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}
