package methods

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/message"
)

var pong = Spec{
	Name:           "REQPong",
	Summary:        "record a pong: append a line to <directory or ping>/<node>/<fileName or pong.log>",
	Kind:           ReplyHandler,
	DefaultTimeout: 10 * time.Second,
	Handler:        runPong,
}

func runPong(_ context.Context, req *Request) (*Result, error) {
	m := req.Msg
	dir, name := m.Directory, m.FileName
	if dir == "" {
		dir = "ping"
	}
	if name == "" {
		name = "pong.log"
	}
	rel, err := datafolder.ReplyPath(dir, m.FromNode, name)
	if err != nil {
		return nil, err
	}
	// Dated when the pong was sent, on the broker's clock as the answering
	// node knows it (as the ping's sentAt is); the round trip ends there.
	at := lineTime(req)
	line := fmt.Appendf(nil, "%s pong from %s, round trip %s: %s\n",
		at.UTC().Format(time.RFC3339), m.FromNode, roundTrip(requestSentAt(m), at), m.Data)
	if _, _, err := appendOnce(req, rel, line); err != nil {
		return nil, err
	}
	req.Log.Debug("pong received")
	return &Result{}, nil
}

func roundTrip(sent, now time.Time) string {
	if sent.IsZero() {
		return "unknown"
	}
	return now.Sub(sent).Round(time.Millisecond).String()
}

func requestSentAt(m *message.Message) time.Time {
	if m.Reply == nil {
		return time.Time{}
	}
	return m.Reply.RequestSentAt
}
