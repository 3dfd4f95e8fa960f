package consumer

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// goroutineID is the running goroutine's number, from its stack header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

// Messages one after another run on one goroutine; messages at once each
// get their own; stop ends the waiting goroutines.
func TestHandlersReuseGoroutines(t *testing.T) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{}, 100)
	release := make(chan struct{})
	block := false
	h := newHandlers(func(jetstream.Msg) {
		mu.Lock()
		seen[goroutineID()]++
		b := block
		mu.Unlock()
		if b {
			<-release
		}
		done <- struct{}{}
	}, &wg)

	waitDone := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("a message was not handled")
			}
		}
	}
	h.dispatch(nil)
	waitDone(1)
	for range 19 {
		// The goroutine takes the next message once its handler returned.
		select {
		case h.work <- nil:
		case <-time.After(10 * time.Second):
			t.Fatal("no handler goroutine waits for the next message")
		}
		waitDone(1)
	}
	mu.Lock()
	if len(seen) != 1 {
		t.Errorf("20 messages one after another ran on %d goroutines, want 1", len(seen))
	}
	clear(seen)
	block = true
	mu.Unlock()

	for range 5 {
		h.dispatch(nil)
	}
	close(release)
	waitDone(5)
	mu.Lock()
	if n := len(seen); n < 5 {
		t.Errorf("5 messages at once ran on %d goroutines, want 5", n)
	}
	mu.Unlock()

	h.stop()
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("handler goroutines still waiting after stop")
	}
}
