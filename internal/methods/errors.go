package methods

import "errors"

// Sentinel errors of the methods package.
var (
	// ErrUnknownMethod: no method of that name or alias is registered.
	ErrUnknownMethod = errors.New("unknown method")
	// ErrDuplicateMethod: two specs share a name or alias.
	ErrDuplicateMethod = errors.New("duplicate method")
	// ErrMethodDisabled: the method exists but this node does not run it.
	ErrMethodDisabled = errors.New("method disabled on this node")
	// ErrBadArgs: the method's arguments are missing or wrong.
	ErrBadArgs = errors.New("invalid method arguments")
	// ErrNotReply: a reply method got a message that is not a reply.
	ErrNotReply = errors.New("not a reply")
)
