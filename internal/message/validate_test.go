package message_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
)

// A reply's deliveryId names a folder on the node that receives it: only
// "<id>.<node>" passes.
func TestReplyDeliveryIDIsConfined(t *testing.T) {
	for _, tc := range []struct {
		id            string
		chunk, chunks int
		ok            bool
	}{
		{"abc123.ship1", 0, 1, true},
		{"abc123.ship1", 3, 4, true},
		{"..", 0, 1, false},
		{"../../../../x/escaped", 0, 1, false},
		{"abc/../..", 0, 1, false},
		{"abc123.ship1/..", 0, 1, false},
		{"abc123.", 0, 1, false},
		{".ship1", 0, 1, false},
		{"abc123.ship1", 4, 4, false},
		{"abc123.ship1", -1, 4, false},
		{"abc123.ship1", 0, message.MaxReplyChunks + 1, false},
		{"abc123.ship2", 0, 1, false}, // ship1 answering for ship2
		{"other.ship1", 0, 1, false},  // another message's delivery
	} {
		m := &message.Message{ID: "abc123", ToNode: "central", FromNode: "ship1", Method: "REQToFileAppend",
			Reply: &message.ReplyInfo{DeliveryID: tc.id, Chunk: tc.chunk, Chunks: tc.chunks}}
		err := message.Validate(m, methods.Default())
		if (err == nil) != tc.ok {
			t.Errorf("deliveryId %q chunk %d/%d: %v", tc.id, tc.chunk, tc.chunks, err)
		}
		if err != nil && !errors.Is(err, message.ErrFieldValue) {
			t.Errorf("deliveryId %q: %v is no field error", tc.id, err)
		}
	}
}

// Only error reports write to the error log's folder; no message may name
// it (an ordinary REQToFile overwrote errorLog/<node>/errors.log).
func TestErrorLogFolderIsReserved(t *testing.T) {
	for _, dir := range []string{"errorLog", "/errorLog/", "errorLog/ship1", "./errorLog/x/.."} {
		if _, err := message.CleanDirectory(dir); !errors.Is(err, message.ErrBadPath) {
			t.Errorf("CleanDirectory(%q) = %v, want ErrBadPath", dir, err)
		}
	}
	if rel, err := message.CleanDirectory("logs/errorLog"); err != nil || rel != "logs/errorLog" {
		t.Errorf("a folder of that name deeper down: %q %v", rel, err)
	}
}

// Input that is not UTF-8 is refused, not silently changed; in a batch,
// only the item that holds it.
func TestInvalidUTF8IsRefused(t *testing.T) {
	bad := []byte("{\"toNode\":\"ship1\",\"method\":\"REQCliCommand\",\"methodArgs\":[\"rm\",\"/tmp/\xff\"]}")
	if _, err := message.DecodeWire(bad); !errors.Is(err, message.ErrMalformed) {
		t.Errorf("DecodeWire: %v", err)
	}
	batch := append(append([]byte(`[{"toNode":"ship1","method":"REQPing"},`), bad...), ']')
	msgs, _, itemErrs, err := message.Decode(batch)
	if err != nil || len(msgs) != 1 || len(itemErrs) != 1 || itemErrs[0].Index != 1 || !errors.Is(itemErrs[0].Err, message.ErrMalformed) {
		t.Errorf("Decode: %d messages, item errors %v, %v", len(msgs), itemErrs, err)
	}
}

func TestReplyPartsAreInRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    message.ReplyInfo
		ok   bool
	}{
		{"a part", message.ReplyInfo{Seq: 1, Lines: 3}, true},
		{"a final", message.ReplyInfo{Seq: 4, Streamed: true}, true},
		{"a final of no lines", message.ReplyInfo{Seq: 1, Streamed: true}, true},
		{"a part from line 0", message.ReplyInfo{Seq: 0, Lines: 3}, false},
		{"negative lines", message.ReplyInfo{Seq: 1, Lines: -1}, false},
		{"a part that is also final", message.ReplyInfo{Seq: 1, Lines: 2, Streamed: true}, false},
		{"a chunked part", message.ReplyInfo{Seq: 1, Lines: 2, Chunks: 2}, false},
	} {
		r := tc.r
		r.DeliveryID, r.Method, r.Status = "abc123.ship1", "REQCliCommandCont", "running"
		if r.Chunks == 0 {
			r.Chunks = 1
		}
		m := &message.Message{ID: "abc123", ToNode: "central", FromNode: "ship1", Method: "REQToFileAppend", Reply: &r}
		if err := message.Validate(m, methods.Default()); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// fieldCase is a bad message and the field its error is about.
type fieldCase struct {
	name, input string
	field       string
	code        message.Code
}

// fieldCases has one bad message per field family; ping is a valid
// message the cases add to.
func fieldCases() []fieldCase {
	ping := `"toNode":"ship1","method":"REQPing"`
	many := func(n int, item string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
	}
	nodes := make([]string, message.MaxTargets+1)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("%q", fmt.Sprintf("n%d", i))
	}
	return []fieldCase{
		{"no target", `{"method":"REQPing"}`, "toNode", message.CodeNoTarget},
		{"bad toNode", `{"toNode":"ship 1","method":"REQPing"}`, "toNode", message.CodeBadNodeName},
		{"bad name in toNodes", `{"toNode":"ship1","toNodes":["ship2","ship.3"],"method":"REQPing"}`, "toNodes", message.CodeBadNodeName},
		{"long name in toNodes", `{"toNodes":["ship1","` + strings.Repeat("s", message.MaxNodeNameLen+1) + `"],"method":"REQPing"}`, "toNodes", message.CodeBadNodeName},
		{"too many toNodes", `{"toNodes":[` + strings.Join(nodes, ",") + `],"method":"REQPing"}`, "toNodes", message.CodeFieldValue},
		{"toNodes not an array", `{"toNodes":"ship1","method":"REQPing"}`, "toNodes", message.CodeFieldType},
		{"toNode not a string", `{"toNode":1,"method":"REQPing"}`, "toNode", message.CodeFieldType},
		{"no method", `{"toNode":"ship1"}`, "method", message.CodeNoMethod},
		{"unknown method", `{"toNode":"ship1","method":"REQNope"}`, "method", message.CodeUnknownMethod},
		{"internal method", `{"toNode":"central","method":"REQDeliveryDeadline"}`, "method", message.CodeUnknownMethod},
		{"method not a string", `{"toNode":"ship1","method":5}`, "method", message.CodeFieldType},
		{"unknown replyMethod", `{` + ping + `,"replyMethod":"REQNope"}`, "replyMethod", message.CodeUnknownMethod},
		{"replyMethod that cannot reply", `{` + ping + `,"replyMethod":"REQCliCommand"}`, "replyMethod", message.CodeFieldValue},
		{"too many methodArgs", `{` + ping + `,"methodArgs":` + many(message.MaxArgs+1, `"a"`) + `}`, "methodArgs", message.CodeFieldValue},
		{"methodArgs not an array", `{` + ping + `,"methodArgs":"uptime"}`, "methodArgs", message.CodeFieldType},
		{"a number in methodArgs", `{` + ping + `,"methodArgs":["sh",1]}`, "methodArgs", message.CodeFieldType},
		{"too many replyMethodArgs", `{` + ping + `,"replyMethodArgs":` + many(message.MaxArgs+1, `"a"`) + `}`, "replyMethodArgs", message.CodeFieldValue},
		{"directory leaves", `{` + ping + `,"directory":"../../etc"}`, "directory", message.CodeBadPath},
		{"directory in .steward", `{` + ping + `,"directory":"/.steward/x"}`, "directory", message.CodeBadPath},
		{"fileName with a slash", `{` + ping + `,"fileName":"a/b"}`, "fileName", message.CodeBadPath},
		{"fileName ..", `{` + ping + `,"fileName":".."}`, "fileName", message.CodeBadPath},
		{"negative ACKTimeout", `{` + ping + `,"ACKTimeout":-1}`, "ACKTimeout", message.CodeFieldValue},
		{"negative methodTimeout", `{` + ping + `,"methodTimeout":-3}`, "methodTimeout", message.CodeFieldValue},
		{"replyACKTimeout too long", `{` + ping + `,"replyACKTimeout":99999999}`, "replyACKTimeout", message.CodeFieldValue},
		{"negative replyMethodTimeout", `{` + ping + `,"replyMethodTimeout":-1}`, "replyMethodTimeout", message.CodeFieldValue},
		{"methodTimeout a string", `{` + ping + `,"methodTimeout":"10"}`, "methodTimeout", message.CodeFieldType},
		{"deliveryDeadline 0", `{` + ping + `,"deliveryDeadline":0}`, "deliveryDeadline", message.CodeFieldValue},
		{"deliveryDeadline too far", `{` + ping + `,"deliveryDeadline":99999999}`, "deliveryDeadline", message.CodeFieldValue},
		{"deliveryDeadline no time", `{` + ping + `,"deliveryDeadline":"tomorrow"}`, "deliveryDeadline", message.CodeFieldValue},
		{"deliveryDeadline true", `{` + ping + `,"deliveryDeadline":true}`, "deliveryDeadline", message.CodeFieldType},
		{"negative retries", `{` + ping + `,"retries":-1}`, "retries", message.CodeFieldValue},
		{"replyRetries too many", `{` + ping + `,"replyRetries":1001}`, "replyRetries", message.CodeFieldValue},
		{"retries a string", `{` + ping + `,"retries":"3"}`, "retries", message.CodeFieldType},
		{"repeat too many", `{` + ping + `,"repeat":1001,"repeatInterval":1}`, "repeat", message.CodeFieldValue},
		{"repeat too long", `{` + ping + `,"repeat":1000,"repeatInterval":86400}`, "repeat", message.CodeFieldValue},
		{"negative repeatInterval", `{` + ping + `,"repeatInterval":-1}`, "repeatInterval", message.CodeFieldValue},
		{"repeat without interval", `{` + ping + `,"repeat":3}`, "repeatInterval", message.CodeFieldValue},
		{"bad id", `{` + ping + `,"id":"job.42"}`, "id", message.CodeFieldValue},
		{"id too long to number runs", `{` + ping + `,"id":"` + strings.Repeat("a", 63) + `","repeat":10,"repeatInterval":1}`, "id", message.CodeFieldValue},
		{"fromNode", `{` + ping + `,"fromNode":"mine"}`, "fromNode", message.CodeReserved},
		{"sentAt", `{` + ping + `,"sentAt":"2025-01-01T00:00:00Z"}`, "sentAt", message.CodeReserved},
		{"deadline", `{` + ping + `,"deadline":"2025-01-01T00:00:00Z"}`, "deadline", message.CodeReserved},
		{"deadlineSeq", `{` + ping + `,"deadlineSeq":7}`, "deadlineSeq", message.CodeReserved},
		{"runAt", `{` + ping + `,"runAt":"2025-01-01T00:00:00Z"}`, "runAt", message.CodeReserved},
		{"event", `{` + ping + `,"event":true}`, "event", message.CodeReserved},
		{"reply", `{` + ping + `,"reply":{"deliveryId":"a.b"}}`, "reply", message.CodeReserved},
		{"signer", `{` + ping + `,"signer":"UABC"}`, "signer", message.CodeReserved},
		{"signature", `{` + ping + `,"signature":"AAAA"}`, "signature", message.CodeReserved},
		{"unknown field", `{` + ping + `,"methodArg":["uptime"]}`, "methodArg", message.CodeUnknownField},
		{"unknown field in operation", `{` + ping + `,"operation":{"opCmd":"ps","opCmnd":"ps"}}`, "operation.opCmnd", message.CodeUnknownField},
		{"opCmd not a string", `{` + ping + `,"operation":{"opCmd":5}}`, "operation.opCmd", message.CodeFieldType},
		{"data a number", `{` + ping + `,"data":5}`, "data", message.CodeFieldType},
		{"data bad base64", `{` + ping + `,"data":{"base64":"!"}}`, "data", message.CodeFieldType},
		// Errors about no one field.
		{"not JSON", `{"toNode":"ship1",`, "", message.CodeMalformed},
		{"not an object", `[42]`, "", message.CodeMalformed},
	}
}

