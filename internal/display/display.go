// Package display makes text that came from another node safe to show on
// an operator's terminal or in a log file read with one: command output,
// error reports, replies printed by REQToConsole. A node that is not
// trusted must not be able to move the cursor, rewrite what the operator
// sees, set the terminal's title or clipboard, or reorder text.
package display

import (
	"fmt"
	"unicode/utf8"
)

// Safe returns b with everything a terminal would act on shown as an
// escape instead: control characters other than newline and tab (so ESC
// is `\x1b`), a carriage return that does not end a line (a CRLF line end
// becomes LF), DEL, C1 controls, the bidirectional overrides and isolates
// (U+202A–U+202E, U+2066–U+2069), and bytes that are not UTF-8 (`\xff`).
// Text with none of them is returned as it is.
func Safe(b []byte) []byte {
	i := firstUnsafe(b)
	if i < 0 {
		return b
	}
	out := append(make([]byte, 0, len(b)+16), b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = fmt.Appendf(out, `\x%02x`, b[i])
		case r == '\r' && i+1 < len(b) && b[i+1] == '\n':
			// CRLF: the LF alone ends the line.
		case unsafe(r):
			if r < 0x100 {
				out = fmt.Appendf(out, `\x%02x`, r)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// String is Safe for a string.
func String(s string) string {
	if firstUnsafe([]byte(s)) < 0 {
		return s
	}
	return string(Safe([]byte(s)))
}

// firstUnsafe is the index of the first byte Safe changes, or -1.
func firstUnsafe(b []byte) int {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c != '\n' && c != '\t' && (c < 0x20 || c == 0x7f) {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || unsafe(r) {
			return i
		}
		i += size
	}
	return -1
}

func unsafe(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
