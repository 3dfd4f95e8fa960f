package procs_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stewardfleet/steward/internal/procs"
)

func TestConfiguredMethods(t *testing.T) {
	tab, err := procs.New("ship1", []string{"REQCliCommand", "REQHttpGet", "REQTailFile", "REQPing"},
		map[string]string{"REQHttpGet": "off", "REQTailFile": "central, ops", "REQPing": "*"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, from string
		want         error
	}{
		{"REQCliCommand", "anyone", nil},
		{"REQPing", "anyone", nil},
		{"REQHttpGet", "central", procs.ErrNotRunning},
		{"REQTailFile", "ops", nil},
		{"REQTailFile", "ship2", procs.ErrSenderNotAllowed},
		{"REQHello", "ship2", nil}, // not a served method: not gated
	} {
		if err := tab.Allows(tc.method, tc.from); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s from %s: %v, want %v", tc.method, tc.from, err, tc.want)
		}
	}
	if _, err := procs.New("ship1", []string{"REQPing"}, map[string]string{"REQNope": "off"}, nil); !errors.Is(err, procs.ErrUnknown) {
		t.Errorf("an unknown configured method: %v", err)
	}
}

func TestStartAndStop(t *testing.T) {
	tab, _ := procs.New("ship1", []string{"REQCliCommand", "REQHttpGet"}, map[string]string{"REQHttpGet": "off"}, nil)
	var changes atomic.Int32
	tab.Notify(func() { changes.Add(1) })
	if msg, err := tab.Start("REQHttpGet", []string{"central", "node1"}); err != nil || !strings.Contains(msg, "started") {
		t.Fatalf("start: %q %v", msg, err)
	}
	if err := tab.Allows("REQHttpGet", "node1"); err != nil {
		t.Errorf("after start: %v", err)
	}
	var stopped []string
	tab.Enter("a1.ship1", "REQCliCommand", "central", func(reason string) { stopped = append(stopped, "a1:"+reason) })
	tab.Enter("b2.ship1", "REQCliCommand", "central", func(reason string) { stopped = append(stopped, "b2:"+reason) })
	tab.Enter("c3.ship1", "REQHttpGet", "central", func(reason string) { stopped = append(stopped, "c3:"+reason) })
	s := tab.Snapshot()
	if len(s.Running) != 3 || s.Running[0].ID != "a1.ship1" {
		t.Fatalf("snapshot %+v", s)
	}
	if _, err := tab.Stop("REQCliCommand", "b2.ship1", "asked"); err != nil || len(stopped) != 1 || stopped[0] != "b2:asked" {
		t.Fatalf("stopping one delivery: %v %q", err, stopped)
	}
	if err := tab.Allows("REQCliCommand", "central"); err != nil {
		t.Errorf("stopping a delivery stopped its method: %v", err)
	}
	msg, err := tab.Stop("REQCliCommand", "", "stopped")
	if err != nil || !strings.Contains(msg, "a1.ship1") || len(stopped) != 3 {
		t.Fatalf("stopping the method: %q %v %q", msg, err, stopped)
	}
	if err := tab.Allows("REQCliCommand", "central"); !errors.Is(err, procs.ErrNotRunning) {
		t.Errorf("a stopped method: %v", err)
	}
	if _, err := tab.Stop("REQNope", "", ""); !errors.Is(err, procs.ErrUnknown) {
		t.Errorf("stopping an unknown method: %v", err)
	}
	tab.Leave("a1.ship1")
	if changes.Load() < 6 {
		t.Errorf("%d changes notified", changes.Load())
	}
	text := tab.Snapshot().String()
	for _, want := range []string{"method REQCliCommand stopped", "method REQHttpGet running for central, node1", "delivery c3.ship1 REQHttpGet from central"} {
		if !strings.Contains(text, want) {
			t.Errorf("snapshot text lacks %q:\n%s", want, text)
		}
	}
}

func TestParseConfig(t *testing.T) {
	got, err := procs.ParseConfig("REQHttpGet=off; REQTailFile=central ops\nREQPing = *")
	if err != nil || len(got) != 3 || got["REQTailFile"] != "central ops" || got["REQPing"] != "*" || got["REQHttpGet"] != "off" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"REQPing", "=off", "REQPing=off;REQPing=*"} {
		if _, err := procs.ParseConfig(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
