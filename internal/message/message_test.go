package message_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// catalogue is a fixed method list for validation tests.
type catalogue map[string]bool // name → replyable

func (c catalogue) Resolve(name string) (string, bool, bool) {
	if name == "REQnCliCommand" {
		name = "REQCliCommand"
	}
	r, ok := c[name]
	return name, r, ok
}

var cat = catalogue{"REQCliCommand": false, "REQPing": false, "REQToFileAppend": true, "REQToFile": true, "REQHttpGet": false,
	"REQTailFile": false, "REQHello": false, "REQOpCommand": false, "REQOpProcessList": false, "REQnCliCommandCont": false}

func TestDecodeAcceptsArrayAndObject(t *testing.T) {
	for _, in := range []string{
		`[{"toNode":"ship1","method":"REQPing"}]`,
		`{"toNode":"ship1","method":"REQPing"}`,
		"  \n[ {\"toNode\":\"ship1\",\"method\":\"REQPing\"} ]\n",
	} {
		msgs, _, errs, err := message.Decode([]byte(in))
		if err != nil || len(errs) != 0 || len(msgs) != 1 || msgs[0].ToNode != "ship1" {
			t.Errorf("Decode(%q) = %v, %v, %v", in, msgs, errs, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, in string
		whole    error // error for the whole input
		item     error // error for the first element
		contains string
	}{
		{"empty", ``, message.ErrMalformed, nil, "empty input"},
		{"not JSON", `hello`, message.ErrMalformed, nil, "JSON array"},
		{"truncated", `[{"toNode":"ship1",`, message.ErrMalformed, nil, "invalid JSON"},
		{"empty array", `[]`, message.ErrMalformed, nil, "no messages"},
		{"element not object", `[42]`, nil, message.ErrMalformed, "JSON object"},
		{"wrong type", `[{"toNode":"a","method":"REQPing","retries":"3"}]`, nil, message.ErrFieldType, `"retries": expected a number, got string`},
		{"wrong array type", `[{"toNode":"a","method":"REQPing","methodArgs":"ls"}]`, nil, message.ErrFieldType, `"methodArgs": expected an array`},
		{"unknown field", `[{"toNode":"a","method":"REQPing","colour":"red"}]`, nil, message.ErrUnknownField, `"colour"`},
		{"bad data", `[{"toNode":"a","method":"REQPing","data":12}]`, nil, message.ErrFieldType, "data"},
		{"bad deadline", `[{"toNode":"a","method":"REQPing","deliveryDeadline":"tomorrow"}]`, nil, message.ErrFieldValue, "RFC 3339"},
		{"deadline too far", `[{"toNode":"a","method":"REQPing","deliveryDeadline":10000000000}]`, nil, message.ErrFieldValue, "maximum"},
		{"negative deadline", `[{"toNode":"a","method":"REQPing","deliveryDeadline":-5}]`, nil, message.ErrFieldValue, "positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, errs, err := message.Decode([]byte(tc.in))
			var got error
			switch {
			case tc.whole != nil:
				if !errors.Is(err, tc.whole) {
					t.Fatalf("want whole-input error %v, got %v", tc.whole, err)
				}
				got = err
			default:
				if err != nil || len(errs) != 1 || !errors.Is(errs[0], tc.item) {
					t.Fatalf("want item error %v, got %v / %v", tc.item, err, errs)
				}
				got = errs[0]
			}
			if !strings.Contains(got.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", got, tc.contains)
			}
		})
	}
}

func TestDecodeKeepsGoodElementsBesideBadOnes(t *testing.T) {
	msgs, idx, errs, err := message.Decode([]byte(`[{"toNode":"a","method":"REQPing"},{"bogus":1},{"toNode":"b","method":"REQPing"}]`))
	if err != nil || len(msgs) != 2 || len(errs) != 1 || errs[0].Index != 1 || idx[0] != 0 || idx[1] != 2 {
		t.Fatalf("got %d msgs %v, errs %v, err %v", len(msgs), idx, errs, err)
	}
	if !strings.HasPrefix(errs[0].Error(), "message 2:") {
		t.Errorf("item error should name the element: %v", errs[0])
	}
}

func TestDataForms(t *testing.T) {
	cases := map[string]string{
		`"text"`:            "text",
		`["line1","line2"]`: "line1\nline2",
		`[]`:                "",
		`null`:              "",
		`{"base64":"AAEC"}`: "\x00\x01\x02",
	}
	for in, want := range cases {
		var d message.Data
		if err := json.Unmarshal([]byte(in), &d); err != nil || string(d) != want {
			t.Errorf("%s → %q, %v; want %q", in, d, err, want)
		}
	}
	for _, raw := range []message.Data{message.Data("plain\ntext"), {0xff, 0xfe, 0x00}} {
		b, err := json.Marshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		var back message.Data
		if err := json.Unmarshal(b, &back); err != nil || string(back) != string(raw) {
			t.Errorf("round trip of %q via %s gave %q, %v", raw, b, back, err)
		}
	}
}

func TestDeadlineForms(t *testing.T) {
	sent := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var d message.Deadline
	if err := json.Unmarshal([]byte(`90`), &d); err != nil || !d.Resolve(sent).Equal(sent.Add(90*time.Second)) {
		t.Errorf("seconds: %v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`"2026-02-01T00:00:00Z"`), &d); err != nil || !d.Resolve(sent).Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("time: %v %v", d, err)
	}
}

func TestValidate(t *testing.T) {
	neg := -1
	cases := []struct {
		name string
		m    message.Message
		want error
	}{
		{"ok", message.Message{ToNode: "ship1", Method: "REQPing"}, nil},
		{"alias resolves", message.Message{ToNode: "ship1", Method: "REQnCliCommand"}, nil},
		{"no target", message.Message{Method: "REQPing"}, message.ErrNoTarget},
		{"no method", message.Message{ToNode: "ship1"}, message.ErrNoMethod},
		{"unknown method", message.Message{ToNode: "ship1", Method: "REQFoo"}, message.ErrUnknownMethod},
		{"bad node", message.Message{ToNode: "ship 1", Method: "REQPing"}, message.ErrBadNodeName},
		{"bad node in toNodes", message.Message{ToNodes: []string{"ok", "a.b"}, Method: "REQPing"}, message.ErrBadNodeName},
		{"long node", message.Message{ToNode: strings.Repeat("a", 65), Method: "REQPing"}, message.ErrBadNodeName},
		{"reply method not replyable", message.Message{ToNode: "a", Method: "REQPing", ReplyMethod: "REQCliCommand"}, message.ErrFieldValue},
		{"unknown reply method", message.Message{ToNode: "a", Method: "REQPing", ReplyMethod: "REQX"}, message.ErrUnknownMethod},
		{"negative timeout", message.Message{ToNode: "a", Method: "REQPing", MethodTimeout: -1}, message.ErrFieldValue},
		{"huge timeout", message.Message{ToNode: "a", Method: "REQPing", ACKTimeout: 100 * 24 * 3600}, message.ErrFieldValue},
		{"negative retries", message.Message{ToNode: "a", Method: "REQPing", Retries: &neg}, message.ErrFieldValue},
		{"dotdot directory", message.Message{ToNode: "a", Method: "REQPing", Directory: "../x"}, message.ErrBadPath},
		{"sneaky dotdot", message.Message{ToNode: "a", Method: "REQPing", Directory: "a/b/../../../x"}, message.ErrBadPath},
		{"reserved directory", message.Message{ToNode: "a", Method: "REQPing", Directory: "/.steward/x"}, message.ErrBadPath},
		{"absolute directory ok", message.Message{ToNode: "a", Method: "REQPing", Directory: "/var/cli/command_result/"}, nil},
		{"file name with slash", message.Message{ToNode: "a", Method: "REQPing", FileName: "a/b"}, message.ErrBadPath},
		{"file name dotdot", message.Message{ToNode: "a", Method: "REQPing", FileName: ".."}, message.ErrBadPath},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			err := message.Validate(&m, cat)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
		})
	}
}

