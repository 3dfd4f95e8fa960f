package node_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
)

// The process operations: a method switched off in the configuration is
// not running; REQOpCommand starts it for some senders; REQOpProcessStop
// stops a method and the delivery running it, which ends cancelled;
// `steward ps` reads the table from the broker.
func TestProcessOperations(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page\n")) }))
	t.Cleanup(web.Close)
	f := newFleet(t)
	central := f.start(f.config("central"))
	cfg := f.config("ship1")
	cfg.Methods = "REQHttpGet=off; REQTailFile=ops"
	f.start(cfg)
	c := f.client(central.cfg)
	one := func(input string) *status.Record {
		t.Helper()
		return wait(t, c, send(t, c, input), 30*time.Second)[0]
	}
	get := `{"toNode":"ship1","method":"REQHttpGet","methodArgs":["` + web.URL + `"]}`

	if r := one(get); r.Status != status.Rejected || r.ErrorCode != "not_running" || !strings.Contains(r.Error, "method not running") {
		t.Fatalf("a method switched off: %s %s %s", r.Status, r.ErrorCode, r.Error)
	}
	if r := one(`{"toNode":"ship1","method":"REQTailFile","methodArgs":["x.log"]}`); r.Status != status.Rejected || !strings.Contains(r.Error, "not running for this sender central") {
		t.Fatalf("a method for another sender: %s %s", r.Status, r.Error)
	}
	if r := one(`{"toNode":"ship1","method":"REQOpProcessList"}`); r.Status != status.Succeeded ||
		!strings.Contains(r.Output, "method REQHttpGet stopped") || !strings.Contains(r.Output, "method REQTailFile running for ops") {
		t.Fatalf("ps: %s %q", r.Status, r.Output)
	}
	if r := one(`{"toNode":"ship1","method":"REQOpCommand","operation":{"opCmd":"startProc","opArg":{"method":"REQHttpGet","allowedNodes":["central","node1"]}}}`); r.Status != status.Succeeded || !strings.Contains(r.Output, "REQHttpGet started on ship1 for central, node1") {
		t.Fatalf("startProc: %s %q %s", r.Status, r.Output, r.Error)
	}
	if r := one(get); r.Status != status.Succeeded || r.Output != "page\n" {
		t.Fatalf("after startProc: %s %q %s", r.Status, r.Output, r.Error)
	}

	// A long command is stopped with its method.
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommandCont","methodArgs":["sh","-c","echo started; exec sleep 60"],"methodTimeout":120}`)
	natstest.Eventually(t, 30*time.Second, "the command in ship1's process table on the broker", func() bool {
		s, err := c.Processes(t.Context(), "ship1")
		return err == nil && len(s.Running) == 1 && s.Running[0].ID == ids[0]+".ship1" && s.Running[0].Method == "REQCliCommandCont"
	})
	if r := one(`{"toNode":"ship1","method":"REQOpProcessStop","methodArgs":["REQnCliCommandCont"]}`); r.Status != status.Succeeded || !strings.Contains(r.Output, "stopped its running deliveries "+ids[0]+".ship1") {
		t.Fatalf("stop: %s %q %s", r.Status, r.Output, r.Error)
	}
	if r := wait(t, c, ids, 30*time.Second)[0]; r.Status != status.Cancelled || !strings.Contains(r.Error, "stopped by REQOpProcessStop from central") {
		t.Fatalf("the stopped command: %s %s", r.Status, r.Error)
	}
	if r := one(`{"toNode":"ship1","method":"REQCliCommandCont","methodArgs":["true"]}`); r.Status != status.Rejected || r.ErrorCode != "not_running" {
		t.Fatalf("a stopped method: %s %s", r.Status, r.Error)
	}
	natstest.Eventually(t, 30*time.Second, "the table on the broker says so", func() bool {
		s, err := c.Processes(t.Context(), "ship1")
		return err == nil && len(s.Running) == 0 && strings.Contains(s.String(), "method REQCliCommandCont stopped")
	})
	// The older form, and what cannot be stopped.
	if r := one(`{"toNode":"ship1","method":"REQOpCommand","operation":{"opCmd":"stopProc","opArg":{"method":"REQHttpGet","kind":"subscriber","receivingNode":"ship1"}}}`); r.Status != status.Succeeded {
		t.Fatalf("stopProc: %s %s", r.Status, r.Error)
	}
	if r := one(get); r.Status != status.Rejected {
		t.Fatalf("after stopProc: %s %s", r.Status, r.Error)
	}
	if r := one(`{"toNode":"ship1","method":"REQOpProcessStop","methodArgs":["REQOpProcessStart"]}`); r.Status != status.Failed || !strings.Contains(r.Error, "cannot be stopped") {
		t.Fatalf("stopping the operations: %s %s", r.Status, r.Error)
	}
}
