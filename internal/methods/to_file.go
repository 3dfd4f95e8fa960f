package methods

import (
	"context"
	"time"
)

var toFile = Spec{
	Name:           "REQToFile",
	Summary:        "write the data to <directory>/<source node>/<fileName> in the data folder, replacing the file",
	Kind:           ReplyHandler,
	DefaultTimeout: 30 * time.Second,
	Handler: func(ctx context.Context, req *Request) (*Result, error) {
		return writeData(ctx, req, false)
	},
}
