package console

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestMessagePagePagerAndCancel: output longer than a status record holds
// (64 KiB) is paged in with "More output" until the page shows all of it,
// exactly; a running command is cancelled with the Cancel button, which
// shows the outcome, and its delivery ends cancelled.
func TestMessagePagePagerAndCancel(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	f.WaitOnline("ship1")
	b := newBrowser(t, f.url(""))

	var want strings.Builder
	for i := 1; i <= 40000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	id := f.send(t, `{"toNode": "ship1", "method": "REQCliCommand", "methodArgs": ["bash", "-c", "seq 1 40000"], "methodTimeout": 30}`)
	b.open("/messages/" + id)
	section := `section.delivery[data-node="ship1"]`
	b.wait("the long output's first page", `(document.querySelector('`+section+` .status') || {}).textContent === 'succeeded' && !document.querySelector('`+section+` .more-output').hidden`, 30*time.Second)
	if got := len(b.text(section + " pre.output")); got != 64<<10 {
		t.Errorf("the first page holds %d bytes, want the record's 64 KiB", got)
	}
	pages := 0
	for eval[bool](b, `!document.querySelector('`+section+` .more-output').hidden`) {
		if pages++; pages > 10 {
			t.Fatal("More output never ends")
		}
		before := len(b.text(section + " pre.output"))
		b.click(section + " .more-output")
		b.wait("the next page", fmt.Sprintf(`document.querySelector('%s pre.output').textContent.length > %d`, section, before), 20*time.Second)
	}
	if got := b.text(section + " pre.output"); got != want.String() {
		t.Errorf("after %d more pages the output is %d bytes (ends %q), want %d bytes", pages, len(got), got[max(0, len(got)-20):], want.Len())
	}
	if got := b.text(section + " .output-info"); got != fmt.Sprintf("%d bytes", want.Len()) {
		t.Errorf("output info: %q", got)
	}

	// Cancel a command that would run for a minute.
	id = f.send(t, `{"toNode": "ship1", "method": "REQCliCommand", "methodArgs": ["bash", "-c", "echo started; sleep 60"], "methodTimeout": 120}`)
	b.open("/messages/" + id)
	b.wait("running", `(document.querySelector('`+section+` .status') || {}).textContent === 'running'`, 30*time.Second)
	b.click("#cancel")
	b.wait("the cancel's outcome", `/ship1: (stopping|cancelled)/.test(document.getElementById('cancel-result').textContent)`, 30*time.Second)
	t.Logf("cancel: %s", b.text("#cancel-result"))
	b.wait("cancelled", `document.querySelector('`+section+` .status').textContent === 'cancelled'`, 30*time.Second)
	b.wait("the message done", `document.getElementById('message-state').textContent === 'done' && document.getElementById('cancel').hidden`, 30*time.Second)
}
