package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/methods"
)

func TestMethods(t *testing.T) {
	e := newTestEnv(t)
	if err := e.run(t, "methods"); err != nil {
		t.Fatal(err)
	}
	out := e.stdout.String()
	if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "REQCliCommand") || !strings.Contains(out, "command") {
		t.Fatalf("methods printed\n%s", out)
	}
	for _, s := range methods.Default().Specs() {
		if s.Internal && strings.Contains(out, s.Name+" ") {
			t.Errorf("internal method %s listed", s.Name)
		}
	}
	if err := e.run(t, "methods", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(e.stdout.Bytes(), &rows); err != nil || len(rows) == 0 {
		t.Fatalf("json: %v\n%s", err, e.stdout)
	}
}

func TestConfigShow(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, configFileName), "concurrency = 9\nhello-interval = 120\n")
	t.Setenv("STEWARD_NODE_NAME", "ship7")
	e := newTestEnv(t)
	if err := e.run(t, "config", "show", "--config-folder", dir, "--log-level", "debug"); err != nil {
		t.Fatal(err)
	}
	out := e.stdout.String()
	for _, want := range []string{
		"# Config folder: " + dir + " (flag --config-folder)",
		`node-name = "ship7"`, "# env STEWARD_NODE_NAME",
		"concurrency = 9", "# file",
		`hello-interval = "2m"`,
		`log-level = "debug"`, "# flag --log-level",
		`central-node-name = "central"`, "# default",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
	// The output is TOML that steward reads back (comments aside).
	if _, err := parseTOML("show", e.stdout.Bytes()); err != nil {
		t.Fatalf("config show is not TOML: %v", err)
	}

	if err := e.run(t, "config", "show", "-o", "json", "--config-folder", dir); err != nil {
		t.Fatal(err)
	}
	var got effective
	if err := json.Unmarshal(e.stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Config["node-name"] != "ship7" || got.Sources["concurrency"] != "file" || !got.FileFound || got.Config["hello-interval"] != "2m" {
		t.Fatalf("json %+v", got)
	}
}

func TestConfigShowInvalid(t *testing.T) {
	clearEnv(t)
	e := newTestEnv(t)
	err := e.run(t, "config", "show", "--config-folder", t.TempDir(), "--concurrency", "0")
	wantCode(t, err, ExitUsage)
	if !strings.Contains(e.stdout.String(), "concurrency = 0") {
		t.Fatalf("invalid configuration not shown:\n%s", e.stdout)
	}
}

func TestUnknownKeysWarned(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, configFileName), "nodeName = \"x\"\n")
	e := newTestEnv(t)
	if err := e.run(t, "config", "show", "--config-folder", dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.stderr.String(), "ignoring unknown keys: nodeName") {
		t.Fatalf("stderr %q", e.stderr)
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{"\n\nfirst\nsecond", "first…"},
		{"a\tb\r\n", "a b"},
		{strings.Repeat("x", 70), strings.Repeat("x", 59) + "…"},
		{strings.Repeat("é", 60), strings.Repeat("é", 60)},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in, cellWidth); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{0, "now"},
		{-time.Minute, "now"},
		{12 * time.Second, "12s ago"},
		{5 * time.Minute, "5m ago"},
		{3 * time.Hour, "3h ago"},
		{50 * time.Hour, "2d ago"},
	}
	for _, tt := range tests {
		if got := age(testNow, testNow.Add(-tt.ago)); got != tt.want {
			t.Errorf("age(%v) = %q, want %q", tt.ago, got, tt.want)
		}
	}
	if got := age(testNow, time.Time{}); got != "never" {
		t.Errorf("age(zero) = %q", got)
	}
}
