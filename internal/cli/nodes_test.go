package cli

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/registry"
)

// agedFleet has nodes last seen from seconds to months ago.
func agedFleet() *fakeFleet {
	seen := func(name string, ago time.Duration) *registry.Node {
		return &registry.Node{Name: name, LastSeen: testNow.Add(-ago), HelloInterval: 30 * time.Second}
	}
	return &fakeFleet{now: testNow, nodes: []*registry.Node{
		seen("central", time.Second),
		seen("ship1", 2*time.Hour),
		seen("ship9", 40*24*time.Hour),
		seen("shp1", 100*24*time.Hour),
	}}
}

func nodeNames(t testing.TB, out []byte) []string {
	t.Helper()
	var nodes []registry.Node
	if err := json.Unmarshal(out, &nodes); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	return names
}

// TestNodesExpiry: nodes not seen for longer than --node-expiry (30 days
// by default, $STEWARD_NODE_EXPIRY) are left out and counted on stderr.
func TestNodesExpiry(t *testing.T) {
	tests := []struct {
		name   string
		env    string
		args   []string
		want   []string
		hidden string
	}{
		{"default 30 days", "", nil, []string{"central", "ship1"}, "2 nodes not seen for more than 30 days are not shown"},
		{"flag", "", []string{"--node-expiry", "1h"}, []string{"central"}, "3 nodes not seen for more than 1h are not shown"},
		{"off", "", []string{"--node-expiry", "0"}, []string{"central", "ship1", "ship9", "shp1"}, ""},
		{"environment", "1440h", nil, []string{"central", "ship1", "ship9"}, "1 nodes not seen for more than 60 days"},
		{"flag over environment", "1h", []string{"--node-expiry", "0"}, []string{"central", "ship1", "ship9", "shp1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(envNodeExpiry, tt.env)
			e := newTestEnv(t)
			e.useFleet(agedFleet())
			if err := e.run(t, append([]string{"nodes", "-o", "json", "--config-folder", t.TempDir()}, tt.args...)...); err != nil {
				t.Fatal(err)
			}
			if got := nodeNames(t, e.stdout.Bytes()); !slices.Equal(got, tt.want) {
				t.Errorf("nodes %v, want %v", got, tt.want)
			}
			if tt.hidden == "" && e.stderr.Len() > 0 || !strings.Contains(e.stderr.String(), tt.hidden) {
				t.Errorf("stderr %q, want %q", e.stderr, tt.hidden)
			}
		})
	}
	clearEnv(t)
	t.Setenv(envNodeExpiry, "soon")
	e := newTestEnv(t)
	e.useFleet(agedFleet())
	wantCode(t, e.run(t, "nodes", "--config-folder", t.TempDir()), ExitUsage)
	t.Setenv(envNodeExpiry, "")
	wantCode(t, e.run(t, "nodes", "--node-expiry", "-1s", "--config-folder", t.TempDir()), ExitUsage)
}

func TestNodesRm(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		removed []string
		stdout  []string
		stderr  []string
	}{
		{"offline node", []string{"ship1"}, ExitOK, []string{"ship1"}, []string{"removed ship1 (last seen 2h ago)\n"}, nil},
		{"several", []string{"ship9", "shp1"}, ExitOK, []string{"ship9", "shp1"}, []string{"removed ship9", "removed shp1"}, nil},
		{"online refused", []string{"central", "ship1"}, ExitFailed, []string{"ship1"}, []string{"removed ship1"},
			[]string{"central: online (last seen 1s ago); --force removes it", "1 of 2 nodes not removed"}},
		{"online with --force", []string{"central", "--force"}, ExitOK, []string{"central"}, []string{"removed central"}, nil},
		{"unknown", []string{"nobody"}, ExitFailed, nil, nil, []string{"nobody: not in the node registry", "1 of 1 nodes not removed"}},
		{"expired", []string{"--expired"}, ExitOK, []string{"ship9", "shp1"}, []string{"removed ship9", "removed shp1"}, nil},
		{"expired after 90 days", []string{"--expired", "--node-expiry", "2160h"}, ExitOK, []string{"shp1"}, nil, nil},
		{"no names", nil, ExitUsage, nil, nil, nil},
		{"names and --expired", []string{"ship1", "--expired"}, ExitUsage, nil, nil, nil},
		{"--expired without expiry", []string{"--expired", "--node-expiry", "0"}, ExitUsage, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(envNodeExpiry, "")
			e := newTestEnv(t)
			f := agedFleet()
			e.useFleet(f)
			err := e.run(t, append([]string{"nodes", "rm", "--config-folder", t.TempDir()}, tt.args...)...)
			wantCode(t, err, tt.code)
			Report(e.stderr, err)
			if !slices.Equal(f.removed, tt.removed) {
				t.Errorf("removed %v, want %v", f.removed, tt.removed)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(e.stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, e.stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(e.stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, e.stderr)
				}
			}
		})
	}
}

