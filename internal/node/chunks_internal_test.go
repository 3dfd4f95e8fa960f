package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Chunk folders of replies that never completed are removed once no chunk
// came for long enough; others stay.
func TestSweepAbandonedChunks(t *testing.T) {
	c := &chunkStore{dir: t.TempDir()}
	if _, _, err := c.add("old1.ship1", 0, 2, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.add("new1.ship1", 0, 2, []byte("b")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-31 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(c.dir, "old1.ship1"), old, old); err != nil {
		t.Fatal(err)
	}
	if n := c.sweep(30 * 24 * time.Hour); n != 1 {
		t.Errorf("swept %d folders, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "old1.ship1")); !os.IsNotExist(err) {
		t.Errorf("the abandoned folder is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "new1.ship1")); err != nil {
		t.Errorf("the recent folder went: %v", err)
	}
}
