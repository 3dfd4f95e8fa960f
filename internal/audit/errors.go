package audit

import "errors"

// Sentinel errors.
var (
	// ErrNotRotated: the line was written, but the log could not be
	// locked or rotated, so it may grow past its bounds until a later
	// write succeeds in rotating it.
	ErrNotRotated = errors.New("audit log not rotated")
)
