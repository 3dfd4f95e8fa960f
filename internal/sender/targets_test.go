package sender_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/target"
)

// testResolver resolves against a fixed registry of ship1 (role=db),
// ship2 (role=web) and ship3 (role=db), all seen a second ago.
func testResolver(now time.Time) sender.Resolver {
	f := &target.Fleet{Now: now, Expiry: target.DefaultExpiry, Nodes: []*registry.Node{
		{Name: "ship1", LastSeen: now.Add(-time.Second), Labels: map[string]string{"role": "db"}},
		{Name: "ship2", LastSeen: now.Add(-time.Second), Labels: map[string]string{"role": "web"}},
		{Name: "ship3", LastSeen: now.Add(-time.Second), Labels: map[string]string{"role": "db"}},
	}}
	return func(_ context.Context, targets []string) ([]string, error) { return f.Resolve(targets) }
}

// TestTargetExpressions: "*" and label selectors become node names before
// the message is validated and published; one that selects nothing is
// refused as missing_target, and without a resolver as unresolved_target.
func TestTargetExpressions(t *testing.T) {
	e := newEnv(t, nil)
	res := testResolver(e.now)
	tests := []struct {
		name    string
		input   string
		targets []string
		res     sender.Resolver
		nodes   []string
		code    string
	}{
		{name: "star", input: `{"toNodes":["*"],"method":"REQPing"}`, res: res, nodes: []string{"ship1", "ship2", "ship3"}},
		{name: "selector", input: `{"toNodes":["role=db"],"method":"REQPing"}`, res: res, nodes: []string{"ship1", "ship3"}},
		{name: "names first", input: `{"toNode":"ship2","method":"REQPing"}`, targets: []string{"role=db"}, res: res, nodes: []string{"ship2", "ship1", "ship3"}},
		{name: "no match", input: `{"toNodes":["role=cache"],"method":"REQPing"}`, res: res, code: "missing_target"},
		{name: "bad selector", input: `{"toNodes":["role=d*b"],"method":"REQPing"}`, res: res, code: "field_value"},
		{name: "no resolver", input: `{"toNodes":["*"],"method":"REQPing"}`, code: "unresolved_target"},
		{name: "resolver fails", input: `{"toNodes":["*"],"method":"REQPing"}`, code: "unresolved_target",
			res: func(context.Context, []string) ([]string, error) { return nil, errors.New("registry unreachable") }},
		{name: "names need no resolver", input: `{"toNode":"ship1","method":"REQPing"}`, nodes: []string{"ship1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := e.sender.SendInputWith(t.Context(), []byte(tt.input), sender.InputOptions{Targets: tt.targets, Resolver: tt.res})
			if err != nil {
				t.Fatal(err)
			}
			r := rs[0]
			if r.Code != tt.code {
				t.Fatalf("receipt %+v, want code %q", r, tt.code)
			}
			if tt.code != "" {
				return
			}
			if !slices.Equal(r.Nodes, tt.nodes) {
				t.Fatalf("nodes %v, want %v", r.Nodes, tt.nodes)
			}
			for _, n := range r.Nodes {
				if got := decodeMsg(t, e.lastMsg(t, "steward.msg."+n).Data); got.ID != r.ID || got.ToNode != n {
					t.Fatalf("delivery to %s: %+v", n, got)
				}
			}
		})
	}
}

// TestHoldAndPublish: a held message is prepared and not sent; Publish
// sends it in parts under its one ID, and Withhold records the rest as
// cancelled (not_sent), so status lists every target.
func TestHoldAndPublish(t *testing.T) {
	e := newEnv(t, nil)
	rs, err := e.sender.SendInputWith(t.Context(), []byte(`{"toNodes":["*"],"method":"REQPing"}`),
		sender.InputOptions{Resolver: testResolver(e.now), Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if !r.OK() || r.Message == nil || r.ID == "" || len(r.Nodes) != 3 {
		t.Fatalf("held receipt %+v", r)
	}
	if recs, _ := e.status.List(t.Context(), r.ID); len(recs) != 0 {
		t.Fatalf("a held message has records: %v", recs)
	}
	if err := e.sender.Publish(t.Context(), r.Message, []string{"ship1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.sender.Publish(t.Context(), r.Message, []string{"ship2"}); err != nil {
		t.Fatal(err)
	}
	if err := e.sender.Withhold(t.Context(), r.Message, []string{"ship3"}, "not sent: --max-errors 1 reached"); err != nil {
		t.Fatal(err)
	}
	recs, err := e.status.List(t.Context(), r.ID)
	if err != nil || len(recs) != 3 {
		t.Fatalf("records %v, %v", recs, err)
	}
	want := map[string]status.Status{"ship1": status.Pending, "ship2": status.Pending, "ship3": status.Cancelled}
	for _, rec := range recs {
		if rec.Status != want[rec.Node] {
			t.Errorf("%s: %s, want %s", rec.Node, rec.Status, want[rec.Node])
		}
		if rec.Node == "ship3" && rec.ErrorCode != sender.CodeNotSent {
			t.Errorf("ship3 record %+v", rec)
		}
	}
	if n := e.msgCount(t, "steward.msg.ship3"); n != 0 {
		t.Fatalf("%d messages to ship3", n)
	}
}
