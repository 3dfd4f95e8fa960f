package registry_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/stream"
)

func newRegistry(t testing.TB) *registry.Registry {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	a, err := stream.Apply(natstest.Context(t, 20*time.Second), js, stream.Layout{}, nil)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return registry.New(a.Nodes)
}

func TestPutGetList(t *testing.T) {
	reg := newRegistry(t)
	ctx := t.Context()
	seen := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

	t.Run("empty", func(t *testing.T) {
		nodes, err := reg.List(ctx)
		if err != nil {
			t.Fatalf("List of an empty registry: %v", err)
		}
		if len(nodes) != 0 {
			t.Errorf("empty registry lists %d nodes", len(nodes))
		}
	})

	for _, name := range []string{"ship2", "central", "ship10", "ship1"} {
		n := &registry.Node{Name: name, Version: "v1", Methods: []string{"REQPing", "REQHello"},
			StartedAt: seen.Add(-time.Hour), LastSeen: seen, HelloInterval: 30 * time.Second}
		if err := reg.Put(ctx, n); err != nil {
			t.Fatalf("Put %s: %v", name, err)
		}
	}

	t.Run("get", func(t *testing.T) {
		n, err := reg.Get(ctx, "ship1")
		if err != nil {
			t.Fatal(err)
		}
		if n.Name != "ship1" || n.Version != "v1" || !slices.Equal(n.Methods, []string{"REQPing", "REQHello"}) ||
			!n.StartedAt.Equal(seen.Add(-time.Hour)) || n.HelloInterval != 30*time.Second {
			t.Errorf("Get returned %+v", n)
		}
		// LastSeen is when the broker stored the record (its clock), not
		// what the writer's clock said.
		if d := time.Since(n.LastSeen); d < 0 || d > time.Minute {
			t.Errorf("LastSeen %s is not the broker's time of storing", n.LastSeen)
		}
	})
	t.Run("get missing", func(t *testing.T) {
		if _, err := reg.Get(ctx, "nobody"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("want ErrKeyNotFound, got %v", err)
		}
	})
	t.Run("list sorted", func(t *testing.T) {
		nodes, err := reg.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range nodes {
			names = append(names, n.Name)
		}
		if got := strings.Join(names, ","); got != "central,ship1,ship10,ship2" {
			t.Errorf("List = %s", got)
		}
	})
	t.Run("put replaces", func(t *testing.T) {
		later := seen.Add(time.Minute)
		if err := reg.Put(ctx, &registry.Node{Name: "ship1", Version: "v2", LastSeen: later}); err != nil {
			t.Fatal(err)
		}
		n, err := reg.Get(ctx, "ship1")
		if err != nil {
			t.Fatal(err)
		}
		if n.Version != "v2" || n.LastSeen.Equal(later) {
			t.Errorf("after a second Put: %+v", n)
		}
		nodes, err := reg.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 4 {
			t.Errorf("List holds %d nodes after replacing one, want 4", len(nodes))
		}
	})
}

func TestOnline(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		interval time.Duration
		age      time.Duration // now - LastSeen
		want     bool
	}{
		{"just seen", 30 * time.Second, 0, true},
		{"three intervals", 30 * time.Second, 90 * time.Second, true},
		{"past three intervals", 30 * time.Second, 90*time.Second + time.Nanosecond, false},
		{"long gone", 30 * time.Second, time.Hour, false},
		{"short interval gets 10s", time.Second, 10 * time.Second, true},
		{"short interval past 10s", time.Second, 10*time.Second + time.Nanosecond, false},
		{"short interval, three intervals is not the limit", time.Second, 5 * time.Second, true},
		{"no interval gets 10s", 0, 10 * time.Second, true},
		{"no interval past 10s", 0, 11 * time.Second, false},
		{"interval of exactly a third of 10s", 10 * time.Second / 3, 10 * time.Second, true},
		{"clock skew: seen in the future", 30 * time.Second, -5 * time.Second, true},
	}
	t.Run("said goodbye", func(t *testing.T) {
		n := &registry.Node{Name: "ship1", HelloInterval: 30 * time.Second, LastSeen: now, StoppedAt: now}
		if n.Online(now) {
			t.Error("a node that said goodbye is online")
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := &registry.Node{Name: "ship1", HelloInterval: tc.interval, LastSeen: now.Add(-tc.age)}
			if got := n.Online(now); got != tc.want {
				t.Errorf("Online with interval %s, last seen %s ago = %v, want %v", tc.interval, tc.age, got, tc.want)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	reg := newRegistry(t)
	ctx := t.Context()
	for _, name := range []string{"ship1", "ship2"} {
		if err := reg.Put(ctx, &registry.Node{Name: name, HelloInterval: 30 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := reg.Get(ctx, "ship1")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Delete(ctx, n); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := reg.Get(ctx, "ship1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	nodes, err := reg.List(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Name != "ship2" {
		t.Fatalf("List after Delete: %v %v", nodes, err)
	}
	if err := reg.Delete(ctx, n); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("second Delete: want ErrKeyNotFound, got %v", err)
	}

	// A hello after the record was read keeps it.
	old, err := reg.Get(ctx, "ship2")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Put(ctx, &registry.Node{Name: "ship2", Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Delete(ctx, old); !errors.Is(err, registry.ErrChanged) {
		t.Fatalf("Delete of a record written since: want ErrChanged, got %v", err)
	}
	if n, err := reg.Get(ctx, "ship2"); err != nil || n.Version != "v2" {
		t.Fatalf("ship2 after a refused Delete: %+v, %v", n, err)
	}
	// A node removed says hello again: it is back.
	if err := reg.Put(ctx, &registry.Node{Name: "ship1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, "ship1"); err != nil {
		t.Fatalf("ship1 not back after its hello: %v", err)
	}
}
