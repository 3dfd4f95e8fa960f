package metrics

import "errors"

// Sentinel errors of package metrics.
var (
	// ErrNotLoopback: an address beyond loopback was given where only
	// loopback is allowed (the profiling port always; the metrics
	// endpoint unless remote networks are named).
	ErrNotLoopback = errors.New("address is not on loopback")
)
