package bench

import (
	"os"
	"testing"

	"github.com/stewardfleet/steward/internal/procguard"
)

// TestMain lets the test binary be the process guard of the commands the
// bench's nodes run, as steward's main does.
func TestMain(m *testing.M) {
	procguard.MaybeRun()
	os.Exit(m.Run())
}
