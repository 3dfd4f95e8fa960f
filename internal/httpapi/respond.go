package httpapi

import (
	"encoding/json"
	"net/http"
	"time"
)

// An answer is written in chunks of writeChunk bytes, each with a fresh
// deadline of writeTimeout, as the socket writes its: it is cut only when
// the client reads less than 64 KiB of it in 10 s.
const (
	writeTimeout = 10 * time.Second
	writeChunk   = 64 << 10
)

// chunkedWriter is a ResponseWriter that writes in chunks, each with a
// fresh write deadline.
type chunkedWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func chunked(w http.ResponseWriter) chunkedWriter {
	return chunkedWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
}

func (c chunkedWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		_ = c.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		k, err := c.ResponseWriter.Write(p[n:min(len(p), n+writeChunk)])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// apiError is the body of every error answer. Code is the error's stable
// code: a message.Code (malformed, too_large, …) for refused input, else
// unauthorized, not_found, bad_request, unavailable or internal.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Error: err.Error(), Code: "internal"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	chunked(w).Write(append(b, '\n'))
}

// writeError answers an error with its code.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: msg, Code: code})
}
