package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/procs"
	"github.com/stewardfleet/steward/internal/registry"
)

// next receives from ch until want accepts a value, and returns that
// value; it fails the test if ch closes first or nothing is accepted
// within 20 seconds.
func next[T any](t testing.TB, ch <-chan T, what string, want func(T) bool) T {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatalf("the watch closed before %s", what)
			}
			if want(v) {
				return v
			}
		case <-deadline:
			t.Fatalf("no %s within 20s", what)
		}
	}
}

func names(nodes []*registry.Node) []string {
	out := []string{}
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

func namesAre(want ...string) func([]*registry.Node) bool {
	return func(nodes []*registry.Node) bool { return slices.Equal(names(nodes), want) }
}

// TestWatchNodes: the watch gives the registry as it is, then again after
// each hello and each removal, until its context ends.
func TestWatchNodes(t *testing.T) {
	f := newFleet(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := f.client.WatchNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch, "the empty registry", namesAre())

	for _, n := range []string{"ship1", "central"} {
		if err := f.nodes.Put(t.Context(), &registry.Node{Name: n, Version: "v1", HelloInterval: 30 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	both := next(t, ch, "both nodes, sorted", namesAre("central", "ship1"))
	if both[1].Version != "v1" || both[1].LastSeen.IsZero() {
		t.Errorf("ship1 %+v: want its record, last seen when the broker stored it", both[1])
	}

	// A hello moves LastSeen on: the watch shows it.
	listed, err := f.client.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.nodes.Put(t.Context(), &registry.Node{Name: "ship1", Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	next(t, ch, "ship1's new hello", func(nodes []*registry.Node) bool {
		return len(nodes) == 2 && nodes[1].Version == "v2" && !nodes[1].LastSeen.Before(listed[1].LastSeen)
	})

	// A removed node leaves the list.
	central := listed[0]
	if err := f.client.RemoveNode(t.Context(), central); err != nil {
		t.Fatal(err)
	}
	next(t, ch, "central removed", namesAre("ship1"))

	cancel()
	for range ch { // it closes once ctx ends
	}
}

// TestWatchProcesses: the watch gives nil while the node has published no
// process table, then each table it publishes.
func TestWatchProcesses(t *testing.T) {
	f := newFleet(t)
	if _, err := f.client.WatchProcesses(t.Context(), "no.such"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a bad node name: %v, want ErrNotFound", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := f.client.WatchProcesses(ctx, "ship1")
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch, "no table yet", func(s *procs.Snapshot) bool { return s == nil })

	publish := func(method string) {
		t.Helper()
		b, err := json.Marshal(procs.Snapshot{Node: "ship1", Methods: []procs.Method{{Name: method, Running: true}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.procs.Put(t.Context(), "ship1", b); err != nil {
			t.Fatal(err)
		}
	}
	hasMethod := func(name string) func(*procs.Snapshot) bool {
		return func(s *procs.Snapshot) bool { return s != nil && len(s.Methods) == 1 && s.Methods[0].Name == name }
	}
	publish("REQPing")
	next(t, ch, "the first table", hasMethod("REQPing"))
	publish("REQCliCommand")
	next(t, ch, "the next table", hasMethod("REQCliCommand"))

	// Another node's table is not ship1's.
	if _, err := f.procs.Put(t.Context(), "ship2", []byte(`{"node":"ship2"}`)); err != nil {
		t.Fatal(err)
	}
	publish("REQHello")
	next(t, ch, "ship1's table after ship2's", func(s *procs.Snapshot) bool {
		if s == nil || s.Node != "ship1" {
			t.Fatalf("got %+v, want only ship1's tables", s)
		}
		return hasMethod("REQHello")(s)
	})
	cancel()
	for range ch {
	}
}
