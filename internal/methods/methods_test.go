package methods

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/registry"
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
	return spec.Handler(ctx, &Request{Msg: m, Attempt: 1, Env: env, Log: slog.New(slog.DiscardHandler), Stored: time.Now()})
}

func TestRegistry(t *testing.T) {
	r := Default()
	if s, err := r.Lookup("REQnCliCommand"); err != nil || s.Name != "REQCliCommand" {
		t.Errorf("alias lookup: %v %v", s.Name, err)
	}
	if _, err := r.Lookup("REQNope"); !errors.Is(err, ErrUnknownMethod) {
		t.Errorf("unknown: %v", err)
	}
	internal := ping
	internal.Name, internal.Internal = "REQInternalTest", true
	withInternal, err := NewRegistry([]Spec{ping, internal})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := withInternal.Resolve("REQInternalTest"); ok {
		t.Error("internal method offered to operators")
	}
	if _, _, ok := withInternal.All().Resolve("REQInternalTest"); !ok {
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

// Another node's output cannot drive the terminal REQToConsole prints on:
// escape sequences are shown, not sent.
func TestToConsoleShowsEscapes(t *testing.T) {
	env := testEnv(t)
	var out bytes.Buffer
	env.Stdout = &out
	m := &message.Message{Method: "REQToConsole", FromNode: "ship1", ID: "m1", Data: message.Data("ok\x1b]52;c;cm0gLXJmIC8=\x07\x1b[2J\rdone\n"),
		Reply: &message.ReplyInfo{Method: "REQCliCommand", Status: "succeeded"}}
	if _, err := run(t, toConsole, env, m); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.ContainsAny(got, "\x1b\x07\r") || !strings.HasSuffix(got, `ok\x1b]52;c;cm0gLXJmIC8=\x07\x1b[2J\x0ddone`+"\n") {
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

// A report cannot forge entries: its own lines are indented under its
// time, and escape sequences are shown, not kept.
func TestErrorLogEntriesCannotBeForged(t *testing.T) {
	env := testEnv(t)
	sent := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	m := &message.Message{Method: "REQErrorLog", FromNode: "ship2", SentAt: sent,
		Data: message.Data("failed\n2026-11-27T09:00:00Z ship1: forged\n\x1b[1A\x1b[2Khidden")}
	if _, err := run(t, errorLog, env, m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(env.Files.Dir(), ErrorLogDir, "ship2", ErrorLogFile))
	want := "2026-11-27T08:00:00Z ship2: failed\n    2026-11-27T09:00:00Z ship1: forged\n    \\x1b[1A\\x1b[2Khidden\n"
	if string(b) != want {
		t.Errorf("error log %q, want %q", b, want)
	}
}

// registryEnv is testEnv with a node registry on a fresh broker.
func registryEnv(t *testing.T) (*Env, *registry.Registry, context.Context) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := natstest.Context(t, 20*time.Second)
	assets, err := stream.Apply(ctx, js, stream.DefaultLayout(), nil)
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	reg := registry.New(assets.Nodes)
	env.Nodes = reg
	return env, reg, ctx
}

func TestHelloRecordsNodeInRegistry(t *testing.T) {
	env, reg, ctx := registryEnv(t)
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

// An operator's REQHello (no hello info) marks the node seen and keeps
// what its own hellos recorded; a goodbye takes the node offline at once;
// a second instance under the same name is flagged.
func TestHelloMergesAndFlags(t *testing.T) {
	env, reg, ctx := registryEnv(t)
	hi := func(data string) {
		t.Helper()
		if _, err := run(t, hello, env, &message.Message{Method: "REQHello", FromNode: "ship1", Data: message.Data(data)}); err != nil {
			t.Fatal(err)
		}
	}
	hi(`{"version":"1.2.3","methods":["REQPing"],"helloInterval":30000000000,"instance":"A"}`)
	hi(``) // an operator's REQHello
	n, err := reg.Get(ctx, "ship1")
	if err != nil || n.Version != "1.2.3" || len(n.Methods) != 1 || n.Instance != "A" {
		t.Fatalf("an operator's hello wiped the record: %+v %v", n, err)
	}
	hi(`{"version":"1.2.3","helloInterval":30000000000,"instance":"B"}`)
	if n, _ := reg.Get(ctx, "ship1"); n.Conflict == "" || !strings.Contains(n.Conflict, "A") || n.Instance != "B" {
		t.Errorf("two instances under one name not flagged: %+v", n)
	}
	hi(`{"version":"1.2.3","helloInterval":30000000000,"instance":"B","goodbye":true}`)
	n, _ = reg.Get(ctx, "ship1")
	if n.StoppedAt.IsZero() || n.Online(time.Now()) {
		t.Errorf("a node that said goodbye is online: %+v", n)
	}
	// After a goodbye, another instance may take the name.
	hi(`{"version":"1.2.4","helloInterval":30000000000,"instance":"C"}`)
	n, _ = reg.Get(ctx, "ship1")
	if n.Conflict != "" || !n.Online(time.Now()) || n.Instance != "C" {
		t.Errorf("a new instance after a goodbye: %+v", n)
	}
}

// Hellos are handled in parallel, so an older one can be handled after a
// newer one: it changes nothing (the broker's time of each decides), and
// hellos handled at once all land, the newest last. (Seen before: a hello
// saying the queue was not working yet overwrote the one after it that
// said it was, and a hello handled after a goodbye would have brought the
// node back online.)
func TestOlderHelloChangesNothing(t *testing.T) {
	env, reg, ctx := registryEnv(t)
	base := time.Now()
	say := func(stored time.Duration, data string) error {
		req := &Request{Msg: &message.Message{Method: "REQHello", FromNode: "ship1", Data: message.Data(data)},
			Attempt: 1, Env: env, Log: slog.New(slog.DiscardHandler), Stored: base.Add(stored)}
		_, err := hello.Handler(ctx, req)
		return err
	}
	if err := say(2*time.Second, `{"version":"1","instance":"A","queueOk":true}`); err != nil {
		t.Fatal(err)
	}
	if err := say(time.Second, `{"version":"1","instance":"A","queueOk":false}`); err != nil {
		t.Fatal(err)
	}
	if n, _ := reg.Get(ctx, "ship1"); !n.QueueOK {
		t.Errorf("an older hello overwrote a newer one: %+v", n)
	}
	if err := say(3*time.Second, `{"version":"1","instance":"A","queueOk":true,"goodbye":true}`); err != nil {
		t.Fatal(err)
	}
	if err := say(2500*time.Millisecond, `{"version":"1","instance":"A","queueOk":true}`); err != nil {
		t.Fatal(err)
	}
	if n, _ := reg.Get(ctx, "ship1"); n.StoppedAt.IsZero() {
		t.Errorf("a hello from before the goodbye brought the node back: %+v", n)
	}

	// Many at once, in any order: the newest wins.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			errs <- say(time.Duration(10+i)*time.Second, fmt.Sprintf(`{"version":"v%d","instance":"A"}`, i))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := reg.Get(ctx, "ship1"); n.Version != "v39" || !n.StoppedAt.IsZero() {
		t.Errorf("after 40 hellos at once: version %q, stopped %v; want v39, running", n.Version, n.StoppedAt)
	}
}
