package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/stewardfleet/steward/internal/credentials"
)

// minToken is the shortest token taken: `openssl rand -hex 32` gives 64.
const minToken = 16

// LoadToken reads the bearer token from file, which must be a regular
// file readable by its owner only (mode 0600), holding one line of at
// least 16 characters.
func LoadToken(file string) (string, error) {
	if err := credentials.CheckSecretFile(file); err != nil {
		return "", fmt.Errorf("%w: %w", ErrToken, err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrToken, err)
	}
	token := strings.TrimSpace(string(b))
	switch {
	case len(token) < minToken:
		return "", fmt.Errorf("%w: %s holds %d characters, want at least %d (openssl rand -hex 32 > %s)", ErrToken, file, len(token), minToken, file)
	case strings.ContainsAny(token, " \t\r\n"):
		return "", fmt.Errorf("%w: %s holds more than one word", ErrToken, file)
	}
	return token, nil
}

// requireToken answers 401 to every request that does not carry
// "Authorization: Bearer <token>". The comparison takes the same time
// whatever the request carries.
func requireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, given, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(given)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="steward"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "this API needs Authorization: Bearer <token> (the node's http-api-token-file)")
			return
		}
		next.ServeHTTP(w, r)
	})
}
