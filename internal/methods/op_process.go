package methods

import (
	"errors"
	"strings"

	"github.com/stewardfleet/steward/internal/procs"
)

// The process operations: a node's process table (package procs) lists the
// methods it serves and for whom, and the deliveries it runs now. Starting
// a method serves it again (for the senders given, or every node);
// stopping it rejects its messages ("method not running") and stops its
// running deliveries, which end cancelled. The operations themselves
// cannot be stopped: nothing could start them again.

// ProcessTable is the part of a node's process table the operations use.
// Method names may be aliases; Canonical resolves one to the request
// method it names (or fails: unknown, or not a request method).
type ProcessTable interface {
	Canonical(method string) (string, error)
	Snapshot() procs.Snapshot
	Start(method string, senders []string) (string, error)
	Stop(method, id, reason string) (string, error)
}

// operations are the methods a stop must not reach.
var operations = []string{"REQOpProcessList", "REQOpProcessStart", "REQOpProcessStop", "REQOpCommand"}

func table(req *Request) (ProcessTable, error) {
	if req.Env == nil || req.Env.Procs == nil {
		return nil, errors.New("this node keeps no process table")
	}
	return req.Env.Procs, nil
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
