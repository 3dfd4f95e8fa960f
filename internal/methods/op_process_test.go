package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/procs"
)

// opTable is a real process table with the method names this build knows,
// as a node gives it to the operations.
type opTable struct{ *procs.Table }

func (opTable) Canonical(name string) (string, error) {
	s, err := Default().Lookup(name)
	if err != nil {
		return "", err
	}
	if s.Kind != Command {
		return "", fmt.Errorf("%s is not a request method", s.Name)
	}
	return s.Name, nil
}

func opEnv(t *testing.T) (*Env, *procs.Table) {
	t.Helper()
	var served []string
	for _, s := range List() {
		if s.Kind == Command {
			served = append(served, s.Name)
		}
	}
	tab, err := procs.New("ship2", served, map[string]string{"REQHttpGet": "off"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	env.NodeName, env.Procs = "ship2", opTable{tab}
	return env, tab
}

func opRequest(method string, args ...string) *Request {
	return &Request{Msg: &message.Message{ID: "op1", FromNode: "central", Method: method, MethodArgs: args}}
}

func TestOpProcessListStartStop(t *testing.T) {
	env, tab := opEnv(t)
	run := func(s Spec, req *Request) (string, error) {
		req.Env = env
		res, err := s.Handler(context.Background(), req)
		if res == nil {
			return "", err
		}
		return string(res.Output), err
	}
	if out, err := run(opProcessList, opRequest("REQOpProcessList")); err != nil || !strings.Contains(out, "method REQHttpGet stopped") {
		t.Fatalf("list: %q %v", out, err)
	}
	if out, err := run(opProcessStart, opRequest("REQOpProcessStart", "REQHttpGet", "central")); err != nil || !strings.Contains(out, "started on ship2 for central") {
		t.Fatalf("start: %q %v", out, err)
	}
	if err := tab.Allows("REQHttpGet", "central"); err != nil {
		t.Errorf("after start: %v", err)
	}
	stopped := ""
	tab.Enter("x1.ship2", "REQCliCommand", "central", func(reason string) { stopped = reason })
	if out, err := run(opProcessStop, opRequest("REQOpProcessStop", "REQnCliCommand", "ship2", "subscriber", "x1.ship2")); err != nil || !strings.Contains(out, "stopped delivery x1.ship2") {
		t.Fatalf("stop one delivery: %q %v", out, err)
	}
	if !strings.Contains(stopped, "stopped by REQOpProcessStop from central (message op1)") {
		t.Errorf("the delivery was stopped with %q", stopped)
	}
	for _, bad := range [][]string{
		{"REQNope"},           // unknown
		{"REQToFile"},         // a reply method: always runs
		{"REQOpProcessStart"}, // would leave nothing to start it again
		{"REQCliCommand", "ship1", "subscriber", ""}, // another node
		{"REQCliCommand", "ship2", "publisher", ""},  // no such kind
		{"REQCliCommand", "ship2", "subscriber", "nope.ship2"},
	} {
		if _, err := run(opProcessStop, opRequest("REQOpProcessStop", bad...)); !errors.Is(err, ErrBadArgs) && !errors.Is(err, procs.ErrUnknown) {
			t.Errorf("stop %q: %v", bad, err)
		}
	}
	if err := validateOpProcessStop(&message.Message{MethodArgs: []string{"a", "b"}}); !errors.Is(err, message.ErrFieldValue) {
		t.Errorf("two args: %v", err)
	}
	if err := validateOpProcessStart(&message.Message{}); !errors.Is(err, message.ErrFieldValue) {
		t.Errorf("no args: %v", err)
	}
}

func TestOpCommand(t *testing.T) {
	env, tab := opEnv(t)
	op := func(opCmd string, arg any) (string, error) {
		b, _ := json.Marshal(arg)
		req := opRequest("REQOpCommand")
		req.Msg.Operation, req.Env = &message.Operation{OpCmd: opCmd, OpArg: b}, env
		res, err := opCommand.Handler(context.Background(), req)
		if res == nil {
			return "", err
		}
		return string(res.Output), err
	}
	if out, err := op("startProc", map[string]any{"method": "REQHttpGet", "allowedNodes": []string{"central", "node1"}}); err != nil || !strings.Contains(out, "for central, node1") {
		t.Fatalf("startProc: %q %v", out, err)
	}
	if out, err := op("stopProc", map[string]any{"method": "REQHttpGet", "kind": "subscriber", "receivingNode": "ship2"}); err != nil || !strings.Contains(out, "REQHttpGet stopped on ship2") {
		t.Fatalf("stopProc: %q %v", out, err)
	}
	if err := tab.Allows("REQHttpGet", "central"); !errors.Is(err, procs.ErrNotRunning) {
		t.Errorf("after stopProc: %v", err)
	}
	if out, err := op("ps", nil); err != nil || !strings.Contains(out, "processes on ship2") {
		t.Fatalf("ps: %q %v", out, err)
	}
	for _, bad := range []*message.Message{
		{Method: "REQOpCommand"},
		{Method: "REQOpCommand", Operation: &message.Operation{OpCmd: "kill"}},
		{Method: "REQOpCommand", Operation: &message.Operation{OpCmd: "startProc"}},
		{Method: "REQOpCommand", Operation: &message.Operation{OpCmd: "ps", OpArg: json.RawMessage(`[1]`)}},
	} {
		if err := validateOpCommand(bad); !errors.Is(err, message.ErrFieldValue) {
			t.Errorf("%+v: %v", bad.Operation, err)
		}
	}
}