// TestNodesRmKeepsANodeThatSaidHello: a record written since it was
// listed is kept.
func TestNodesRmKeepsANodeThatSaidHello(t *testing.T) {
	clearEnv(t)
	e := newTestEnv(t)
	f := agedFleet()
	e.app.connect = func(context.Context, config.Config) (fleet, error) { return &helloDuringRm{fakeFleet: f}, nil }
	err := e.run(t, "nodes", "rm", "ship1", "--config-folder", t.TempDir())
	wantCode(t, err, ExitFailed)
	if len(f.removed) != 0 || !strings.Contains(e.stderr.String(), "ship1: said hello meanwhile, kept") {
		t.Fatalf("removed %v, stderr %q", f.removed, e.stderr)
	}
}

// helloDuringRm is a fleet whose nodes say hello between List and Remove.
type helloDuringRm struct{ *fakeFleet }

func (h *helloDuringRm) Nodes(ctx context.Context) ([]*registry.Node, error) {
	nodes, err := h.fakeFleet.Nodes(ctx)
	var copies []*registry.Node
	for _, n := range nodes {
		c := *n
		copies = append(copies, &c)
		n.LastSeen = n.LastSeen.Add(time.Second)
	}
	return copies, err
}

// runWith executes a fresh command tree of e's app with args under ctx.
func runWith(ctx context.Context, e *testEnv, args ...string) error {
	e.stdout.Reset()
	e.stderr.Reset()
	root := newRootCmd(e.app)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// watchedFleet is a fakeFleet whose registry watch gives lists, one
// after the other, then ends the command's context (Ctrl-C), or closes
// the watch when lost is set.
type watchedFleet struct {
	*fakeFleet
	lists  [][]*registry.Node
	lost   bool
	cancel context.CancelFunc
}

func (w *watchedFleet) WatchNodes(ctx context.Context) (<-chan []*registry.Node, error) {
	ch := make(chan []*registry.Node)
	go func() {
		for _, l := range w.lists {
			select {
			case ch <- l:
			case <-ctx.Done():
				return
			}
		}
		// The command has taken the last list: it shows it before it
		// looks at its context again.
		if w.lost {
			close(ch)
			return
		}
		w.cancel()
	}()
	return ch, nil
}

// TestNodesWatch: --watch shows the registry, then again after each
// change, each table after a blank line when standard output is not a
// terminal; Ctrl-C ends it with exit 0.
func TestNodesWatch(t *testing.T) {
	clearEnv(t)
	node := func(name string, ago time.Duration) *registry.Node {
		return &registry.Node{Name: name, LastSeen: testNow.Add(-ago), HelloInterval: 30 * time.Second}
	}
	lists := [][]*registry.Node{
		{node("central", time.Second), node("shp1", 100*24*time.Hour)},
		{node("central", time.Second), node("ship1", 0), node("shp1", 100*24*time.Hour)},
	}
	e := newTestEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &watchedFleet{fakeFleet: &fakeFleet{now: testNow}, lists: lists, cancel: cancel}
	e.app.connect = func(context.Context, config.Config) (fleet, error) { return w, nil }
	if err := runWith(ctx, e, "nodes", "--watch", "--config-folder", t.TempDir()); err != nil {
		t.Fatalf("Ctrl-C: %v, want exit 0", err)
	}
	want := "NODE     STATE   LAST SEEN  VERSION  METHODS  LABELS\n" +
		"central  online  1s ago     -        0        -\n" +
		"\n" +
		"NODE     STATE   LAST SEEN  VERSION  METHODS  LABELS\n" +
		"central  online  1s ago     -        0        -\n" +
		"ship1    online  now        -        0        -\n"
	if e.stdout.String() != want {
		t.Errorf("got\n%s\nwant\n%s", e.stdout, want)
	}
	// The expired node is noted once, not under every table.
	if n := strings.Count(e.stderr.String(), "1 nodes not seen for more than 30 days are not shown"); n != 1 {
		t.Errorf("stderr says so %d times:\n%s", n, e.stderr)
	}
	if !w.closed {
		t.Error("client not closed")
	}

	// -o json: one JSON value per change.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	w = &watchedFleet{fakeFleet: &fakeFleet{now: testNow}, lists: lists, cancel: cancel}
	if err := runWith(ctx, e, "nodes", "--watch", "-o", "json", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(e.stdout.String()))
	var got [][]string
	for dec.More() {
		var nodes []registry.Node
		if err := dec.Decode(&nodes); err != nil {
			t.Fatalf("json: %v\n%s", err, e.stdout)
		}
		var names []string
		for _, n := range nodes {
			names = append(names, n.Name)
		}
		got = append(got, names)
	}
	if len(got) != 2 || !slices.Equal(got[0], []string{"central"}) || !slices.Equal(got[1], []string{"central", "ship1"}) {
		t.Errorf("json views %v", got)
	}

	// A watch that ends by itself lost the broker.
	w = &watchedFleet{fakeFleet: &fakeFleet{now: testNow}, lists: lists[:1], lost: true}
	err := runWith(t.Context(), e, "nodes", "--watch", "--config-folder", t.TempDir())
	wantCode(t, err, ExitUnreachable)
}

func TestNextOffline(t *testing.T) {
	nodes := []*registry.Node{
		{Name: "a", LastSeen: testNow.Add(-80 * time.Second), HelloInterval: 30 * time.Second}, // online for 10s more
		{Name: "b", LastSeen: testNow.Add(-time.Second), HelloInterval: 30 * time.Second},
		{Name: "c", LastSeen: testNow.Add(-time.Hour), HelloInterval: 30 * time.Second},                                    // offline already
		{Name: "d", LastSeen: testNow.Add(-time.Second), StoppedAt: testNow.Add(-time.Second), HelloInterval: time.Second}, // stopped
	}
	if d, ok := nextOffline(nodes, testNow); !ok || d != 11*time.Second {
		t.Errorf("next offline in %s, %v; want 11s (a's window, and a second)", d, ok)
	}
	if _, ok := nextOffline(nodes[2:], testNow); ok {
		t.Error("no node is online: nothing to wait for")
	}
}

// TestScreen: a terminal is cleared before each view; elsewhere views
// are separated.
func TestScreen(t *testing.T) {
	var b strings.Builder
	s := newScreen(&b, outputTable)
	s.tty = true
	for _, v := range []string{"one\n", "two\n"} {
		if err := s.show(func(w io.Writer) error { _, err := io.WriteString(w, v); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if want := "\x1b[H\x1b[2Jone\n\x1b[H\x1b[2Jtwo\n"; b.String() != want {
		t.Errorf("terminal %q, want %q", b.String(), want)
	}
	b.Reset()
	s = newScreen(&b, outputYAML)
	for _, v := range []string{"- a\n", "- b\n"} {
		if err := s.show(func(w io.Writer) error { _, err := io.WriteString(w, v); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.show(func(w io.Writer) error { _, err := io.WriteString(w, "- b\n"); return err }); err != nil {
		t.Fatal(err)
	}
	if want := "- a\n---\n- b\n"; b.String() != want { // the same view is not shown twice
		t.Errorf("yaml %q, want %q", b.String(), want)
	}
}
