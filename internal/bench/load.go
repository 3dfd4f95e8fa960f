package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// tracker matches completions to the sends that caused them. A completion
// can arrive before the send call that caused it has returned (the reply
// outran the publish acknowledgement), so early completions are kept until
// their send is registered.
type tracker struct {
	mu      sync.Mutex
	waiting map[string]chan time.Time
	early   map[string]time.Time
}

func newTracker() *tracker {
	return &tracker{waiting: map[string]chan time.Time{}, early: map[string]time.Time{}}
}

// await returns a channel that receives the time key completed.
func (t *tracker) await(key string) <-chan time.Time {
	c := make(chan time.Time, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.early[key]; ok {
		delete(t.early, key)
		c <- at
		return c
	}
	t.waiting[key] = c
	return c
}

// complete registers that key completed now.
func (t *tracker) complete(key string) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.waiting[key]
	if !ok {
		t.early[key] = now
		return
	}
	delete(t.waiting, key)
	c <- now
}

// loadResult is the outcome of one load run.
type loadResult struct {
	Messages int
	Elapsed  time.Duration
	Lat      []time.Duration // sorted
}

func (r loadResult) rate() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(r.Lat)-1))
	return r.Lat[i]
}

// completionWait bounds the wait for one completion: a message lost (or
// one that timed out) fails the run instead of hanging it.
const completionWait = 2 * time.Minute

// drive runs window loops in parallel, each sending one message and waiting
// for its completion before sending the next, until total messages have
// completed: window messages are in flight at any time. send sends message
// i and returns its completion key; completions arrive through the
// tracker's complete. progress is called now and then with the count done.
func drive(ctx context.Context, total, window int, t *tracker, send func(ctx context.Context, i int) (string, error), progress func(done int)) (loadResult, error) {
	return driveUntil(ctx, total, time.Time{}, window, t, send, progress)
}

// driveUntil is drive that also stops sending at until (unless it is
// zero): it returns the messages sent before, all completed.
func driveUntil(ctx context.Context, total int, until time.Time, window int, t *tracker, send func(ctx context.Context, i int) (string, error), progress func(done int)) (loadResult, error) {
	var next, done atomic.Int64
	lat := make([]time.Duration, total)
	errc := make(chan error, window)
	begin := time.Now()
	var wg sync.WaitGroup
	for range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if !until.IsZero() && time.Now().After(until) {
					return
				}
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				at := time.Now()
				key, err := send(ctx, i)
				if err != nil {
					errc <- fmt.Errorf("send %d: %w", i, err)
					return
				}
				bound := time.NewTimer(completionWait)
				select {
				case end := <-t.await(key):
					bound.Stop()
					lat[i] = end.Sub(at)
					done.Add(1)
				case <-bound.C:
					errc <- fmt.Errorf("%s (%d) not completed within %s", key, i, completionWait)
					return
				case <-ctx.Done():
					bound.Stop()
					errc <- fmt.Errorf("%d of %d completed: %w", done.Load(), total, ctx.Err())
					return
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			select {
			case err := <-errc:
				return loadResult{}, err
			default:
			}
			sent := int(min(next.Load(), int64(total)))
			progress(sent)
			lat = lat[:sent]
			slices.Sort(lat)
			return loadResult{Messages: sent, Elapsed: time.Since(begin), Lat: lat}, nil
		case <-tick.C:
			progress(int(done.Load()))
		}
	}
}
