package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/message"
)

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// randomBytes is n bytes that are not UTF-8.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// oneLine writes r to a fresh log and returns its line and record.
func oneLine(t *testing.T, r audit.Record) (int64, audit.Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	write(t, open(t, path, "ship1"), r)
	lines := readLines(t, path)
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size(), lines[0]
}

func TestRefusedInputIsBounded(t *testing.T) {
	cases := []struct {
		name  string
		input []byte
	}{
		{"small", []byte(`{"toNode": "ship1", "method": "REQNope"}`)},
		{"60 MB of text", bytes.Repeat([]byte(`{"toNode":"ship1","data":"ünïcödé"}`), 60<<20/40)},
		{"multi-byte rune across the cut", append(bytes.Repeat([]byte("a"), audit.MaxInput-1), []byte("€€€")...)},
		{"binary", randomBytes(1 << 20)},
		{"empty", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			size, got := oneLine(t, audit.RefusedInput(tc.input, errors.New("bad input")))
			if size > 16<<10 {
				t.Errorf("line of %d bytes", size)
			}
			if got.Event != audit.Refused || got.Error != "bad input" || got.Message != nil {
				t.Errorf("record %+v", got)
			}
			if got.InputBytes != len(tc.input) || got.InputSHA256 != hexSum(tc.input) {
				t.Errorf("input %d bytes sha256 %s, want %d %s", got.InputBytes, got.InputSHA256, len(tc.input), hexSum(tc.input))
			}
			if len(got.Input) > audit.MaxInput || !bytes.HasPrefix(tc.input, got.Input) {
				t.Errorf("kept %d bytes, not a start of the input of at most %d", len(got.Input), audit.MaxInput)
			}
			if want := min(len(tc.input), audit.MaxInput-utf8.UTFMax); len(got.Input) < want {
				t.Errorf("kept %d bytes, want at least %d", len(got.Input), want)
			}
			if utf8.Valid(tc.input) && !utf8.Valid(got.Input) {
				t.Errorf("the cut split a rune")
			}
		})
	}
}

// TestLinesAreBounded: Write cuts the data of records over the bound and
// keeps the others whole.
func TestLinesAreBounded(t *testing.T) {
	text := message.Data(strings.Repeat("output line ü\n", (3<<20)/15))
	cases := []struct {
		name      string
		event     audit.Event
		data      message.Data
		truncated bool
	}{
		{"refused, large text", audit.Refused, text, true},
		{"refused, large binary", audit.Refused, randomBytes(3 << 20), true},
		{"refused, escaped", audit.Refused, message.Data(strings.Repeat("<&>\x01", 1<<20)), true},
		{"refused, under the bound", audit.Refused, text[:512<<10], false},
		{"sent, large", audit.Sent, text, false},
		{"processed, large", audit.Processed, text[:2<<20], false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := &message.Message{ToNode: "ship1", Method: "REQCliCommand", MethodArgs: []string{"cat", "big"}, ID: "M1", Data: tc.data}
			size, got := oneLine(t, audit.Record{Event: tc.event, Error: "too large", Message: m})
			if len(m.Data) != len(tc.data) {
				t.Fatalf("Write changed the caller's message")
			}
			if got.Message == nil || got.Message.ID != "M1" || len(got.Message.MethodArgs) != 2 {
				t.Fatalf("message lost: %+v", got.Message)
			}
			if got.Truncated != tc.truncated {
				t.Fatalf("truncated %v, want %v", got.Truncated, tc.truncated)
			}
			if !tc.truncated {
				if !bytes.Equal(got.Message.Data, tc.data) || got.DataBytes != 0 || got.DataSHA256 != "" {
					t.Errorf("data not kept whole: %d of %d bytes", len(got.Message.Data), len(tc.data))
				}
				return
			}
			if size > audit.MaxRefusedLine || size < audit.MaxRefusedLine*9/10 {
				t.Errorf("line of %d bytes, want a little under %d", size, audit.MaxRefusedLine)
			}
			if got.DataBytes != len(tc.data) || got.DataSHA256 != hexSum(tc.data) {
				t.Errorf("data %d bytes sha256 %s, want %d %s", got.DataBytes, got.DataSHA256, len(tc.data), hexSum(tc.data))
			}
			if len(got.Message.Data) == 0 || !bytes.HasPrefix(tc.data, got.Message.Data) {
				t.Errorf("kept %d bytes, not a start of the data", len(got.Message.Data))
			}
		})
	}
}
