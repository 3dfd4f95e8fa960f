package socket

import (
	"errors"
	"fmt"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/sender"
)

// Answer is the text answer to one JSON value, as the node's handler
// writes it: when the input as a whole could not be read (err), one line
// "error: <reason> (<code>)"; otherwise one line per message, in input
// order, the line `steward send` prints for it (sender.Receipt.Line):
//
//	<id> <method> <node1,node2>
//	<id> <method> <node1,node2> queued: the broker cannot be reached; it is sent when it can
//	error: message <n>: <reason> (<code>)
//
// n counts from 1. The codes are the receipts' (message.Code, and the
// sender's publish_failed and duplicate_id): the same as `steward send`
// and the HTTP API give for the same input.
func Answer(receipts []sender.Receipt, err error) []byte {
	if err != nil {
		return ErrorLine(err)
	}
	var out []byte
	for _, r := range receipts {
		out = append(out, r.Line()...)
		out = append(out, '\n')
	}
	return out
}

// ErrorLine is the answer to input refused as a whole:
// "error: <reason> (<code>)\n".
func ErrorLine(err error) []byte {
	return fmt.Appendf(nil, "error: %v (%s)\n", err, Code(err))
}

// Code is the code of input refused as a whole, by this package (invalid
// JSON, too large) or by the sender: the code `steward send` and the HTTP
// API give for it.
func Code(err error) message.Code {
	switch {
	case errors.Is(err, errTooLarge):
		return message.CodeTooLarge
	case errors.Is(err, errSyntax), errors.Is(err, errIncomplete):
		return message.CodeMalformed
	}
	return message.CodeOf(err)
}
