package netfault

import "errors"

// Sentinel errors of package netfault.
var (
	// ErrBadTarget: the target is not a host:port address.
	ErrBadTarget = errors.New("invalid target address")
)
