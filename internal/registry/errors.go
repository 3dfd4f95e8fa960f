package registry

import "errors"

// ErrChanged: a node's record was written again (it said hello) after it
// was read, so it was not removed.
var ErrChanged = errors.New("the node's record changed since it was read")
