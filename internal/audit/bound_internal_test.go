package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stewardfleet/steward/internal/message"
)

func TestCut(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abcdef", 3, "abc"},
		{"ab€cd", 3, "ab"}, // € is 3 bytes
		{"ab€cd", 4, "ab"},
		{"ab€cd", 5, "ab€"},
		{"𝄞𝄞", 5, "𝄞"}, // 4 bytes each
		{"\xff\xff\xff\xff\xff\xff", 4, "\xff\xff\xff\xff"},
		{"", 0, ""},
	}
	for _, tc := range cases {
		if got := string(cut([]byte(tc.in), tc.n)); got != tc.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestEncodeWithinEveryField: whatever field is large, the line fits, is
// one JSON record and says it was truncated.
func TestEncodeWithinEveryField(t *testing.T) {
	const limit = 200 << 10
	big := strings.Repeat("x<y>", 1<<18) // 1 MiB, escaped to 6
	cases := []struct {
		name  string
		rec   Record
		check func(t *testing.T, got Record)
	}{
		{"error", Record{Event: Refused, Error: big, Message: &message.Message{ID: "M1", Method: "REQPing"}},
			func(t *testing.T, got Record) {
				if len(got.Error) != MaxInput || got.Message == nil || got.Message.ID != "M1" {
					t.Errorf("error %d bytes, message %+v", len(got.Error), got.Message)
				}
			}},
		{"method args", Record{Event: Refused, Message: &message.Message{ID: "M1", Method: "REQCliCommand", MethodArgs: []string{big}}},
			func(t *testing.T, got Record) {
				full, _ := json.Marshal(&message.Message{ID: "M1", Method: "REQCliCommand", MethodArgs: []string{big}})
				if got.Message != nil || got.InputBytes != len(full) || !bytes.HasPrefix(full, got.Input) || got.InputSHA256 != sum(full) {
					t.Errorf("message not replaced by the start of its JSON: %d of %d bytes", len(got.Input), len(full))
				}
			}},
		{"data and args", Record{Event: Refused, Message: &message.Message{ID: "M1", Method: "REQCliCommand", MethodArgs: []string{big}, Data: message.Data(big)}},
			func(t *testing.T, got Record) {
				if got.Message != nil || got.DataBytes != 0 || got.DataSHA256 != "" || got.InputBytes < 2*len(big) {
					t.Errorf("message not dropped cleanly: %+v", got)
				}
			}},
		{"input", Record{Event: Refused, Input: message.Data(big)},
			func(t *testing.T, got Record) {
				if len(got.Input) != MaxInput || got.InputBytes != len(big) || got.InputSHA256 != sum([]byte(big)) {
					t.Errorf("input %d bytes of %d, sha256 %s", len(got.Input), got.InputBytes, got.InputSHA256)
				}
			}},
		{"delivery and status", Record{Event: Processed, DeliveryID: big, Status: big, Error: big},
			func(t *testing.T, got Record) {
				if len(got.DeliveryID) != MaxInput || len(got.Status) != MaxInput || len(got.Error) != MaxInput {
					t.Errorf("lengths %d %d %d", len(got.DeliveryID), len(got.Status), len(got.Error))
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeWithin(tc.rec, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > limit || b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
				t.Fatalf("line of %d bytes, limit %d", len(b), limit)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			var got Record
			if err := dec.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if tc.name != "input" && !got.Truncated {
				t.Errorf("not marked truncated")
			}
			if !utf8.Valid(b) {
				t.Errorf("line is not UTF-8")
			}
			tc.check(t, got)
		})
	}
}
