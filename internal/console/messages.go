package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/status"
)

// maxMessages is how many messages the message list keeps (the newest).
const maxMessages = 5000

// messageIndex is the recent messages, from the status bucket's watch.
type messageIndex struct {
	mu      sync.Mutex
	max     int
	byID    map[string]*indexed
	changed []deliveryView
}

type indexed struct {
	summary  messageSummary
	statuses map[string]status.Status // by node, deliveries only
}

func newMessageIndex(max int) *messageIndex {
	return &messageIndex{max: max, byID: map[string]*indexed{}}
}

// add takes a status record as the watch gives it.
func (x *messageIndex) add(r *status.Record) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.byID[r.ID]
	if m == nil {
		m = &indexed{summary: messageSummary{ID: r.ID, Method: r.Method, FromNode: r.FromNode, SentAt: r.SentAt}, statuses: map[string]status.Status{}}
		x.byID[r.ID] = m
	}
	if r.UpdatedAt.After(m.summary.Updated) {
		m.summary.Updated = r.UpdatedAt
	}
	x.changed = append(x.changed, deliveryView{ID: r.ID, Node: r.Node, Reply: r.Reply, Method: r.Method, Status: string(r.Status), Updated: r.UpdatedAt})
	if r.Reply {
		return
	}
	if m.summary.Method == "" {
		m.summary.Method = r.Method
	}
	m.statuses[r.Node] = r.Status
	if len(x.byID) > x.max+x.max/10 {
		x.trim()
	}
}

// trim keeps the newest x.max messages (x.mu held).
func (x *messageIndex) trim() {
	all := make([]*indexed, 0, len(x.byID))
	for _, m := range x.byID {
		all = append(all, m)
	}
	slices.SortFunc(all, func(a, b *indexed) int { return b.summary.Updated.Compare(a.summary.Updated) })
	for _, m := range all[x.max:] {
		delete(x.byID, m.summary.ID)
	}
}

// changes returns the records added since it was last called.
func (x *messageIndex) changes() []deliveryView {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := x.changed
	x.changed = nil
	return out
}

// list returns the messages that match, newest first, at most limit.
func (x *messageIndex) list(node, method string, st status.Status, limit int) messagesView {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []messageSummary
	for _, m := range x.byID {
		if method != "" && !strings.EqualFold(m.summary.Method, method) {
			continue
		}
		if node != "" {
			if _, ok := m.statuses[node]; !ok {
				continue
			}
		}
		if st != "" && !hasStatus(m.statuses, st) {
			continue
		}
		s := m.summary
		s.Counts = map[string]int{}
		for n, v := range m.statuses {
			s.Nodes = append(s.Nodes, n)
			s.Counts[string(v)]++
		}
		slices.Sort(s.Nodes)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b messageSummary) int {
		if c := b.Updated.Compare(a.Updated); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	total := len(x.byID)
	if len(out) > limit {
		out = out[:limit]
	}
	return messagesView{Messages: out, Total: total}
}

func hasStatus(statuses map[string]status.Status, st status.Status) bool {
	for _, s := range statuses {
		if s == st {
			return true
		}
	}
	return false
}

// followStatuses indexes every status record until the watch ends.
func (c *Console) followStatuses(ctx context.Context) error {
	records, err := c.b.WatchStatuses(ctx, true)
	if err != nil {
		return err
	}
	for r := range records {
		if r != nil {
			c.msgs.add(r)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("the status watch ended")
}

// listMessages serves /api/messages.
func (c *Console) listMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 || limit > 1000 {
		limit = 200
	}
	writeJSON(w, http.StatusOK, c.msgs.list(q.Get("node"), q.Get("method"), status.Status(q.Get("status")), limit))
}

// getMessage serves /api/messages/{id}.
func (c *Console) getMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	recs, err := c.b.Status(r.Context(), id)
	if err != nil {
		writeError(w, http.StatusBadGateway, "unavailable", err.Error())
		return
	}
	if len(recs) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "no deliveries are recorded for message "+id)
		return
	}
	// status.Compare puts each delivery before its reply: the first
	// record is a delivery, with the message's method.
	v := messageView{ID: id, Method: recs[0].Method, FromNode: recs[0].FromNode, Done: true}
	latest := map[string]*status.Record{}
	for _, rec := range recs {
		latest[rec.Key()] = rec
	}
	for _, rec := range recs {
		if rec.TraceID != "" && v.TraceID == "" {
			v.TraceID = rec.TraceID
		}
		if !rec.Reply {
			if !rec.Done(latest[status.ReplyKey(rec.Key())]) {
				v.Done = false
			}
		}
		v.Records = append(v.Records, recordView{Record: rec, Timeline: timeline(rec)})
	}
	if v.TraceID != "" && c.o.JaegerURL != "" {
		v.TraceURL = strings.TrimSuffix(c.o.JaegerURL, "/") + "/trace/" + v.TraceID
	}
	writeJSON(w, http.StatusOK, v)
}

