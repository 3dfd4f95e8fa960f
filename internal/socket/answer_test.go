package socket_test

import (
	"fmt"
	"testing"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/socket"
)

// TestAnswer: the socket answers one line per message, the line steward
// send prints for it, or one error line for input it could not read.
func TestAnswer(t *testing.T) {
	receipts := []sender.Receipt{
		{ID: "m1", Method: "REQPing", Nodes: []string{"ship1", "ship2"}},
		{Index: 1, Error: `unknown method "REQNope"`, Code: "unknown_method"},
		{Index: 2, ID: "m3", Method: "REQCliCommand", Nodes: []string{"ship1"}, Queued: true},
	}
	want := "m1 REQPing ship1,ship2\n" +
		"error: message 2: unknown method \"REQNope\" (unknown_method)\n" +
		"m3 REQCliCommand ship1 queued: the broker cannot be reached; it is sent when it can\n"
	if got := string(socket.Answer(receipts, nil)); got != want {
		t.Errorf("answer\n%q\nwant\n%q", got, want)
	}
	for i, r := range receipts {
		if line := r.Line() + "\n"; string(socket.Answer(receipts[i:i+1], nil)) != line {
			t.Errorf("receipt %d: the answer is not its line %q", i, line)
		}
	}
	if got := string(socket.Answer(nil, nil)); got != "" {
		t.Errorf("no receipts answered %q", got)
	}
	err := fmt.Errorf("decode: %w", message.ErrMalformed)
	if got, want := string(socket.Answer(receipts, err)), "error: decode: "+message.ErrMalformed.Error()+" (malformed)\n"; got != want {
		t.Errorf("refused input answered %q, want %q", got, want)
	}
}
