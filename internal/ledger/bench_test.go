package ledger_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/ledger"
)

// BenchmarkCompleteFinish is the ledger's part of every delivery: the
// completed record written before anything leaves the node, then the
// buffered finished record.
func BenchmarkCompleteFinish(b *testing.B) {
	l, err := ledger.Open(filepath.Join(b.TempDir(), "ledger.jsonl"), ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	exp := time.Now().Add(time.Hour)
	out := &ledger.Outcome{Status: "succeeded", Output: []byte("pong from ship1 at 2026-11-27T08:00:00Z")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := "m" + strconv.Itoa(i) + ".ship1"
		i++
		if err := l.Complete(id, 1, exp, out); err != nil {
			b.Fatal(err)
		}
		if err := l.Finish(id); err != nil {
			b.Fatal(err)
		}
	}
}
