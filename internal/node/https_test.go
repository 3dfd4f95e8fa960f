package node_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
)

// With http-tls-cert and http-tls-key the HTTP API and the console speak
// HTTPS only: a client that trusts the certificate is served, the
// console's session cookie is Secure, and a plain HTTP request (which
// would carry the token in the clear) is answered with an error and
// never reaches a handler.
func TestHTTPSForAPIAndConsole(t *testing.T) {
	f := newFleet(t)
	certs := natstest.NewTLSFiles(t, t.TempDir())
	cfg := f.config("central")
	cfg.HTTPAPI, cfg.Console = natstest.FreePort(t), natstest.FreePort(t)
	cfg.HTTPTLSCert, cfg.HTTPTLSKey = certs.ServerCert, certs.ServerKey
	token := "https-token-0123456789abcdef"
	cfg.HTTPAPITokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.HTTPAPITokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.start(cfg)

	ca, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	trusting := &http.Client{Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(hc *http.Client, method, u, body string) (int, string, error) {
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Steward-Console", "1")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	for name, u := range map[string]string{"API": "https://" + cfg.HTTPAPI + "/v1/nodes", "console": "https://" + cfg.Console + "/api/fleet"} {
		if code, body, err := do(trusting, http.MethodGet, u, ""); err != nil || code != http.StatusOK {
			t.Errorf("%s over HTTPS: %d %s %v", name, code, body, err)
		}
		var unknown x509.UnknownAuthorityError
		if _, _, err := do(&http.Client{Timeout: 10 * time.Second}, http.MethodGet, u, ""); !errors.As(err, &unknown) {
			t.Errorf("%s: a client that does not trust the certificate got %v, want an unknown authority", name, err)
		}
	}
	if resp, err := trusting.PostForm("https://"+cfg.Console+"/login", url.Values{"token": {token}}); err != nil {
		t.Errorf("console login over HTTPS: %v", err)
	} else {
		resp.Body.Close()
		if cookies := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || !cookies[0].Secure {
			t.Errorf("console login over HTTPS: %d %+v, want a Secure session cookie", resp.StatusCode, cookies)
		}
	}

	// Plain HTTP: the TLS server answers it itself (400, "Client sent an
	// HTTP request to an HTTPS server"); no handler runs, nothing is sent.
	plain := &http.Client{Timeout: 10 * time.Second}
	for name, u := range map[string]string{"API": "http://" + cfg.HTTPAPI + "/v1/messages", "console": "http://" + cfg.Console + "/api/send"} {
		code, body, err := do(plain, http.MethodPost, u, `{"toNode":"central","method":"REQCliCommand","methodArgs":["touch","sent-over-http"]}`)
		if err == nil && (code != http.StatusBadRequest || !strings.Contains(body, "HTTPS")) {
			t.Errorf("%s over plain HTTP: %d %q, want the TLS server's 400", name, code, body)
		}
	}
}
