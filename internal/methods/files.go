package methods

import (
	"context"
	"fmt"
	"time"

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
	written, wrote, err := appendOnce(req, rel, m.Data)
	if err != nil {
		return nil, err
	}
	if !wrote {
		return &Result{Output: fmt.Appendf(nil, "%d bytes were appended to %s by an earlier run (the node stopped before it recorded that)", len(m.Data), written)}, nil
	}
	return &Result{Output: fmt.Appendf(nil, "wrote %d bytes to %s", len(m.Data), written)}, nil
}

// appendOnce appends data to rel in the data folder for req's delivery,
// once: a run after a crash does not append again what an earlier run of
// the delivery appended (datafolder.Append, with where that run was about
// to write as the node's ledger recorded it). Methods that append use it,
// so the same data must be appended on every run.
func appendOnce(req *Request, rel string, data []byte) (abs string, wrote bool, err error) {
	prior := req.PriorAppend
	if req.AppendAt == nil {
		prior = -1
	}
	return req.Env.Files.Append(rel, data, prior, req.AppendAt)
}

// lineTime is the time a line that a method appends is dated by: the
// message's sentAt (else when the broker stored it), so that every run of
// the delivery appends the same line (appendOnce).
func lineTime(req *Request) time.Time {
	switch {
	case !req.Msg.SentAt.IsZero():
		return req.Msg.SentAt
	case !req.Stored.IsZero():
		return req.Stored
	}
	return req.Env.now()
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
