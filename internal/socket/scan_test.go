package socket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
)

// decoded is how encoding/json's Decoder splits in: its values and the
// error it stops at ("" at a clean end).
func decoded(in []byte) (values []string, stop string) {
	dec := json.NewDecoder(bytes.NewReader(in))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return values, ""
		}
		if err != nil {
			return values, err.Error()
		}
		values = append(values, string(raw))
	}
}

// scanned is how the connection input splits data, sent in pieces of the
// given sizes.
func scanned(t testing.TB, data []byte, pieces []int) (values []string, stop string) {
	t.Helper()
	server, client := net.Pipe()
	defer server.Close()
	go func() {
		defer client.Close()
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(pieces) {
				n = min(max(pieces[i], 1), n)
			}
			if _, err := client.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	in := &input{c: server, opts: Options{}.withDefaults(), log: slog.New(slog.DiscardHandler),
		budget: make(chan struct{}, 4), start: -1}
	for {
		v, err := in.next(context.Background())
		in.release()
		switch {
		case errors.Is(err, io.EOF):
			return values, ""
		case errors.Is(err, errSyntax):
			return values, strings.TrimPrefix(err.Error(), errSyntax.Error()+": ")
		case err != nil:
			t.Fatalf("input %q: %v", data, err)
		}
		values = append(values, string(v))
	}
}

// compare fails t unless the scanner splits in as encoding/json does.
func compare(t testing.TB, in []byte, pieces []int) {
	t.Helper()
	wantValues, wantStop := decoded(in)
	values, stop := scanned(t, in, pieces)
	if !slices.Equal(values, wantValues) || stop != wantStop {
		t.Fatalf("input %q in pieces %v:\n got values %q, stop %q\nwant values %q, stop %q",
			in, pieces, values, stop, wantValues, wantStop)
	}
}

var scanSeeds = []string{
	``, ` `, `[]`, `{}`, `[1]`, `[1] [2]`, `[1][2]`, `{"a":1}{"b":[true,false,null]}`,
	`"a"`, `"a""b"`, `"a"x`, `123`, `123 `, `123abc`, `-0.5e+10`, `-`, `01`, `[01]`, `1.`, `1.e3`, `1e`,
	`-x`, `tru`, `truex`, `true false`, `nul`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`, `{,}`, `{"a":1,}`,
	`{"a" : 1 , "b" : [ 1 , 2 ] }`, `"\u00e9\n\"\\\/\b\f\r\t"`, `"\u00g0"`, `"\x"`, "\"a\x01\"",
	"\"\xff\xfe\"", `[{"toNode": oops}]`, `[1] {x}`, `}`, `]`, `[1}`, `{"a":1]`, `[1 2]`, `{"a" 1}`,
	"[\n1\r\n,\t2]\n", `[[[[[]]]]]`, `[[[[`, `{"a":{"b":{"c":"d"}}}`, `0`, `-0`, `0.0e-0`, `1E+2`,
	`[1e5,2E-3,-0.0]`, `"unterminated`, `{"k":"v"`, strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1), `[1]]`, `123[4]`, `null1`, `"a"[1]`,
}

func TestScanMatchesDecoder(t *testing.T) {
	t.Parallel()
	for _, in := range scanSeeds {
		compare(t, []byte(in), nil)
		compare(t, []byte(in), []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	}
}

// TestScanRandom compares the scanner with encoding/json on generated
// inputs: valid values with a few bytes changed, cut at random places.
func TestScanRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	alphabet := []byte(" \t\n{}[],:\"\\u0123456789-+.eEtrufalsnx\x01\xc3")
	for range n {
		var b []byte
		for range 1 + r.IntN(3) {
			b = appendValue(r, b, 0)
			b = append(b, " \n"[r.IntN(2)])
		}
		for range r.IntN(3) {
			i := r.IntN(len(b))
			switch r.IntN(3) {
			case 0:
				b[i] = alphabet[r.IntN(len(alphabet))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[i:]...)...)
			}
		}
		if len(b) > 0 && r.IntN(4) == 0 {
			b = b[:r.IntN(len(b))]
		}
		pieces := make([]int, 8)
		for i := range pieces {
			pieces[i] = 1 + r.IntN(8)
		}
		compare(t, b, pieces)
	}
}

// appendValue appends a random JSON value.
func appendValue(r *rand.Rand, b []byte, depth int) []byte {
	kinds := 8
	if depth > 4 {
		kinds = 6
	}
	switch r.IntN(kinds) {
	case 0:
		return append(b, []string{"true", "false", "null"}[r.IntN(3)]...)
	case 1:
		return append(b, []string{"0", "-1", "12.5", "3e7", "-0.25E-2", "100"}[r.IntN(6)]...)
	case 2, 3:
		return append(b, []string{`""`, `"ab"`, `"a\"b"`, `"\u00e9"`, `"é"`, `"\\\n"`}[r.IntN(6)]...)
	case 4, 5:
		b = append(b, '"')
		b = append(b, strings.Repeat("x", r.IntN(40))...)
		return append(b, '"')
	case 6:
		b = append(b, '[')
		for i := range r.IntN(4) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(r, b, depth+1)
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i := range r.IntN(4) {
			if i > 0 {
				b = append(b, ", "[:1+r.IntN(2)]...)
			}
			b = append(b, `"k":`...)
			b = appendValue(r, b, depth+1)
		}
		return append(b, '}')
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		var pieces []int
		if piece > 0 {
			pieces = make([]int, len(in))
			for i := range pieces {
				pieces[i] = int(piece)
			}
		}
		compare(t, in, pieces)
	})
}

func TestPlainRun(t *testing.T) {
	t.Parallel()
	naive := func(p []byte) int {
		for i, c := range p {
			if c < 0x20 || c == '"' || c == '\\' {
				return i
			}
		}
		return len(p)
	}
	special := []byte{0x00, 0x1f, '"', '\\'}
	plain := []byte{0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0x9f, 0xa0, 0xdc, 0xff, 'x'}
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 40 {
		for range 200 {
			p := make([]byte, n)
			for i := range p {
				p[i] = plain[r.IntN(len(plain))]
			}
			if n > 0 && r.IntN(4) > 0 {
				p[r.IntN(n)] = special[r.IntN(len(special))]
			}
			if got, want := plainRun(p), naive(p); got != want {
				t.Fatalf("plainRun(%q) = %d, want %d", p, got, want)
			}
		}
	}
	for c := range 256 {
		p := []byte("abcdefghijklmnop")
		p[11] = byte(c)
		if got, want := plainRun(p), naive(p); got != want {
			t.Fatalf("plainRun(%q) = %d, want %d", p, got, want)
		}
	}
}
