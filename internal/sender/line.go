package sender

import (
	"fmt"
	"strings"
)

// QueuedNote ends the line of a queued receipt.
const QueuedNote = "queued: the broker cannot be reached; it is sent when it can"

// Line is the receipt as one line of text, without its newline: what
// `steward send` prints and what the node's socket and TCP listener
// answer, so an operator reads the same thing from either.
//
//	<id> <method> <node1,node2>
//	<id> <method> <node1,node2> runs <id>r2,<id>r3   (a repeated message)
//	<id> <method> <node1,node2> queued: the broker cannot be reached; it is sent when it can
//	error: message <n>: <reason> (<code>)
//
// n counts from 1; "(<code>)" is left out when the receipt has no code.
// A receipt with no ID is a refusal ("not sent" when it gives no reason).
func (r *Receipt) Line() string {
	if r.ID == "" || r.Error != "" {
		prefix := fmt.Sprintf("message %d: ", r.Index+1)
		reason := strings.TrimPrefix(r.Error, prefix)
		if reason == "" {
			reason = "not sent"
		}
		line := "error: " + prefix + reason
		if r.Code != "" {
			line += " (" + r.Code + ")"
		}
		return line
	}
	line := r.ID + " " + r.Method + " " + strings.Join(r.Nodes, ",")
	if len(r.Runs) > 0 {
		line += " runs " + strings.Join(r.Runs, ",")
	}
	if r.Queued {
		line += " " + QueuedNote
	}
	return line
}
