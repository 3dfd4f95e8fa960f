package console

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium with one tab.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // the console's URL, without a trailing /

	mu       sync.Mutex
	problems []string // exceptions and security-policy violations of the pages
}

// newBrowser starts Chromium (headless, no sandbox: the tests run as root
// in containers) with a laptop-sized window; it stops when t ends, which
// fails t if a page threw an exception or broke the security policy.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, base: base}
	t.Cleanup(func() {
		b.mu.Lock()
		for _, p := range b.problems {
			t.Errorf("page: %s", p)
		}
		b.mu.Unlock()
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser, which lives as long as the
	// context it is given: ctx, not one with a deadline.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	go b.watchConsole()
	return b
}

// watchConsole keeps the pages' exceptions and security-policy violations
// (until the browser stops).
func (b *browser) watchConsole() {
	for m, err := range chromedp.Console(b.ctx) {
		if err != nil {
			return
		}
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			b.mu.Lock()
			b.problems = append(b.problems, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line+1))
			b.mu.Unlock()
		}
	}
}

// do runs actions, failing t when they do not finish within timeout.
func (b *browser) do(timeout time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// open loads a page of the console and waits until its script has drawn
// it (the "Loading…" placeholder is gone).
func (b *browser) open(path string) {
	b.t.Helper()
	b.do(30*time.Second, "open "+path, chromedp.Navigate(b.base+path))
	b.wait(path+" drawn", `!document.querySelector('#main [data-loading]')`, 20*time.Second)
}

// click clicks the element sel finds, as a mouse does.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do(20*time.Second, "click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// typeInto types text into the element sel finds, key by key.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.do(20*time.Second, "type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

// eval evaluates a JavaScript expression and decodes its value into T;
// promises are awaited.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

// wait polls a JavaScript expression until it is true (a page may be
// loading in between: errors count as false). The pages' own timers are
// not touched: the deadline is the only time the test sets.
func (b *browser) wait(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				b.t.Logf("last evaluation error: %v", last)
			}
			b.fail(what, fmt.Errorf("not true after %s: %s", timeout, expr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is the text content of the first element sel finds ("" if none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ''`, jsString(sel)))
}

// fail stops the test with what went wrong, a screenshot and the page's text.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		name := filepath.Join(artifacts(b.t), "failed-"+fileName(b.t.Name())+".png")
		if os.WriteFile(name, png, 0o644) == nil {
			b.t.Logf("screenshot of the page: %s", name)
		}
	}
	if s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + '\n' + (document.body ? document.body.innerText : '')`)); err == nil {
		if len(s) > 4000 {
			s = s[:4000] + "…"
		}
		b.t.Logf("the page:\n%s", s)
	}
	b.t.Fatalf("%s: %v", what, err)
}

// screenshot saves the whole page as <artifacts>/<name>.png and returns
// the file's path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifacts(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

var artifactsDirs sync.Map // test name → its folder when STEWARD_ARTIFACTS is not set

// artifacts is where screenshots go: $STEWARD_ARTIFACTS, or a temporary
// folder of the test.
func artifacts(t *testing.T) string {
	if dir := os.Getenv("STEWARD_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if dir, ok := artifactsDirs.Load(t.Name()); ok {
		return dir.(string)
	}
	dir := t.TempDir()
	artifactsDirs.Store(t.Name(), dir)
	return dir
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func fileName(s string) string { return unsafeName.ReplaceAllString(s, "-") }

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// stateOf is a JavaScript expression: the first word of node's state cell
// in the fleet view ("online" or "offline"; "" while it has no row).
func stateOf(node string) string {
	return fmt.Sprintf(`((document.querySelector('#fleet tr[data-node=' + CSS.escape(%s) + '] .state') || {}).textContent || '').split(' ')[0]`, jsString(node))
}

// clear empties the input or textarea sel finds.
func (b *browser) clear(sel string) {
	b.t.Helper()
	eval[bool](b, `(document.querySelector(`+jsString(sel)+`).value = '') === ''`)
}
