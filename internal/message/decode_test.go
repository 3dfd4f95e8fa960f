package message_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/message"
)

// TestDecodeTrailingComma: the original README's examples end objects
// with a comma; the error names that and where the comma is, and the
// input stays refused (malformed).
func TestDecodeTrailingComma(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"object in array", `[{"toNode":"ship1","method":"REQPing",}]`, "line 1, column 38: trailing comma"},
		{"one object", `{"toNode":"ship1","method":"REQPing",}`, "line 1, column 37: trailing comma"},
		{"array", `[{"toNode":"ship1","method":"REQPing"},]`, "line 1, column 39: trailing comma"},
		{"comma then newline", "[\n  {\n    \"toNode\": \"ship1\",\n    \"method\": \"REQPing\",\n  }\n]", "line 4, column 24: trailing comma"},
		{"in methodArgs", "{\"toNode\":\"a\",\"method\":\"REQCliCommand\",\n\"methodArgs\":[\"uptime\", ]}", "line 2, column 23: trailing comma"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, itemErrs, err := message.Decode([]byte(tt.input))
			if err == nil && len(itemErrs) == 1 {
				err = itemErrs[0]
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, message.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "JSON does not allow") {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			if got := message.CodeOf(err); got != message.CodeMalformed {
				t.Fatalf("code %q, want malformed", got)
			}
		})
	}
}

// TestDecodeSyntaxPosition: other syntax errors keep their message and
// point at the offending character; a comma inside a string is not a
// trailing comma.
func TestDecodeSyntaxPosition(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"missing value", `{"toNode":}`, "line 1, column 11: invalid character '}' looking for beginning of value"},
		{"second line", "{\"toNode\":\"a\",\n \"method\" \"REQPing\"}", "line 2, column 11: invalid character"},
		{"comma in a string", `{"toNode":"a,"]`, "line 1, column 15: invalid character ']' after object key:value pair"},
		{"truncated", `{"toNode":"a",`, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := message.DecodeOne([]byte(tt.input))
			if !errors.Is(err, message.ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q (malformed)", err, tt.want)
			}
			if strings.Contains(err.Error(), "trailing comma") {
				t.Fatalf("%q called a trailing comma", err)
			}
		})
	}
}
