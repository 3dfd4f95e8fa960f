package console

import (
	"time"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
)

// The console's JSON, as its pages read it (web/console.js). Times are
// RFC 3339 in UTC.
//
//	GET  /api/fleet                       fleetView
//	GET  /api/messages?node=&method=&status=&limit=
//	                                      messagesView (newest first)
//	GET  /api/messages/{id}               messageView (404 errorView when unknown)
//	GET  /api/messages/{id}/output?node=&offset=
//	                                      outputPage: the node's whole output, in pages
//	POST /api/messages/{id}/cancel        cancelView
//	POST /api/send[?dryRun=1]             sendView; the body is message JSON
//	GET  /api/errors?node=&limit=         errorsView (newest first)
//	GET  /api/events                      server-sent events, below
//	GET  /api/messages/{id}/follow        server-sent events "output" (outputPart) until "end"
//
// Events of /api/events, each a JSON array of what changed since the last
// one (at most two a second):
//
//	event: nodes       data: [nodeView, ...]        nodes that changed (removed: "removed": true)
//	event: queues      data: {"ship1": 3, ...}      queue depths that changed
//	event: deliveries  data: [deliveryView, ...]    status records written
//	event: errors      data: [errorEntry, ...]      new error reports
//
// Requests that change something (POST) must carry the header
// X-Steward-Console: 1, which a page of another site cannot set.

type fleetView struct {
	Central string     `json:"central"`
	Now     time.Time  `json:"now"` // the console's clock, for the browser's own online checks
	Nodes   []nodeView `json:"nodes"`
}

type nodeView struct {
	Name     string            `json:"name"`
	Online   bool              `json:"online"`
	Since    time.Time         `json:"since,omitzero"` // online since it started; offline since last seen (or its goodbye)
	LastSeen time.Time         `json:"lastSeen,omitzero"`
	WindowMs int64             `json:"windowMs"` // online while now - lastSeen <= windowMs (and no goodbye)
	Stopped  bool              `json:"stopped,omitempty"`
	Version  string            `json:"version,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Methods  []string          `json:"methods,omitempty"`
	Queue    *uint64           `json:"queue"` // messages waiting in its queue; null: not known yet
	Errors1h int               `json:"errors1h"`
	Conflict string            `json:"conflict,omitempty"`
	Removed  bool              `json:"removed,omitempty"`
}

type messagesView struct {
	Messages []messageSummary `json:"messages"`
	Total    int              `json:"total"` // messages the console knows of (the newest 5,000)
}

type messageSummary struct {
	ID       string         `json:"id"`
	Method   string         `json:"method"`
	FromNode string         `json:"fromNode"`
	Nodes    []string       `json:"nodes"`
	Counts   map[string]int `json:"counts"` // deliveries by status
	SentAt   time.Time      `json:"sentAt,omitzero"`
	Updated  time.Time      `json:"updated"`
}

type messageView struct {
	ID       string       `json:"id"`
	Method   string       `json:"method"`
	FromNode string       `json:"fromNode"`
	TraceID  string       `json:"traceId,omitempty"`
	TraceURL string       `json:"traceUrl,omitempty"` // Jaeger's page of the trace, when --console-jaeger-url is set
	Done     bool         `json:"done"`               // every delivery and reply ended
	Records  []recordView `json:"records"`            // each delivery, then its reply, by node
}

type recordView struct {
	*status.Record
	Timeline []timelineStep `json:"timeline"`
}

type timelineStep struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

type outputPage struct {
	Node   string `json:"node"`
	Offset int    `json:"offset"`
	Next   int    `json:"next"` // the offset of the next page: pages end on a whole UTF-8 character
	Data   string `json:"data"`
	Total  int    `json:"total"`
	More   bool   `json:"more"`
}

type outputPart struct {
	Node   string `json:"node"`
	Data   string `json:"data"`
	Final  bool   `json:"final,omitempty"`
	Status string `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

type deliveryView struct {
	ID      string    `json:"id"`
	Node    string    `json:"node"`
	Reply   bool      `json:"reply,omitempty"`
	Method  string    `json:"method"`
	Status  string    `json:"status"`
	Updated time.Time `json:"updated"`
}

type sendView struct {
	DryRun   bool             `json:"dryRun,omitempty"`
	Receipts []sender.Receipt `json:"receipts"`
}

type cancelView struct {
	Cancelled []client.Cancelled `json:"cancelled"`
}

type errorsView struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Node string    `json:"node"`
	At   time.Time `json:"at"`
	Text string    `json:"text"`
}

type errorView struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}
