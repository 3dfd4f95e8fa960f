// Package redteam attacks a running fleet from outside. It builds the
// steward binary once, sets a fleet up the way an operator does, with the
// CLI only (steward keys new, steward broker authorization, trusted-keys
// and policy files, TLS on central's embedded broker), starts central,
// ship1 and ship2 as separate processes, and then attacks them with a raw
// NATS client: with no key, with ship2's stolen seed, and as a broker
// insider (a user with every broker right but a key no node trusts).
//
// Every attempt is counted: refused by the broker (it could not even get
// the message into a queue), refused by the node (it got into a queue and
// the node refused it, with an audit line and a report in central's error
// log), or accepted. The target is 0 accepted and no good message lost
// while the attacks go on. TestRedTeam prints the counts as a table (and
// writes it to $STEWARD_REDTEAM_REPORT when that is set).
//
// Adding a case is one entry in the cases table of redteam_test.go.
package redteam

import (
	"os"
	"testing"

	"github.com/stewardfleet/steward/internal/fleettest"
)

func TestMain(m *testing.M) {
	os.Exit(fleettest.Run(m))
}
