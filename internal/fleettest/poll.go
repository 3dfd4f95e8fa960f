package fleettest

import (
	"testing"
	"time"
)

// pollInterval is how often Poll and Eventually check their condition.
const pollInterval = 100 * time.Millisecond

// Poll checks cond until it holds or timeout passes, and reports whether
// it held.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// Eventually checks cond until it holds, and fails t when timeout passes
// first; what names the awaited thing in the failure.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}
