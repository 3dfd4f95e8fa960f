package sender_test

import (
	"testing"

	"github.com/stewardfleet/steward/internal/sender"
)

func TestReceiptLine(t *testing.T) {
	tests := []struct {
		name string
		r    sender.Receipt
		want string
	}{
		{"sent", sender.Receipt{ID: "m1", Method: "REQPing", Nodes: []string{"ship1"}}, "m1 REQPing ship1"},
		{"several nodes", sender.Receipt{Index: 3, ID: "m1", Method: "REQCliCommand", Nodes: []string{"ship1", "ship2"}},
			"m1 REQCliCommand ship1,ship2"},
		{"queued", sender.Receipt{ID: "m1", Method: "REQPing", Nodes: []string{"ship1"}, Queued: true},
			"m1 REQPing ship1 queued: the broker cannot be reached; it is sent when it can"},
		{"refused", sender.Receipt{Index: 1, Error: `unknown method "REQNope"`, Code: "unknown_method"},
			`error: message 2: unknown method "REQNope" (unknown_method)`},
		{"refused, reason already numbered", sender.Receipt{Error: "message 1: missing toNode", Code: "missing_target"},
			"error: message 1: missing toNode (missing_target)"},
		{"refused without a code", sender.Receipt{Index: 4, Error: "broken"}, "error: message 5: broken"},
		{"refused after it got an ID", sender.Receipt{ID: "m1", Method: "REQPing", Nodes: []string{"ship1"}, Error: "publish: nats: timeout", Code: sender.CodePublishFailed},
			"error: message 1: publish: nats: timeout (publish_failed)"},
		{"no ID, no reason", sender.Receipt{Index: 2}, "error: message 3: not sent"},
		{"repeated", sender.Receipt{ID: "m1", Method: "REQPing", Nodes: []string{"ship1"}, Runs: []string{"m1r2", "m1r3"}},
			"m1 REQPing ship1 runs m1r2,m1r3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Line(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
