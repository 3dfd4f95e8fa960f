package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/stream"
)

// scaleNodes is the fleet of the measurement; scaleHellos is their hellos
// per second (10,000 nodes saying hello every 30 s).
const (
	scaleNodes  = 10_000
	scaleHellos = 333
)

// TestFleetViewAt10000Nodes measures the fleet view at fleet scale: central
// with the console and 10,000 node records written straight into the
// registry bucket, re-written at 333 a second (as 10,000 nodes saying hello
// every 30 s would), while Chromium loads the view. It logs how long the
// view took to show all of them, what each render costs while the hellos
// stream in, how late the page's event loop ran, and how long a filter
// keystroke and a sort take to reach the screen. It has no time
// thresholds: it fails only when the view does not show the fleet within
// 60 s, or shows more rows than it should.
func TestFleetViewAt10000Nodes(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The embedded broker has no authorization: a plain client connection
	// may write the registry, as central does from hellos.
	nc, err := nats.Connect(f.BrokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, stream.NodesBucket)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(kv)

	began := time.Now()
	putAll(t, ctx, reg, scaleNodes)
	t.Logf("wrote %d node records in %s", scaleNodes, time.Since(began).Round(time.Millisecond))
	var size int
	fleettest.Eventually(t, 60*time.Second, "the console to know every node", func() bool {
		n, bytes := fleetSize(t, f)
		size = bytes
		return n == scaleNodes+1 // and central
	})
	t.Logf("the console knows all %d nodes %s after the first write; GET /api/fleet is %d KiB", scaleNodes+1, time.Since(began).Round(time.Millisecond), size>>10)

	// Hellos: every node's record again every 30 s, 333 a second, spread
	// evenly, until the test ends.
	var hellos atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sayHellos(ctx, reg, &hellos)
	}()
	defer wg.Wait()
	defer cancel()

	b := newBrowser(t, f.url(""))
	began = time.Now()
	b.do(60*time.Second, "open the fleet view", chromedp.Navigate(b.base+"/"))
	all := fmt.Sprintf("%d of %d nodes", scaleNodes+1, scaleNodes+1)
	b.wait("every node counted", `((document.getElementById('fleet-count') || {}).textContent || '').startsWith(`+jsString(all)+`)`, 60*time.Second)
	wall := time.Since(began)

	load := eval[struct {
		DOMContentLoaded float64 `json:"domContentLoaded"`
		APIStart         float64 `json:"apiStart"`
		APIDuration      float64 `json:"apiDuration"`
		APIBytes         float64 `json:"apiBytes"`
		Parsed           float64 `json:"parsed"`
		Fetched          float64 `json:"fetched"`
		Rendered         float64 `json:"rendered"`
		Rows             int     `json:"rows"`
		Heap             float64 `json:"heap"`
	}](b, `(() => {
		const mark = (n) => (performance.getEntriesByName(n)[0] || {}).startTime || -1;
		const api = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/api/fleet')) || {};
		const nav = performance.getEntriesByType('navigation')[0] || {};
		return {
			domContentLoaded: nav.domContentLoadedEventEnd || -1,
			apiStart: api.startTime || -1, apiDuration: api.duration || -1, apiBytes: api.encodedBodySize || -1,
			parsed: mark('fleet-parsed'), fetched: mark('fleet-fetched'), rendered: mark('fleet-rendered'),
			rows: document.querySelectorAll('#fleet tbody tr').length,
			heap: (performance.memory || {}).usedJSHeapSize || -1,
		};
	})()`)
	t.Logf("load: all %d nodes shown %s after navigating (Go's clock); in the page: DOMContentLoaded %.0f ms, GET /api/fleet from %.0f ms for %.0f ms (%.0f KiB), parsed %.0f ms, model built %.0f ms, first render done %.0f ms; %d rows drawn; JS heap %.1f MiB",
		scaleNodes+1, wall.Round(time.Millisecond), load.DOMContentLoaded, load.APIStart, load.APIDuration, load.APIBytes/1024, load.Parsed, load.Fetched, load.Rendered, load.Rows, load.Heap/(1<<20))
	if load.Rows != 300 {
		t.Errorf("the view draws %d rows of %d nodes, want 300 (and a show-more button)", load.Rows, scaleNodes+1)
	}

	// Live: measure the event loop's lateness and each render while the
	// page applies 3,000 node changes (about nine seconds of hellos).
	eval[bool](b, `(() => {
		const lag = window.stewardTestLag = { worst: 0, ticks: 0, over50: 0 };
		let last = performance.now();
		setInterval(() => {
			const now = performance.now(), late = now - last - 20;
			last = now;
			lag.ticks++;
			if (late > lag.worst) lag.worst = late;
			if (late > 50) lag.over50++;
		}, 20);
		window.stewardTestFrom = { applied: window.stewardConsole.applied, renders: window.stewardConsole.renderTimes.length };
		window.stewardConsole.renderTimes.length = 0;
		return true;
	})()`)
	helloStart := hellos.Load()
	liveStart := time.Now()
	b.wait("3,000 node changes applied", `window.stewardConsole.applied - window.stewardTestFrom.applied >= 3000`, 60*time.Second)
	live := eval[struct {
		Applied int       `json:"applied"`
		Renders []float64 `json:"renders"`
		Worst   float64   `json:"worst"`
		Ticks   int       `json:"ticks"`
		Over50  int       `json:"over50"`
		Online  string    `json:"online"`
	}](b, `({
		applied: window.stewardConsole.applied - window.stewardTestFrom.applied,
		renders: window.stewardConsole.renderTimes.slice(),
		worst: window.stewardTestLag.worst, ticks: window.stewardTestLag.ticks, over50: window.stewardTestLag.over50,
		online: document.getElementById('fleet-summary').textContent,
	})`)
	elapsed := time.Since(liveStart)
	t.Logf("live: %d hellos written and %d node changes applied in %s; %d renders: median %.1f ms, 95th %.1f ms, worst %.1f ms; event loop (20 ms timer, %d ticks): worst %.0f ms late, %d ticks over 50 ms late; %s",
		hellos.Load()-helloStart, live.Applied, elapsed.Round(time.Millisecond), len(live.Renders),
		percentile(live.Renders, 50), percentile(live.Renders, 95), percentile(live.Renders, 100), live.Ticks, live.Worst, live.Over50, live.Online)

	// A keystroke in the filter, and a click on a column, to the frame that
	// shows the result (two animation frames after the input: the render
	// runs in the first).
	type step struct {
		What   string  `json:"what"`
		Ms     float64 `json:"ms"`
		Render float64 `json:"render"`
		Count  string  `json:"count"`
	}
	steps := eval[[]step](b, `(async () => {
		const input = document.getElementById('fleet-filter');
		const count = document.getElementById('fleet-count');
		const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
		const out = [];
		const time = async (what, act) => {
			await frames();
			const t0 = performance.now();
			act();
			await frames();
			const r = window.stewardConsole.renderTimes;
			out.push({ what, ms: performance.now() - t0, render: r[r.length - 1], count: count.textContent });
		};
		const type = (value) => () => { input.value = value; input.dispatchEvent(new Event('input', { bubbles: true })); };
		for (const value of ['n', 'no', 'node-0', 'node-01', 'node-012', 'node-0123', 'role=db', 'role=db site=north', '']) {
			await time('filter "' + value + '"', type(value));
		}
		const sort = (key) => () => document.querySelector('#fleet th[data-sort="' + key + '"] button').click();
		await time('sort by last seen', sort('lastSeen'));
		await time('sort by state', sort('state'));
		await time('sort by name', sort('name'));
		await time('show 300 more', () => document.getElementById('fleet-more').click());
		return out;
	})()`)
	for _, s := range steps {
		t.Logf("%-24s %6.1f ms to the screen (render %5.1f ms): %s", s.What, s.Ms, s.Render, s.Count)
	}
	if last := steps[len(steps)-1]; last.Count != all+" · showing 600" {
		t.Errorf("after show more: %q", last.Count)
	}
	if rows := eval[int](b, `document.querySelectorAll('#fleet tbody tr').length`); rows != 600 {
		t.Errorf("after show more: %d rows", rows)
	}
	b.screenshot("fleet-10000")
}

