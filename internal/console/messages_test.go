package console

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// Pages of output end on whole characters and add up to the output.
func TestPageEnd(t *testing.T) {
	out := []byte(strings.Repeat("aé€😀", 1000)) // 1, 2, 3 and 4 bytes
	for _, size := range []int{1, 2, 3, 4, 5, 7, 64, 1000} {
		var joined []byte
		for offset := 0; offset < len(out); {
			end := pageEnd(out, offset, size)
			if end <= offset {
				t.Fatalf("size %d: no progress at %d", size, offset)
			}
			if !utf8.Valid(out[offset:end]) {
				t.Fatalf("size %d: page %d..%d cuts a character", size, offset, end)
			}
			joined = append(joined, out[offset:end]...)
			offset = end
		}
		if !bytes.Equal(joined, out) {
			t.Fatalf("size %d: pages do not add up", size)
		}
	}
	if got := pageEnd([]byte("abc"), 0, 10); got != 3 {
		t.Errorf("a short output: %d", got)
	}
}
