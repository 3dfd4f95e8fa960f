package console

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFleetViewFollowsNodes: the fleet view shows ship1 online; ship1 stops
// (SIGTERM: it says goodbye) and the open page shows it offline, then it
// starts again and the page shows it online — all without a reload.
func TestFleetViewFollowsNodes(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	f.Start("ship2")
	f.WaitOnline("ship1", "ship2")

	b := newBrowser(t, f.url(""))
	b.open("/")
	b.wait("ship1 online", stateOf("ship1")+` === 'online'`, 30*time.Second)
	b.wait("ship2 online", stateOf("ship2")+` === 'online'`, 30*time.Second)
	if got := b.text("#fleet-count"); got != "3 of 3 nodes" {
		t.Errorf("count: %q, want 3 of 3 nodes (central, ship1, ship2)", got)
	}
	// A mark that a reload would wipe out.
	eval[bool](b, `window.stewardTestMark = true`)

	f.Stop("ship1", syscall.SIGTERM)
	b.wait("ship1 offline", stateOf("ship1")+` === 'offline'`, 30*time.Second)
	if got := b.text(`#fleet tr[data-node="ship1"] .state`); !strings.HasPrefix(got, "offline since ") || !strings.HasSuffix(got, " · stopped") {
		t.Errorf("ship1's state: %q, want offline since … · stopped", got)
	}
	if got := eval[string](b, stateOf("ship2")); got != "online" {
		t.Errorf("ship2 is %q while ship1 is stopped", got)
	}

	f.Start("ship1")
	b.wait("ship1 online again", stateOf("ship1")+` === 'online'`, 30*time.Second)
	if !eval[bool](b, `window.stewardTestMark === true`) {
		t.Error("the page was reloaded")
	}
}
