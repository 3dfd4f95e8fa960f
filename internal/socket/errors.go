package socket

import "errors"

// ErrInUse: another steward serves the socket.
var ErrInUse = errors.New("in use by another steward")

// ErrOptions: Options hold a value that cannot work.
var ErrOptions = errors.New("invalid socket options")

// errTooLarge: a JSON value is larger than Options.MaxValue.
var errTooLarge = errors.New("input is too large")

// errSyntax: the input is not JSON.
var errSyntax = errors.New("invalid JSON input")

// errIncomplete: the client went silent in the middle of a value.
var errIncomplete = errors.New("incomplete JSON input")

// errSilent: the client sent nothing.
var errSilent = errors.New("no input")

// errStopping: the node stopped before the value was read.
var errStopping = errors.New("steward is stopping")

// errIdle: no further value came after an answer; not a fault.
var errIdle = errors.New("idle")

// ErrNoListener: Serve was called on a server with no listener.
var ErrNoListener = errors.New("no listener to serve")

// ErrBeyondLoopback: a TCP listener would take input from beyond loopback,
// and no network was named whose clients may connect.
var ErrBeyondLoopback = errors.New("listens beyond loopback: anyone who reaches it could send messages as this node, signed with its key")
