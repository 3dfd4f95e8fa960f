package methods

import (
	"context"
	"time"
)

var opProcessList = Spec{
	Name:           "REQOpProcessList",
	Summary:        "list the node's processes: the methods it serves and for whom, and the deliveries it runs now",
	Kind:           Command,
	DefaultTimeout: 10 * time.Second,
	Handler:        runOpProcessList,
}

func runOpProcessList(_ context.Context, req *Request) (*Result, error) {
	t, err := table(req)
	if err != nil {
		return nil, err
	}
	return &Result{Output: []byte(t.Snapshot().String())}, nil
}
