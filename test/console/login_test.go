package console

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLoginThenFleet: a console with a token sends the browser to its
// login page; a wrong token is refused on the field, the right one opens
// the fleet view (and its API and events, through the session cookie).
func TestLoginThenFleet(t *testing.T) {
	f := newFleet(t)
	token := filepath.Join(f.Root(), "console.token")
	if err := os.WriteFile(token, []byte("c0ns0le-t0ken-f0r-the-browser-test-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.Start("central", "--http-api-token-file", token)
	b := newBrowser(t, f.url(""))

	b.open("/")
	b.wait("the login page", `location.pathname === '/login' && document.getElementById('main').dataset.page === 'login'`, 10*time.Second)
	b.typeInto("#token", "not-the-token")
	b.click(`main form button[type="submit"]`)
	b.wait("the wrong token refused", `document.getElementById('login-error') && document.getElementById('token').getAttribute('aria-invalid') === 'true'`, 10*time.Second)

	b.typeInto("#token", "c0ns0le-t0ken-f0r-the-browser-test-0123456789")
	b.click(`main form button[type="submit"]`)
	b.wait("the fleet view", `location.pathname === '/' && `+stateOf("central")+` === 'online'`, 20*time.Second)
	b.wait("live", `document.getElementById('live').dataset.state === 'open'`, 10*time.Second)
}
