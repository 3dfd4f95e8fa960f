package console

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestViewsAndScreenshots goes through every view with real traffic and
// saves a screenshot of each: the fleet (once the queue depths, read every
// 10 s, are known); the message list, where a message
// sent meanwhile appears by itself; the error log, where a failed command
// appears by itself; a message page that follows a streaming command's
// output while it runs; the Send view with a dry run of "*"; the fleet on a
// phone-sized screen (its table scrolls, the page does not).
func TestViewsAndScreenshots(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1", "--labels", "role=web,site=north")
	f.Start("ship2", "--labels", "role=db,site=south")
	f.WaitOnline("ship1", "ship2")
	b := newBrowser(t, f.url(""))

	// The fleet.
	b.open("/")
	b.wait("ship1 and ship2 online", stateOf("ship1")+` === 'online' && `+stateOf("ship2")+` === 'online'`, 30*time.Second)
	if got := b.text(`#fleet tr[data-node="ship2"] .labels`); got != "role=db, site=south" {
		t.Errorf("ship2's labels: %q", got)
	}
	b.typeInto("#fleet-filter", "role=db")
	b.wait("the filter", `document.getElementById('fleet-count').textContent === '1 of 3 nodes'`, 10*time.Second)
	b.clear("#fleet-filter")
	eval[bool](b, `document.getElementById('fleet-filter').dispatchEvent(new Event('input'))`)
	b.wait("the filter cleared", `document.getElementById('fleet-count').textContent === '3 of 3 nodes'`, 10*time.Second)
	// Sorting with the keyboard: the headers are buttons.
	for _, col := range []struct{ key, sort string }{{"state", "ascending"}, {"state", "descending"}, {"name", "ascending"}} {
		eval[bool](b, `(document.querySelector('#fleet th[data-sort="`+col.key+`"] button').focus(), true)`)
		b.do(10*time.Second, "Enter on the "+col.key+" header", chromedp.KeyEvent("\r"))
		b.wait("sorted by "+col.key+", "+col.sort, `document.querySelector('#fleet th[data-sort="`+col.key+`"]').getAttribute('aria-sort') === '`+col.sort+`'`, 10*time.Second)
	}
	if got := eval[string](b, `[...document.querySelectorAll('#fleet tbody tr')].map((r) => r.dataset.node).join(' ')`); got != "central ship1 ship2" {
		t.Errorf("sorted by name: %s", got)
	}

	// The message list: a message sent while it is open shows up, and its
	// deliveries' states with it.
	b.open("/messages")
	id := f.send(t, `[{"toNodes": ["role=web", "ship2"], "method": "REQCliCommand", "methodArgs": ["bash", "-c", "uname -sm; echo fine"], "methodTimeout": 20}]`)
	row := `#messages tr[data-id="` + id + `"]`
	b.wait("the new message listed", `document.querySelector('`+row+`')`, 20*time.Second)
	b.wait("its deliveries succeeded", `(document.querySelector('`+row+` .counts') || {}).textContent === '2 succeeded'`, 30*time.Second)
	if got := b.text(row + " .nodes"); got != "ship1, ship2" {
		t.Errorf("the message's nodes: %q", got)
	}
	b.screenshot("messages")

	// The error log: a command that fails on ship2 is reported to central
	// and appears while the view is open.
	b.open("/errors")
	f.send(t, `{"toNode": "ship2", "method": "REQCliCommand", "methodArgs": ["bash", "-c", "echo 'disk full' >&2; exit 3"]}`)
	b.wait("ship2's error listed", `document.querySelector('#errors tr[data-node="ship2"]')`, 30*time.Second)
	if got := b.text(`#errors tr[data-node="ship2"]`); !strings.Contains(got, "exited with code 3") || !strings.Contains(got, "disk full") {
		t.Errorf("ship2's error: %q, want its exit code and standard error", got)
	}
	b.screenshot("errors")

	// A message page following a streaming command: its first line shows
	// while the command still waits for a file the test writes.
	gate := filepath.Join(f.Root(), "go-on")
	id = f.send(t, `{"toNode": "ship1", "method": "REQCliCommandCont", "methodTimeout": 60, "methodArgs": ["bash", "-c", "echo first line; while [ ! -e `+gate+` ]; do sleep 0.05; done; echo second line"]}`)
	b.open("/messages/" + id)
	out := `document.querySelector('section.delivery[data-node="ship1"] pre.output')`
	b.wait("the first line, followed", `(`+out+` || {}).textContent === 'first line\n'`, 30*time.Second)
	b.wait("ship1 running while its command waits", `document.querySelector('section.delivery[data-node="ship1"] .status').textContent === 'running'`, 20*time.Second)
	if cancel := eval[bool](b, `!document.getElementById('cancel').hidden`); !cancel {
		t.Error("a running message offers no Cancel")
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b.wait("the second line", `(`+out+` || {}).textContent === 'first line\nsecond line\n'`, 30*time.Second)
	b.wait("succeeded", `(document.querySelector('section.delivery[data-node="ship1"] .status') || {}).textContent === 'succeeded'`, 30*time.Second)
	b.wait("the message done", `(document.getElementById('message-state') || {}).textContent === 'done'`, 30*time.Second)
	if got := b.text(`section.delivery[data-node="ship1"] pre.output`); got != "first line\nsecond line\n" {
		t.Errorf("ship1's output once done: %q", got)
	}
	b.screenshot("message")

	// The Send view with a dry run of every node.
	b.open("/send")
	b.typeInto("#send-targets", "*")
	b.typeInto("#send-command", "uptime")
	b.click(`#command-form button[value="dry"]`)
	b.wait("the dry run", `(document.querySelector('#send-result .nodes') || {}).textContent === 'central, ship1, ship2'`, 20*time.Second)
	b.screenshot("send")

	// The fleet again, once the queue depths (read every 10 s) arrived: the
	// screenshot for the README.
	b.open("/")
	b.wait("queue depths known", `[...document.querySelectorAll('#fleet td.queue')].every((td) => /^[0-9]+$/.test(td.textContent))`, 30*time.Second)
	b.wait("ship2's error counted", `document.querySelector('#fleet tr[data-node="ship2"] td.errors').textContent === '1'`, 30*time.Second)
	fleetPNG := b.screenshot("fleet")
	if os.Getenv("STEWARD_UPDATE_SCREENSHOT") == "1" {
		png, err := os.ReadFile(fleetPNG)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(docsFolder, "console-fleet.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", filepath.Join(docsFolder, "console-fleet.png"))
	}

	// The fleet on a phone: the table scrolls sideways in its box, the page
	// itself does not.
	b.do(10*time.Second, "phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open("/")
	b.wait("the fleet on a phone", stateOf("ship1")+` === 'online'`, 30*time.Second)
	if !eval[bool](b, `(() => { const w = document.querySelector('.table-wrap'); return w.scrollWidth > w.clientWidth; })()`) {
		t.Error("on a phone, the fleet's table does not scroll in its box")
	}
	if eval[bool](b, `document.documentElement.scrollWidth > window.innerWidth`) {
		t.Errorf("on a phone, the page is wider than the screen (%d > %d)", eval[int](b, `document.documentElement.scrollWidth`), eval[int](b, `window.innerWidth`))
	}
	b.screenshot("fleet-phone")
}

// send posts message JSON to the console's API and returns the first
// message's ID.
func (f *fleet) send(t *testing.T, input string) string {
	t.Helper()
	code, body := f.post("/api/send", input)
	var v struct {
		Receipts []struct {
			ID    string `json:"id"`
			Error string `json:"error"`
		} `json:"receipts"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || code != 202 || len(v.Receipts) == 0 || v.Receipts[0].ID == "" {
		t.Fatalf("send: %d %s (%v)", code, body, err)
	}
	return v.Receipts[0].ID
}
