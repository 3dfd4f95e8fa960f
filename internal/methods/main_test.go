package methods

import (
	"os"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/procguard"
)

// TestMain lets this test binary act as the process guard that
// REQCliCommand re-executes.
func TestMain(m *testing.M) {
	procguard.MaybeRun()
	// A race-enabled binary sleeps a second when it exits with status 0;
	// the guards this binary starts need not.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}
