package methods

import (
	"context"
	"time"
)

var toFileAppend = Spec{
	Name:           "REQToFileAppend",
	Summary:        "append the data to <directory>/<source node>/<fileName> in the data folder",
	Kind:           ReplyHandler,
	DefaultTimeout: 30 * time.Second,
	Handler: func(ctx context.Context, req *Request) (*Result, error) {
		return writeData(ctx, req, true)
	},
}
