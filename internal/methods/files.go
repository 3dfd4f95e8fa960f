package methods

import (
	"context"
	"fmt"

	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/message"
)

// writeData writes a message's data to <directory>/<source node>/<fileName>
// in the node's data folder. The source node is the message's fromNode: for
// a reply, the node that ran the request. Without a fileName the file is
// named after the request method, e.g. "REQCliCommand.result".
func writeData(_ context.Context, req *Request, appendMode bool) (*Result, error) {
	m := req.Msg
	rel, err := DataFile(m)
	if err != nil {
		return nil, err
	}
	if !appendMode {
		written, err := req.Env.Files.Write(rel, m.Data, false)
		if err != nil {
			return nil, err
		}
		return &Result{Output: fmt.Appendf(nil, "wrote %d bytes to %s", len(m.Data), written)}, nil
	}
	prior := req.PriorAppend
	if req.AppendAt == nil {
		prior = -1
	}
	written, wrote, err := req.Env.Files.Append(rel, m.Data, prior, req.AppendAt)
	if err != nil {
		return nil, err
	}
	if !wrote {
		return &Result{Output: fmt.Appendf(nil, "%d bytes were appended to %s by an earlier run (the node stopped before it recorded that)", len(m.Data), written)}, nil
	}
	return &Result{Output: fmt.Appendf(nil, "wrote %d bytes to %s", len(m.Data), written)}, nil
}

// DataFile is the file REQToFile and REQToFileAppend write m's data to,
// relative to the data folder: <directory>/<source node>/<fileName>, the
// file name <method>.result when the message names none.
func DataFile(m *message.Message) (string, error) {
	name := m.FileName
	if name == "" {
		method := m.Method
		if m.Reply != nil {
			method = m.Reply.Method
		}
		name = method + ".result"
	}
	return datafolder.ReplyPath(m.Directory, m.FromNode, name)
}
