package outbox_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/outbox"
)

func open(t *testing.T) *outbox.Outbox {
	t.Helper()
	o, err := outbox.Open(filepath.Join(t.TempDir(), "outbox"))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestPutListRemoveInOrder(t *testing.T) {
	o := open(t)
	for i := range 5 {
		if err := o.Put(&message.Message{ID: fmt.Sprintf("m%d", i), ToNode: "ship1", Method: "REQPing"}); err != nil {
			t.Fatal(err)
		}
	}
	entries, bad, err := o.List()
	if err != nil || len(bad) != 0 || len(entries) != 5 {
		t.Fatalf("List: %d entries, bad %v, %v", len(entries), bad, err)
	}
	for i, e := range entries {
		if e.Msg.ID != fmt.Sprintf("m%d", i) || e.Msg.ToNode != "ship1" {
			t.Errorf("entry %d: %+v", i, e.Msg)
		}
	}
	if err := o.Remove(entries[0].Name); err != nil {
		t.Fatal(err)
	}
	if err := o.Remove(entries[0].Name); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	if o.Len() != 4 {
		t.Errorf("Len %d after one remove, want 4", o.Len())
	}
}

// Another process's half-written file (a temporary one) is not a message
// yet; a file that is not a message is left for an operator, never lost.
func TestOnlyWholeMessagesAreListed(t *testing.T) {
	o := open(t)
	if err := o.Put(&message.Message{ID: "good", ToNode: "ship1", Method: "REQPing"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.Dir(), ".put-123"), []byte(`{"id":"half`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.Dir(), "1-junk.json"), []byte(`not json`), 0o600); err != nil {
		t.Fatal(err)
	}
	entries, bad, err := o.List()
	if err != nil || len(entries) != 1 || entries[0].Msg.ID != "good" || len(bad) != 1 {
		t.Fatalf("List: %+v bad %v err %v", entries, bad, err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir(), "1-junk.json")); err != nil {
		t.Errorf("a bad file was removed: %v", err)
	}
}

func TestPutNeedsAnID(t *testing.T) {
	if err := open(t).Put(&message.Message{ToNode: "ship1"}); !errors.Is(err, outbox.ErrNoID) {
		t.Errorf("got %v", err)
	}
}

// Two outboxes on one folder (a node and `steward send` beside it) put at
// once: every message is there, whole.
func TestConcurrentPuts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	a, _ := outbox.Open(dir)
	b, _ := outbox.Open(dir)
	var wg sync.WaitGroup
	for i := range 100 {
		o := a
		if i%2 == 1 {
			o = b
		}
		wg.Go(func() {
			if err := o.Put(&message.Message{ID: fmt.Sprintf("c%d", i), ToNode: "ship1", Method: "REQPing"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	entries, bad, err := a.List()
	if err != nil || len(bad) != 0 || len(entries) != 100 {
		t.Fatalf("%d entries, bad %v, %v", len(entries), bad, err)
	}
}

// Empty sees messages put in by another process (another Outbox on the
// same folder), also when it had found the folder empty and cached that.
func TestEmptySeesAnotherWriter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	mine, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if round > 0 {
			// An old folder: the empty result is kept by its mtime.
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(dir, old, old); err != nil {
				t.Fatal(err)
			}
		}
		if !mine.Empty() || !mine.Empty() {
			t.Fatalf("round %d: a new outbox is not empty", round)
		}
		m := &message.Message{ID: fmt.Sprintf("m%d", round), ToNode: "ship1", Method: "REQPing"}
		if err := other.Put(m); err != nil {
			t.Fatal(err)
		}
		if mine.Empty() {
			t.Fatalf("round %d: a message put in by another writer is not seen", round)
		}
		entries, _, err := mine.List()
		if err != nil || len(entries) != 1 {
			t.Fatalf("round %d: list %v %v", round, entries, err)
		}
		if err := mine.Remove(entries[0].Name); err != nil {
			t.Fatal(err)
		}
	}
}