// timeline is a record's way so far: pending, delivered, running, and how
// it ended, each with its time.
func timeline(r *status.Record) []timelineStep {
	var steps []timelineStep
	add := func(s string, at time.Time) {
		if !at.IsZero() {
			steps = append(steps, timelineStep{Status: s, At: at})
		}
	}
	add(string(status.Pending), r.SentAt)
	add("delivered", r.DeliveredAt)
	add(string(status.Running), r.StartedAt)
	if r.Status.Terminal() {
		at := r.FinishedAt
		if at.IsZero() {
			at = r.UpdatedAt
		}
		add(string(r.Status), at)
	} else if len(steps) == 0 || steps[len(steps)-1].Status != string(r.Status) {
		add(string(r.Status), r.UpdatedAt)
	}
	return steps
}

// outputPageSize is how much output one page of /api/messages/{id}/output
// holds.
const outputPageSize = 64 << 10

// getOutput serves /api/messages/{id}/output: one node's whole output as
// it sent it back, a page at a time.
func (c *Console) getOutput(w http.ResponseWriter, r *http.Request) {
	id, node := r.PathValue("id"), r.URL.Query().Get("node")
	if message.ValidNodeName(node) != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "node= names no node")
		return
	}
	offset, err := strconv.Atoi(r.URL.Query().Get("offset"))
	if err != nil || offset < 0 {
		offset = 0
	}
	var out []byte
	err = c.b.Results(r.Context(), id, false, func(o client.Output) {
		if o.Node == node {
			out = append(out, o.Data...)
		}
	})
	if errors.Is(err, client.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, "unavailable", err.Error())
		return
	}
	page := outputPage{Node: node, Offset: min(offset, len(out)), Total: len(out)}
	end := pageEnd(out, page.Offset, outputPageSize)
	page.Data, page.Next, page.More = string(out[page.Offset:end]), end, end < len(out)
	writeJSON(w, http.StatusOK, page)
}

// pageEnd is where the page of out from offset ends: after at most size
// bytes, on a whole character. A character cut in two would reach the
// browser as replacement characters, and the pages would not add up to
// the output. (Output that is not UTF-8 is shown with replacements.)
func pageEnd(out []byte, offset, size int) int {
	end := min(offset+size, len(out))
	for cut := end; cut > offset && end-cut < utf8.UTFMax; cut-- {
		if cut == len(out) || utf8.RuneStart(out[cut]) {
			return cut
		}
	}
	// A page smaller than the character it starts with: the whole one.
	for end < len(out) && !utf8.RuneStart(out[end]) {
		end++
	}
	return end
}

// followOutput serves /api/messages/{id}/follow: the output as the nodes
// send it, until every node's final reply came ("end").
func (c *Console) followOutput(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	write := streamEvents(w)
	if write == nil {
		return
	}
	parts := make(chan outputPart, 64)
	done := make(chan error, 1)
	go func() {
		done <- c.b.Results(r.Context(), id, true, func(o client.Output) {
			select {
			case parts <- outputPart{Node: o.Node, Data: string(o.Data), Final: o.Final, Status: o.Status, Error: o.Error}:
			case <-r.Context().Done():
			}
		})
	}()
	for {
		select {
		case <-r.Context().Done():
			return
		case p := <-parts:
			if write(frame("output", p)) != nil {
				return
			}
		case err := <-done:
			for len(parts) > 0 {
				if write(frame("output", <-parts)) != nil {
					return
				}
			}
			end := map[string]string{}
			if err != nil {
				end["error"] = err.Error()
			}
			_ = write(frame("end", end))
			return
		}
	}
}

// cancel serves POST /api/messages/{id}/cancel.
func (c *Console) cancel(w http.ResponseWriter, r *http.Request) {
	out, err := c.b.Cancel(r.Context(), r.PathValue("id"))
	if errors.Is(err, client.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, "unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, cancelView{Cancelled: out})
}
