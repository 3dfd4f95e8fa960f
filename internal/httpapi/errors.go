package httpapi

import "errors"

// ErrNoToken: the API would listen beyond loopback with no token.
var ErrNoToken = errors.New("the HTTP API would let anyone who reaches it send messages as this node: give it http-api-token-file, or listen on loopback")

// ErrToken: the token file cannot be used.
var ErrToken = errors.New("unusable http-api-token-file")

// errNotFound: no such message, file or route.
var errNotFound = errors.New("not found")
