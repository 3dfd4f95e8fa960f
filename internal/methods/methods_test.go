package methods

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

func testEnv(t *testing.T) *Env {
	t.Helper()
	files, err := datafolder.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	return &Env{NodeName: "central", CentralNodeName: "central", Version: "test", Files: files}
}

func run(t *testing.T, spec Spec, env *Env, m *message.Message) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return spec.Handler(ctx, &Request{Msg: m, Attempt: 1, Env: env, Log: slog.New(slog.DiscardHandler)})
}

func TestRegistry(t *testing.T) {
	r := Default()
	if s, err := r.Lookup("REQnCliCommand"); err != nil || s.Name != "REQCliCommand" {
		t.Errorf("alias lookup: %v %v", s.Name, err)
	}
	if _, err := r.Lookup("REQNope"); !errors.Is(err, ErrUnknownMethod) {
		t.Errorf("unknown: %v", err)
	}
	if _, _, ok := r.Resolve("REQDeliveryDeadline"); ok {
		t.Error("internal method offered to operators")
	}
	if _, _, ok := r.All().Resolve("REQDeliveryDeadline"); !ok {
		t.Error("internal method unknown to nodes")
	}
	if err := r.Disable("REQPing"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lookup("REQPing"); !errors.Is(err, ErrMethodDisabled) {
		t.Errorf("disabled: %v", err)
	}
	if _, err := NewRegistry([]Spec{ping, ping}); !errors.Is(err, ErrDuplicateMethod) {
		t.Errorf("duplicate: %v", err)
	}
}

func TestToFileAndAppend(t *testing.T) {
	env := testEnv(t)
	reply := func(data string) *message.Message {
		return &message.Message{Method: "REQToFileAppend", FromNode: "ship1", Directory: "/var/result/", FileName: "out.log",
			Data: message.Data(data), Reply: &message.ReplyInfo{Method: "REQCliCommand"}}
	}
	for _, d := range []string{"one\n", "two\n"} {
		if _, err := run(t, toFileAppend, env, reply(d)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(env.Files.Dir(), "var", "result", "ship1", "out.log")
	if b, _ := os.ReadFile(path); string(b) != "one\ntwo\n" {
		t.Errorf("appended %q", b)
	}
	if _, err := run(t, toFile, env, reply("three\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "three\n" {
		t.Errorf("replaced %q", b)
	}
	// No fileName: named after the request method.
	m := reply("x")
	m.FileName = ""
	if _, err := run(t, toFile, env, m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(env.Files.Dir(), "var", "result", "ship1", "REQCliCommand.result")); err != nil {
		t.Error(err)
	}
	// Hostile paths never get written.
	for _, bad := range []*message.Message{
		{Method: "REQToFile", FromNode: "ship1", Directory: "../../x", FileName: "f"},
		{Method: "REQToFile", FromNode: "ship1", FileName: "../f"},
		{Method: "REQToFile", FromNode: "../..", FileName: "f"},
	} {
		if _, err := run(t, toFile, env, bad); err == nil {
			t.Errorf("hostile path accepted: %+v", bad)
		}
	}
}

func TestToConsole(t *testing.T) {
	env := testEnv(t)
	var out bytes.Buffer
	env.Stdout = &out
	m := &message.Message{Method: "REQToConsole", FromNode: "ship1", ID: "m1", Data: message.Data("hello"),
		Reply: &message.ReplyInfo{Method: "REQCliCommand", Status: "succeeded"}}
	if _, err := run(t, toConsole, env, m); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "from ship1") || !strings.HasSuffix(got, "hello\n") {
		t.Errorf("printed %q", got)
	}
}

func TestPingAndPong(t *testing.T) {
	env := testEnv(t)
	env.NodeName = "ship1"
	res, err := run(t, ping, env, &message.Message{Method: "REQPing", FromNode: "central"})
	if err != nil || !strings.HasPrefix(string(res.Output), "pong from ship1") {
		t.Fatalf("ping: %q %v", res.Output, err)
	}
	env.NodeName = "central"
	m := &message.Message{Method: "REQPong", FromNode: "ship1", Data: res.Output,
		Reply: &message.ReplyInfo{Method: "REQPing", RequestSentAt: time.Now().Add(-time.Second)}}
	if _, err := run(t, pong, env, m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(env.Files.Dir(), "ping", "ship1", "pong.log"))
	if !strings.Contains(string(b), "pong from ship1, round trip 1") {
		t.Errorf("pong log %q", b)
	}
}

func TestErrorLog(t *testing.T) {
	env := testEnv(t)
	sent := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	m := &message.Message{Method: "REQErrorLog", FromNode: "ship2", SentAt: sent, Data: message.Data("failed: REQCliCommand exit 3\n")}
	if _, err := run(t, errorLog, env, m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(env.Files.Dir(), ErrorLogDir, "ship2", ErrorLogFile))
	if string(b) != "2026-11-27T08:00:00Z ship2: failed: REQCliCommand exit 3\n" {
		t.Errorf("error log %q", b)
	}
}

func TestHelloRecordsNodeInRegistry(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := natstest.Context(t, 10*time.Second)
	assets, err := stream.Ensure(ctx, js, stream.DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	reg := registry.New(assets.Nodes)
	env.Nodes = reg
	data := `{"version":"1.2.3","methods":["REQPing"],"helloInterval":30000000000}`
	if _, err := run(t, hello, env, &message.Message{Method: "REQHello", FromNode: "ship1", Data: message.Data(data)}); err != nil {
		t.Fatal(err)
	}
	n, err := reg.Get(ctx, "ship1")
	if err != nil || n.Version != "1.2.3" || n.HelloInterval != 30*time.Second || !n.Online(time.Now()) {
		t.Fatalf("registry: %+v %v", n, err)
	}
	if n.Online(time.Now().Add(2 * time.Minute)) {
		t.Error("node still online after three missed hellos")
	}
	if _, err := run(t, hello, env, &message.Message{Method: "REQHello", FromNode: "ship1", Data: message.Data("not json")}); !errors.Is(err, ErrBadArgs) {
		t.Errorf("bad hello data: %v", err)
	}
	env.Nodes = nil
	if _, err := run(t, hello, env, &message.Message{Method: "REQHello", FromNode: "ship1"}); err == nil {
		t.Error("hello accepted on a node without a registry")
	}
}

func TestDeliveryDeadlineOnlyTimesOutPending(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := natstest.Context(t, 10*time.Second)
	assets, err := stream.Ensure(ctx, js, stream.DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	store := status.NewStore(js, assets.Status)
	env := testEnv(t)
	env.Status = store
	past := time.Now().Add(-time.Minute).UTC()
	for _, r := range []*status.Record{
		{ID: "m1", Node: "ship1", Status: status.Pending, Deadline: past},
		{ID: "m1", Node: "ship2", Status: status.Running, Deadline: past},
		{ID: "m1", Node: "ship3", Status: status.Succeeded, Deadline: past},
		{ID: "m2", Node: "ship1", Status: status.Pending, Deadline: past},
		{ID: "m3", Node: "ship1", Status: status.Pending, Deadline: time.Now().Add(time.Hour)},
	} {
		if err := store.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	res, err := run(t, deliveryDeadline, env, &message.Message{Method: "REQDeliveryDeadline", Data: message.Data("m1")})
	if err != nil || string(res.Output) != "1 of 3 deliveries timed out" {
		t.Fatalf("m1: %q %v", res.Output, err)
	}
	if _, err := run(t, deliveryDeadline, env, &message.Message{Method: "REQDeliveryDeadline", Data: message.Data("m3")}); err == nil {
		t.Error("an event before the deadline was not reported")
	}
	if _, err := run(t, deliveryDeadline, env, &message.Message{Method: "REQDeliveryDeadline", Data: message.Data("gone")}); err != nil {
		t.Errorf("a message whose records expired: %v", err)
	}
	want := map[string]status.Status{"m1.ship1": status.DeliveryTimedOut, "m1.ship2": status.Running,
		"m1.ship3": status.Succeeded, "m2.ship1": status.Pending, "m3.ship1": status.Pending}
	for key, st := range want {
		r, _, err := store.Get(ctx, key)
		if err != nil || r.Status != st {
			t.Errorf("%s: want %s, got %+v %v", key, st, r, err)
		}
	}
}