// scaleNode is the registry record of node i of the measurement's fleet;
// every 50th said goodbye.
func scaleNode(i int, now time.Time) *registry.Node {
	roles := []string{"web", "db", "cache", "edge"}
	sites := []string{"north", "south", "east", "west", "harbour"}
	n := &registry.Node{
		Name:          fmt.Sprintf("node-%05d", i),
		Version:       fmt.Sprintf("v1.%d.%d", i%3, i%7),
		Methods:       []string{"REQCliCommand", "REQCliCommandCont", "REQHello", "REQHttpGet", "REQOpProcessList", "REQOpProcessStart", "REQOpProcessStop", "REQPing", "REQPong", "REQTailFile", "REQToConsole", "REQToFile", "REQToFileAppend"},
		StartedAt:     now.Add(-time.Duration(i) * time.Minute),
		HelloInterval: 30 * time.Second,
		Instance:      fmt.Sprintf("instance%05d", i),
		QueueOK:       true,
		Labels:        map[string]string{"role": roles[i%len(roles)], "site": sites[i%len(sites)]},
	}
	if i%50 == 0 {
		n.StoppedAt = now
	}
	return n
}

// putAll writes nodes 1..n, 32 at a time.
func putAll(t *testing.T, ctx context.Context, reg *registry.Registry, n int) {
	t.Helper()
	work := make(chan int)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	now := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := reg.Put(ctx, scaleNode(i, now)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// sayHellos re-writes the running nodes' records at scaleHellos a second
// (ten every 30 ms), node after node, until ctx ends.
func sayHellos(ctx context.Context, reg *registry.Registry, count *atomic.Int64) {
	tick := time.NewTicker(30 * time.Millisecond)
	defer tick.Stop()
	i := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		for range scaleHellos * 30 / 1000 {
			i = i%scaleNodes + 1
			if i%50 == 0 {
				continue // stopped
			}
			if reg.Put(ctx, scaleNode(i, now)) == nil {
				count.Add(1)
			}
		}
	}
}

// fleetSize reads /api/fleet as the page does: how many nodes, how many
// bytes.
func fleetSize(t *testing.T, f *fleet) (nodes, size int) {
	resp, err := http.Get(f.url("/api/fleet"))
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, 0
	}
	var v struct {
		Nodes []json.RawMessage `json:"nodes"`
	}
	if json.Unmarshal(body, &v) != nil {
		t.Fatalf("/api/fleet: %.200s", body)
	}
	return len(v.Nodes), len(body)
}

// percentile is the p-th percentile of xs (nearest rank), 0 when empty.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
