package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/procs"
)

// procsFake is a fakeFleet with process tables: Processes gives the last
// of tables, WatchProcesses each of them in turn, then ends the command's
// context (Ctrl-C).
type procsFake struct {
	*fakeFleet
	tables []*procs.Snapshot
	cancel context.CancelFunc
}

func (p *procsFake) Processes(_ context.Context, node string) (*procs.Snapshot, error) {
	if len(p.tables) == 0 || p.tables[len(p.tables)-1] == nil {
		return nil, client.ErrNotFound
	}
	return p.tables[len(p.tables)-1], nil
}

func (p *procsFake) WatchProcesses(ctx context.Context, node string) (<-chan *procs.Snapshot, error) {
	ch := make(chan *procs.Snapshot)
	go func() {
		for _, s := range p.tables {
			select {
			case ch <- s:
			case <-ctx.Done():
				return
			}
		}
		p.cancel()
	}()
	return ch, nil
}

func TestPs(t *testing.T) {
	clearEnv(t)
	serving := &procs.Snapshot{Node: "ship1", Methods: []procs.Method{
		{Name: "REQCliCommand", Running: true, Since: testNow.Add(-time.Hour)},
		{Name: "REQHttpGet", Running: true, Senders: []string{"central"}, Since: testNow.Add(-time.Hour)},
	}}
	busy := &procs.Snapshot{Node: "ship1", Methods: serving.Methods,
		Running: []procs.Run{{ID: "m1.ship1", Method: "REQCliCommand", From: "central", Started: testNow.Add(-2 * time.Second)}}}
	first := "METHOD / DELIVERY  STATE    FOR / FROM  SINCE\n" +
		"REQCliCommand      running  every node  1h ago\n" +
		"REQHttpGet         running  central     1h ago\n"
	second := "METHOD / DELIVERY           STATE    FOR / FROM  SINCE\n" +
		"REQCliCommand               running  every node  1h ago\n" +
		"REQHttpGet                  running  central     1h ago\n" +
		"  m1.ship1 (REQCliCommand)  running  central     2s ago\n"

	e := newTestEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := &procsFake{fakeFleet: &fakeFleet{}, tables: []*procs.Snapshot{nil, serving, serving, busy}, cancel: cancel}
	e.app.connect = func(context.Context, config.Config) (fleet, error) { return f, nil }
	if err := runWith(ctx, e, "ps", "ship1", "--watch", "--config-folder", t.TempDir()); err != nil {
		t.Fatalf("Ctrl-C: %v, want exit 0", err)
	}
	// The same table published again is not shown again.
	if want := first + "\n" + second; e.stdout.String() != want {
		t.Errorf("got\n%q\nwant\n%q", e.stdout, want)
	}
	if !strings.Contains(e.stderr.String(), "ship1 has published no process table") {
		t.Errorf("stderr %q", e.stderr)
	}

	if err := e.run(t, "ps", "ship1", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if e.stdout.String() != second {
		t.Errorf("ps without --watch:\n%s", e.stdout)
	}
	f.tables = nil
	wantCode(t, e.run(t, "ps", "ship1", "--config-folder", t.TempDir()), ExitUsage)
}
