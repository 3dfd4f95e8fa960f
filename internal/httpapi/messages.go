package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/sender"
)

// Body limits, as the socket's (package socket).
const (
	// maxBody bounds one request body: a batch (sender.MaxInput).
	maxBody = sender.MaxInput
	// smallBody is how much of a body is read before it reserves budget.
	smallBody = 64 << 10
	// maxBuffered is the budget of large bodies held at once.
	maxBuffered = 64 << 20
)

// messages serves /v1/messages.
type messages struct {
	b      Backend
	budget chan struct{} // a token per body over smallBody being held
	log    *slog.Logger
}

// sendResult is the answer to POST /v1/messages: the receipts, as
// `steward send -o json` gives them.
type sendResult struct {
	Receipts []sender.Receipt `json:"receipts"`
}

// post sends the body's messages and answers their receipts: 202 when
// any message was sent (or queued in the outbox), 400 when the input
// could not be read or every message was refused, 413 when it is over
// 16 MiB, 503 when the broker stored none of them.
func (m *messages) post(w http.ResponseWriter, r *http.Request) {
	input, release, err := m.read(w, r)
	defer release()
	if err != nil {
		m.refuse(w, err)
		return
	}
	// The input is sent whole or not at all: a client that hangs up
	// does not stop it half way.
	receipts, err := m.b.Send(context.WithoutCancel(r.Context()), input)
	if err != nil {
		m.refuse(w, err)
		return
	}
	writeJSON(w, sendStatus(receipts), sendResult{Receipts: receipts})
}

// refuse answers input refused as a whole with its code.
func (m *messages) refuse(w http.ResponseWriter, err error) {
	code := message.CodeOf(err)
	st := http.StatusBadRequest
	switch {
	case code == message.CodeTooLarge:
		st = http.StatusRequestEntityTooLarge
		w.Header().Set("Connection", "close")
	case errors.Is(err, errBody):
		code = "bad_request"
	}
	m.log.Warn("HTTP API input refused", "error", err, "code", code)
	writeError(w, st, string(code), err.Error())
}

// sendStatus is the HTTP status of a batch's receipts.
func sendStatus(receipts []sender.Receipt) int {
	if slices.ContainsFunc(receipts, func(r sender.Receipt) bool { return r.OK() }) {
		return http.StatusAccepted
	}
	if len(receipts) > 0 && !slices.ContainsFunc(receipts, func(r sender.Receipt) bool { return r.Code != sender.CodePublishFailed }) {
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// errBody: the body could not be read (not a fault of its content).
var errBody = errors.New("cannot read the request body")

// read reads the body, at most maxBody bytes, reserving budget before it
// holds more than smallBody. release gives the budget back.
func (m *messages) read(w http.ResponseWriter, r *http.Request) (input []byte, release func(), err error) {
	release = func() {}
	if r.ContentLength > maxBody {
		err := tooLarge(r.ContentLength)
		m.audit(nil, err)
		return nil, release, err
	}
	body := &silentReader{r: r.Body, rc: http.NewResponseController(w)}
	input, err = io.ReadAll(io.LimitReader(body, smallBody+1))
	if err == nil && len(input) > smallBody {
		select {
		case m.budget <- struct{}{}:
		case <-r.Context().Done():
			return nil, release, fmt.Errorf("%w: %w", errBody, r.Context().Err())
		}
		release = func() { <-m.budget }
		var rest []byte
		rest, err = io.ReadAll(io.LimitReader(body, maxBody+1-int64(len(input))))
		input = append(input, rest...)
	}
	if err != nil {
		return nil, release, fmt.Errorf("%w: %w", errBody, err)
	}
	if len(input) > maxBody {
		err := tooLarge(int64(len(input)))
		m.audit(input, err)
		return nil, release, err
	}
	return input, release, nil
}

func (m *messages) audit(input []byte, err error) {
	if m.b.Refused != nil {
		m.b.Refused(input, err)
	}
}

func tooLarge(n int64) error {
	return fmt.Errorf("input is more than the %d MiB a batch may have (%d bytes or more): %w", maxBody>>20, n, message.ErrTooLarge)
}

// silentReader reads a body with a fresh deadline before each read: a
// client is dropped when it sends nothing for silence, not when a large
// body takes long.
type silentReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (s *silentReader) Read(p []byte) (int, error) {
	_ = s.rc.SetReadDeadline(time.Now().Add(silence))
	return s.r.Read(p)
}

// get answers the status records of every delivery and reply of a
// message, by node, each delivery before its reply, as `steward status
// -o json` gives them; 404 when there are none.
func (m *messages) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%q is not a message ID (letters and digits, as POST /v1/messages answers them)", id))
		return
	}
	recs, err := m.b.Status(r.Context(), id)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	if len(recs) == 0 {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no such message: %s (status records are kept for %s after a delivery can no longer change)", id, message.StatusRetention))
		return
	}
	writeJSON(w, http.StatusOK, recs) // Backend.Status gives them in status.Compare's order
}

// validID reports whether id looks like a message ID: letters and digits
// only, so it can never act as a subject wildcard.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
