package cli

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/status"
)

// statusFleet is a fakeFleet whose Status gives initial (the records
// before Wait's updates); its Wait calls cancel, if set, once it has
// reported them (Ctrl-C while the deliveries still run).
type statusFleet struct {
	*fakeFleet
	initial []*status.Record
	cancel  context.CancelFunc
}

func (s *statusFleet) Status(context.Context, string) ([]*status.Record, error) {
	return s.initial, nil
}

func (s *statusFleet) Wait(ctx context.Context, ids []string, progress func(*status.Record)) ([]*status.Record, error) {
	if s.cancel == nil {
		return s.fakeFleet.Wait(ctx, ids, progress)
	}
	return s.fakeFleet.Wait(ctx, ids, func(r *status.Record) {
		progress(r)
		if r == s.updates[len(s.updates)-1] {
			s.cancel()
		}
	})
}

// tables splits a watch's output into its views.
func tables(out string) []string { return strings.Split(strings.TrimSuffix(out, "\n"), "\n\n") }

// TestStatusWatch: --watch shows the deliveries, again on each change
// (not on records it has shown already), until every delivery has ended;
// Ctrl-C ends it with exit 0, a lost broker with exit 3.
func TestStatusWatch(t *testing.T) {
	clearEnv(t)
	pending := []*status.Record{rec("m1", "ship1", status.Pending, ""), rec("m1", "ship2", status.Succeeded, "done")}
	e := newTestEnv(t)
	f := &statusFleet{initial: pending, fakeFleet: &fakeFleet{
		// Wait first reports what Status gave, as a status watch does.
		updates: []*status.Record{pending[0], pending[1], rec("m1", "ship1", status.Running, ""), rec("m1", "ship1", status.Succeeded, "up")},
		records: []*status.Record{rec("m1", "ship1", status.Succeeded, "up"), pending[1]},
	}}
	e.app.connect = func(context.Context, config.Config) (fleet, error) { return f, nil }
	if err := e.run(t, "status", "m1", "--watch", "--config-folder", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	views := tables(e.stdout.String())
	// Changes that come together may be shown together: 2 or 3 views,
	// never the same one twice.
	if len(views) < 2 || len(views) > 3 || views[len(views)-2] == views[len(views)-1] {
		t.Fatalf("%d views, want the first, maybe running, and the last:\n%s", len(views), e.stdout)
	}
	if !strings.Contains(views[0], "ship1  pending ") || !strings.Contains(views[len(views)-1], "ship1  succeeded  1        0     5s ago   up\n") {
		t.Errorf("views\n%s", e.stdout)
	}
	for _, v := range views {
		if !strings.Contains(v, "ship2  succeeded") {
			t.Errorf("a view without ship2:\n%s", v)
		}
	}
	if len(f.waitIDs) != 1 || f.waitIDs[0] != "m1" {
		t.Errorf("waited for %v", f.waitIDs)
	}

	// Ctrl-C while ship1 still runs.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f = &statusFleet{initial: pending, cancel: cancel, fakeFleet: &fakeFleet{block: true,
		updates: []*status.Record{rec("m1", "ship1", status.Running, "")}}}
	if err := runWith(ctx, e, "status", "m1", "--watch", "--config-folder", t.TempDir()); err != nil {
		t.Fatalf("Ctrl-C: %v, want exit 0", err)
	}
	if !strings.HasPrefix(e.stdout.String(), "NODE ") {
		t.Errorf("stdout %q", e.stdout)
	}

	f = &statusFleet{initial: pending, fakeFleet: &fakeFleet{waitErr: errors.New("connection closed")}}
	err := e.run(t, "status", "m1", "--watch", "--config-folder", t.TempDir())
	wantCode(t, err, ExitUnreachable)
	if !strings.Contains(err.Error(), "connection closed") {
		t.Errorf("error %v", err)
	}
}
