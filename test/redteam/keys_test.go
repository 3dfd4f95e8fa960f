package redteam

import (
	"fmt"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/stream"
)

// replayedCapture: the broker insider records a genuine command central
// sends ship1, and publishes it into ship1's queue again once it ran.
func replayedCapture(e *env) {
	sub, err := e.relay.nc.SubscribeSync(stream.MessageSubject("ship1"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.relay.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	id := e.goodTo("ship1")
	for {
		captured, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			e.t.Fatalf("the capture of %s: %v", id, err)
		}
		if !strings.Contains(string(captured.Data), `"id":"`+id+`"`) {
			continue
		}
		for i := range 3 {
			e.publish(e.relay, fmt.Sprintf("the capture of %s, replayed (%d)", id, i+1), "ship1", captured.Data, "replayed")
		}
		return
	}
}

// revokedKey: central trusts the insider's key fleet-wide (steward keys
// trust), which changes why its commands are refused (the policy, not the
// signature), then revokes it (steward keys revoke): everything it signs
// is refused as signed by a revoked key, on every node.
func revokedKey(e *env) {
	central := e.f.Dir("central")
	out := e.f.cli(central, "keys", "trust", "relay", e.f.pub["relay"])
	if !strings.Contains(out, "key set version 1 published") || strings.Count(out, "succeeded") != 3 {
		e.t.Fatalf("keys trust: every node should take version 1:\n%s", out)
	}
	r := e.f.signer(e.t, "relay")
	e.publish(e.relay, "a command signed by relay once trusted (ship1's policy refuses it)", "ship1",
		sign(e.t, r, newMessage("rtk1", "relay", "ship1", "REQCliCommand", e.marker("rtk1")...)), "denied by this node's policy")

	out = e.f.cli(central, "keys", "revoke", "relay")
	if !strings.Contains(out, "revoked "+e.f.pub["relay"]) || !strings.Contains(out, "key set version 2 published") || strings.Count(out, "succeeded") != 3 {
		e.t.Fatalf("keys revoke: every node should take version 2:\n%s", out)
	}
	for i, node := range []string{"ship1", "ship2", "central"} {
		id := fmt.Sprintf("rtk%d", i+2)
		e.publish(e.relay, "a command signed by relay after its revocation, to "+node, node,
			sign(e.t, r, newMessage(id, "relay", node, "REQCliCommand", e.marker(id)...)), "revoked")
	}
	// Trusting a revoked key again is refused.
	if _, errOut, code := e.f.StewardIn(central, nil, "keys", "trust", "relay", e.f.pub["relay"]); code == 0 || !strings.Contains(errOut, "revoked") {
		e.t.Errorf("trusting the revoked key again: exit %d, %s", code, errOut)
	}
}
