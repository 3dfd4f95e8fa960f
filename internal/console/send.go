package console

import (
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/sender"
)

// send serves POST /api/send: the body is message JSON, as steward send
// takes it; ?dryRun=1 resolves and checks it and sends nothing. It answers
// the receipts: 202 when a message was sent, 200 for a dry run that
// refused none, 400 when every message was refused or the input could not
// be read, 413 over sender.MaxInput.
func (c *Console) send(w http.ResponseWriter, r *http.Request) {
	input, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sender.MaxInput))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, string(message.CodeTooLarge), "the input is larger than 16 MiB")
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "cannot read the request body: "+err.Error())
		return
	}
	dry := r.URL.Query().Get("dryRun") == "1"
	do := c.b.Send
	if dry {
		do = c.b.DryRun
	}
	receipts, err := do(r.Context(), input)
	if err != nil {
		writeError(w, http.StatusBadRequest, string(message.CodeOf(err)), err.Error())
		return
	}
	code := http.StatusBadRequest
	switch ok := slices.ContainsFunc(receipts, func(r sender.Receipt) bool { return r.OK() }); {
	case ok && dry:
		code = http.StatusOK
	case ok:
		code = http.StatusAccepted
	}
	writeJSON(w, code, sendView{DryRun: dry, Receipts: receipts})
}