func TestValidateInputRefusesStewardFields(t *testing.T) {
	for _, m := range []message.Message{
		{ToNode: "a", Method: "REQPing", FromNode: "x"},
		{ToNode: "a", Method: "REQPing", DeadlineSeq: 7},
		{ToNode: "a", Method: "REQPing", Event: true},
		{ToNode: "a", Method: "REQPing", SentAt: time.Now()},
	} {
		if err := message.ValidateInput(&m, cat); !errors.Is(err, message.ErrReserved) {
			t.Errorf("%+v: want ErrReserved, got %v", m, err)
		}
	}
}

func TestValidateInputTakesAClientChosenID(t *testing.T) {
	for id, ok := range map[string]bool{
		"job42": true, "A1b2C3": true, strings.Repeat("x", message.MaxIDLen): true,
		"a.b": false, "a*": false, "a>": false, "a b": false, "é": false, strings.Repeat("x", message.MaxIDLen+1): false,
	} {
		m := message.Message{ToNode: "a", Method: "REQPing", ID: id}
		err := message.ValidateInput(&m, cat)
		if ok != (err == nil) || !ok && !errors.Is(err, message.ErrFieldValue) {
			t.Errorf("id %q: got %v", id, err)
		}
	}
}

func TestCleanDirectory(t *testing.T) {
	cases := map[string]string{
		"":                            "",
		"/":                           "",
		"cli-command-executed-result": "cli-command-executed-result",
		"/var/cli/command_result/":    "var/cli/command_result",
		"./my/log/files/":             "my/log/files",
		"a/./b//c":                    "a/b/c",
		"a/b/../c":                    "a/c",
	}
	for in, want := range cases {
		got, err := message.CleanDirectory(in)
		if err != nil || got != want {
			t.Errorf("CleanDirectory(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestTargetsMergeAndDeduplicate(t *testing.T) {
	m := message.Message{ToNode: "a", ToNodes: []string{"b", "a", "c", "b"}}
	if got := strings.Join(m.Targets(), ","); got != "a,b,c" {
		t.Errorf("Targets = %s", got)
	}
}

func TestDeliveryIDRoundTrip(t *testing.T) {
	id, node, ok := message.SplitDeliveryID(message.DeliveryID("abc123", "ship-1"))
	if !ok || id != "abc123" || node != "ship-1" {
		t.Errorf("got %q %q %v", id, node, ok)
	}
	if _, _, ok := message.SplitDeliveryID("nodot"); ok {
		t.Error("split of an id without a dot succeeded")
	}
}

// TestExampleFilesDecodeAndValidate holds steward to the message files
// users already have (../shared/reference/examples, copied to testdata).
func TestExampleFilesDecodeAndValidate(t *testing.T) {
	files, err := filepath.Glob("../../testdata/examples/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msgs, _, errs, err := message.Decode(b)
			if err != nil || len(errs) != 0 {
				t.Fatalf("decode: %v %v", err, errs)
			}
			for _, m := range msgs {
				if err := message.ValidateInput(m, cat); err != nil {
					t.Errorf("validate: %v", err)
				}
			}
		})
	}
}

func TestLifetimesDeriveFromTheHorizon(t *testing.T) {
	sent := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	retries := 2
	m := &message.Message{Deadline: sent.Add(24 * time.Hour), Retries: &retries, MethodTimeout: 60, ACKTimeout: 10}
	horizon := sent.Add(24*time.Hour + 3*70*time.Second)
	if got := m.Horizon(sent); !got.Equal(horizon) {
		t.Fatalf("horizon %s, want %s", got, horizon)
	}
	if got, want := m.StorageTTL(sent), horizon.Add(message.Grace).Sub(sent); got != want {
		t.Errorf("storage TTL %s, want %s", got, want)
	}
	if !m.LedgerExpiry(sent).After(sent.Add(m.StorageTTL(sent))) {
		t.Error("the ledger forgets a delivery before the broker drops it")
	}
	if sent.Add(m.StatusTTL(sent)).Before(horizon) {
		t.Error("a status record expires before its delivery can no longer change")
	}
	// The longest deadline a message may have still gets a status record
	// that outlives it (a 30-day deadline once met a 7-day status TTL).
	long := &message.Message{Deadline: sent.Add(message.MaxTimeout), MethodTimeout: 10, ACKTimeout: 10}
	if sent.Add(long.StatusTTL(sent)).Before(long.Deadline) {
		t.Error("status TTL shorter than the delivery deadline")
	}
	// Capped: a thousand retries of a 30-day method do not keep a message for decades.
	huge := 1000
	capped := &message.Message{Deadline: sent, Retries: &huge, MethodTimeout: int(message.MaxTimeout / time.Second)}
	if got := capped.Horizon(sent); got.After(sent.Add(message.MaxTimeout)) {
		t.Errorf("horizon %s not capped", got)
	}
	// TTLs are whole seconds, at least one.
	past := &message.Message{Deadline: sent.Add(-48 * time.Hour)}
	if got := past.StorageTTL(sent); got != time.Second {
		t.Errorf("TTL of a long-gone message %s, want 1s", got)
	}
}
