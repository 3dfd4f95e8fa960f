package bench

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints one line per step and a running count on stderr. On a
// terminal the count rewrites its line; elsewhere it prints at most one
// line a second.
type progress struct {
	w     io.Writer
	total int
	n     int
	name  string
	began time.Time
	mu    sync.Mutex
	last  time.Time
}

func newProgress(w io.Writer, total int) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, total: total}
}

func (p *progress) step(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endStep()
	p.n++
	p.name, p.began = name, time.Now()
	fmt.Fprintf(p.w, "[%d/%d] %s …\n", p.n, p.total, name)
}

// endStep closes the previous step; the caller holds mu.
func (p *progress) endStep() {
	if p.name != "" {
		fmt.Fprintf(p.w, "      done in %s\n", time.Since(p.began).Round(time.Millisecond))
	}
}

// count returns a callback that reports done out of total.
func (p *progress) count(total int) func(int) {
	return func(done int) {
		p.note(fmt.Sprintf("%d/%d", done, total))
	}
}

func (p *progress) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < time.Second {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "      %s\n", s)
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endStep()
	p.name = ""
}
