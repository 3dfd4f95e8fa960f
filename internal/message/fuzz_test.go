package message_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
)

// seedExamples adds the reference message files (testdata/examples) and a
// few hostile inputs to a fuzz corpus.
func seedExamples(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "examples", "*.json"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","hi"]}`,
		`[{"toNodes":["a","b"],"method":"REQPing"},{"toNode":"c","method":"REQToFile","directory":"../../x","fileName":"..","data":"aGk="}]`,
		`{"id":"x1","toNode":"central","fromNode":"ship1","method":"REQToFileAppend","reply":{"deliveryId":"..","chunk":0,"chunks":2}}`,
		"{\"toNode\":\"ship1\",\"method\":\"REQCliCommand\",\"methodArgs\":[\"\xff\"]}",
		`{"toNode":"ship1","method":"REQCliCommand","deliveryDeadline":"1h","methodTimeout":-5,"retries":99999}`,
		`[]`, `{}`, `[`, `null`,
	} {
		f.Add([]byte(s))
	}
}

// Operator input: never a panic; whatever is accepted validates, and
// encodes and decodes again to a message that validates.
func FuzzDecode(f *testing.F) {
	seedExamples(f)
	cat := methods.Default()
	f.Fuzz(func(t *testing.T, input []byte) {
		msgs, _, _, err := message.Decode(input)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if message.ValidateInput(m, cat) != nil {
				continue
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("an accepted message does not encode: %v", err)
			}
			again, err := message.DecodeOne(b)
			if err != nil {
				t.Fatalf("an accepted message does not decode again: %v\n%s", err, b)
			}
			if err := message.ValidateInput(again, cat); err != nil {
				t.Fatalf("an accepted message is refused after a round trip: %v\n%s", err, b)
			}
		}
	})
}

// Wire input (what a node takes from its queue): never a panic, and a
// reply that passes names a delivery that stays inside a folder.
func FuzzDecodeWire(f *testing.F) {
	seedExamples(f)
	cat := methods.Default()
	f.Fuzz(func(t *testing.T, input []byte) {
		m, err := message.DecodeWire(input)
		if err != nil {
			return
		}
		if message.Validate(m, cat) != nil || m.Reply == nil {
			return
		}
		id := m.Reply.DeliveryID
		if strings.ContainsAny(id, "/\\\x00") || strings.HasPrefix(id, ".") || strings.Contains(id, "..") {
			t.Fatalf("a reply's deliveryId %q passed", id)
		}
	})
}

// Directories from messages: never a panic, and an accepted one is a clean
// relative path that stays in the data folder and out of steward's own
// folders.
func FuzzCleanDirectory(f *testing.F) {
	for _, s := range []string{"", "/", "a/b", "../x", "a/../../b", "/abs/path/", `..\..\x`, ".steward/ledger", "errorLog/x", "a\x00b", "./.steward", "x/./../.steward"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dir string) {
		rel, err := message.CleanDirectory(dir)
		if err != nil || rel == "" {
			return
		}
		first, _, _ := strings.Cut(rel, "/")
		switch {
		case strings.HasPrefix(rel, "/"), rel == "..", strings.HasPrefix(rel, "../"), strings.Contains(rel, "/../"),
			first == message.ReservedDataPath, first == message.ErrorLogPath, strings.ContainsRune(rel, 0),
			filepath.Clean(rel) != rel:
			t.Fatalf("CleanDirectory(%q) = %q", dir, rel)
		}
	})
}
