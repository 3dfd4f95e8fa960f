package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
)

// chunkStore keeps the chunks of replies split by publishReply until all
// have arrived, in <state>/chunks/<delivery>/<index>. Chunks may arrive in
// any order and concurrently; the one that completes the set runs the
// reply method on the whole output, once.
type chunkStore struct {
	dir string
	mu  sync.Mutex
}

// runChunk stores the chunk in req and, when it completes its set, runs the
// reply method on the assembled output (ran is then true).
func (n *Node) runChunk(ctx context.Context, d *delivery, spec methods.Spec, req *methods.Request) (res *methods.Result, ran bool, err error) {
	r := d.msg.Reply
	data, complete, err := n.chunks.add(r.DeliveryID, r.Chunk, r.Chunks, d.msg.Data)
	if err != nil {
		return nil, false, err
	}
	if !complete {
		return &methods.Result{Output: fmt.Appendf(nil, "chunk %d of %d stored", r.Chunk+1, r.Chunks)}, false, nil
	}
	whole := *req.Msg
	whole.Data = data
	wholeReq := *req
	wholeReq.Msg = &whole
	res, err = runSafely(ctx, spec, &wholeReq)
	if err == nil {
		n.chunks.remove(r.DeliveryID)
	}
	return res, true, err
}

// add stores one chunk and, if all chunks are present, returns them joined.
func (c *chunkStore) add(deliveryID string, index, total int, data []byte) ([]byte, bool, error) {
	if index < 0 || index >= total {
		return nil, false, fmt.Errorf("chunk %d of %d is out of range", index, total)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := filepath.Join(c.dir, deliveryID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("chunk folder: %w", err)
	}
	name := filepath.Join(dir, strconv.Itoa(index))
	if err := os.WriteFile(name+".tmp", data, 0o600); err != nil {
		return nil, false, fmt.Errorf("store chunk: %w", err)
	}
	if err := os.Rename(name+".tmp", name); err != nil {
		return nil, false, fmt.Errorf("store chunk: %w", err)
	}
	for i := range total {
		if _, err := os.Stat(filepath.Join(dir, strconv.Itoa(i))); errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
	}
	var all bytes.Buffer
	for i := range total {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			return nil, false, fmt.Errorf("read chunk: %w", err)
		}
		all.Write(b)
	}
	return all.Bytes(), true, nil
}

func (c *chunkStore) remove(deliveryID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	os.RemoveAll(filepath.Join(c.dir, deliveryID))
}

// sweep removes the chunk folders of replies that were never completed
// (their sender gave up, or the rest never came) once no chunk came for
// olderThan. It returns how many it removed.
func (c *chunkStore) sweep(olderThan time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return 0
	}
	removed := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.IsDir() || time.Since(info.ModTime()) < olderThan {
			continue
		}
		if os.RemoveAll(filepath.Join(c.dir, e.Name())) == nil {
			removed++
		}
	}
	return removed
}

// sweepChunks clears abandoned chunk folders at start and then daily. A
// reply cannot come after its deadline, which is at most
// message.MaxTimeout away.
func (n *Node) sweepChunks(ctx context.Context) error {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		if k := n.chunks.sweep(message.MaxTimeout); k > 0 {
			n.log.Info("removed chunk folders of replies that never completed", "count", k)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
