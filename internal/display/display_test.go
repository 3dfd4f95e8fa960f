package display_test

import (
	"testing"
	"unicode/utf8"

	"github.com/stewardfleet/steward/internal/display"
)

func TestSafe(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "hello\tworld\nnext line\n", "hello\tworld\nnext line\n"},
		{"unicode", "Grüße, 船\n", "Grüße, 船\n"},
		{"colour", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"clipboard (OSC 52)", "\x1b]52;c;cm0gLXJmIC8=\x07", `\x1b]52;c;cm0gLXJmIC8=\x07`},
		{"overwrite with CR", "ok\rFAILED", `ok\x0dFAILED`},
		{"CRLF line ends", "a\r\nb\r\n", "a\nb\n"},
		{"backspace and DEL", "x\b\x7f", `x\x08\x7f`},
		{"C1 CSI", "a\u009b31mb", `a\x9b31mb`},
		{"bidi override", "file\u202egnp.exe", `file\u202egnp.exe`},
		{"not UTF-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"NUL", "a\x00b", `a\x00b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(display.Safe([]byte(tc.in))); got != tc.want {
				t.Errorf("Safe(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := display.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// Whatever goes in, what comes out is UTF-8 with no control character a
// terminal acts on (only newline and tab).
func FuzzSafe(f *testing.F) {
	for _, s := range []string{"", "plain\n", "\x1b[2J", "\r\n\r", "\xff\xfe", "\u202e\u2066"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := display.Safe(b)
		if !utf8.Valid(out) {
			t.Fatalf("Safe(%q) = %q is not UTF-8", b, out)
		}
		for _, r := range string(out) {
			if r != '\n' && r != '\t' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("Safe(%q) = %q keeps %U", b, out, r)
			}
		}
	})
}
