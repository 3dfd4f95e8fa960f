package httpapi

import (
	"net/http"
)

// nodes answers the node registry, every record, as `steward nodes
// --node-expiry 0 -o json` gives it.
func nodes(b Backend) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := b.Nodes(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
			return
		}
		if list == nil {
			writeJSON(w, http.StatusOK, []any{})
			return
		}
		writeJSON(w, http.StatusOK, list)
	}
}