// TestFieldOf: every decode and validation error about one field of a
// message names it, through the path the sender takes (Decode, then
// ValidateInput), with its code and text as without the field.
func TestFieldOf(t *testing.T) {
	for _, tc := range fieldCases() {
		t.Run(tc.name, func(t *testing.T) {
			input := tc.input
			if !strings.HasPrefix(input, "[") {
				input = "[" + input + "]"
			}
			msgs, _, itemErrs, err := message.Decode([]byte(input))
			if err == nil && len(itemErrs) == 1 {
				err = itemErrs[0]
			} else if err == nil && len(msgs) == 1 {
				err = message.ValidateInput(msgs[0], methods.Default())
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := message.FieldOf(err); got != tc.field {
				t.Errorf("FieldOf(%q) = %q, want %q", err, got, tc.field)
			}
			if got := message.CodeOf(err); got != tc.code {
				t.Errorf("CodeOf(%q) = %q, want %q", err, got, tc.code)
			}
			var fe *message.FieldError
			if errors.As(err, &fe) && fe.Error() != fe.Err.Error() {
				t.Errorf("FieldError text %q, want its error's %q", fe.Error(), fe.Err.Error())
			}
		})
	}
}

// TestFieldErrorKeepsText: the field changes neither the text nor the
// sentinel of the error it carries.
func TestFieldErrorKeepsText(t *testing.T) {
	inner := fmt.Errorf("field %q: %d seconds is negative: %w", "methodTimeout", -3, message.ErrFieldValue)
	err := fmt.Errorf("message 2: %w", &message.FieldError{Field: "methodTimeout", Err: inner})
	if err.Error() != "message 2: "+inner.Error() {
		t.Errorf("text %q", err)
	}
	if !errors.Is(err, message.ErrFieldValue) || message.CodeOf(err) != message.CodeFieldValue {
		t.Errorf("sentinel lost: %v", err)
	}
	if got := message.FieldOf(err); got != "methodTimeout" {
		t.Errorf("FieldOf = %q", got)
	}
	if got := message.FieldOf(inner); got != "" {
		t.Errorf("FieldOf of an error without a field = %q", got)
	}
	if got := message.FieldOf(nil); got != "" {
		t.Errorf("FieldOf(nil) = %q", got)
	}
}
