package message_test

import (
	"errors"
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
