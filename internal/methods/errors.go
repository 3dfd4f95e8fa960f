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
	// ErrHTTPStatus: an HTTP server answered with a status that is not 2xx.
	ErrHTTPStatus = errors.New("HTTP status not 2xx")
	// ErrUnreachable: a host could not be resolved, connected to or trusted.
	ErrUnreachable = errors.New("host unreachable")
	// ErrOutputCap: the output is over the method's cap.
	ErrOutputCap = errors.New("output over the cap")
)

// coded is an error that also matches a sentinel (its code), with the
// text of err alone.
type coded struct{ code, err error }

func (c coded) Error() string   { return c.err.Error() }
func (c coded) Unwrap() []error { return []error{c.code, c.err} }

// withCode makes err match code too (errors.Is), keeping its text.
func withCode(code, err error) error { return coded{code: code, err: err} }
