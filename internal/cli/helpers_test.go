package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/node"
)

// testNow is the clock of the test apps.
var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testEnv is a command tree's app with captured output. It refuses to run
// a node or reach a broker unless a test says otherwise.
type testEnv struct {
	app            *app
	stdout, stderr *bytes.Buffer
	// nodeCfg is the configuration node run was given.
	nodeCfg *config.Config
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	e.app = newApp(Options{Version: "v0.0.0-test", Stdin: strings.NewReader(""), Stdout: e.stdout, Stderr: e.stderr})
	e.app.now = func() time.Time { return testNow }
	e.app.runNode = func(_ context.Context, cfg config.Config, opts node.Options) error {
		e.nodeCfg = &cfg
		if opts.Opened != nil {
			opts.Opened() // a node that took its settings
		}
		return nil
	}
	e.app.connect = func(context.Context, config.Config) (fleet, error) {
		return nil, errors.New("no broker in tests")
	}
	return e
}

// run executes a fresh command tree of e's app with args.
func (e *testEnv) run(t testing.TB, args ...string) error {
	t.Helper()
	e.stdout.Reset()
	e.stderr.Reset()
	root := newRootCmd(e.app)
	root.SetArgs(args)
	return root.ExecuteContext(t.Context())
}

// clearEnv unsets every variable steward reads, for the test's duration.
func clearEnv(t testing.TB) {
	t.Helper()
	t.Setenv("CONFIG_FOLDER", "")
	t.Setenv(envName(keyConfigFolder), "")
	for _, s := range settings() {
		t.Setenv(envName(s.key), "")
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func wantCode(t testing.TB, err error, code int) {
	t.Helper()
	if got := ExitCode(err); got != code {
		t.Fatalf("exit code %d (error %v), want %d", got, err, code)
	}
}
