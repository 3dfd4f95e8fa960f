package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/node"
)

// loadedFile is a loaded configuration and whether writeBack created or
// changed its file.
type loadedFile struct {
	*loaded
	written bool
}

// load parses args as flags of a fresh `node run` command and loads the
// configuration from them; with write it writes the flags back, as node
// run does once the node has taken them.
func load(t testing.TB, write bool, args ...string) (*loadedFile, error) {
	t.Helper()
	cmd := newNodeRunCmd(newTestEnv(t).app)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	l, err := loadConfig(cmd)
	lf := &loadedFile{loaded: l}
	if write && err == nil {
		lf.written, err = writeBack(l.path, l.raw, cmd.Flags())
	}
	return lf, err
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want func(c *config.Config)
		src  map[string]string
	}{
		{
			name: "default",
			want: func(c *config.Config) {},
			src:  map[string]string{"node-name": "default", "hello-interval": "default", "default-message-retries": "default"},
		},
		{
			name: "file over default",
			file: "node-name = \"file-node\"\nhello-interval = 200\ndefault-message-retries = 5\nlog-level = \"debug\"\n",
			want: func(c *config.Config) {
				c.NodeName, c.HelloInterval, c.DefaultMessageRetries, c.LogLevel = "file-node", 200*time.Second, 5, "debug"
			},
			src: map[string]string{"node-name": "file", "hello-interval": "file", "default-message-retries": "file"},
		},
		{
			name: "env over file",
			file: "node-name = \"file-node\"\nhello-interval = \"1m\"\ndefault-message-retries = 5\nlog-level = \"debug\"\n",
			env:  map[string]string{"STEWARD_NODE_NAME": "env-node", "STEWARD_HELLO_INTERVAL": "45", "STEWARD_DEFAULT_MESSAGE_RETRIES": "7"},
			want: func(c *config.Config) {
				c.NodeName, c.HelloInterval, c.DefaultMessageRetries, c.LogLevel = "env-node", 45*time.Second, 7, "debug"
			},
			src: map[string]string{"node-name": "env STEWARD_NODE_NAME", "hello-interval": "env STEWARD_HELLO_INTERVAL", "log-level": "file"},
		},
		{
			name: "flag over env",
			file: "node-name = \"file-node\"\nhello-interval = \"1m\"\ndefault-message-retries = 5\n",
			env:  map[string]string{"STEWARD_NODE_NAME": "env-node", "STEWARD_HELLO_INTERVAL": "45", "STEWARD_DEFAULT_MESSAGE_RETRIES": "7"},
			args: []string{"--node-name", "flag-node", "--hello-interval=2h", "--default-message-retries=1"},
			want: func(c *config.Config) {
				c.NodeName, c.HelloInterval, c.DefaultMessageRetries = "flag-node", 2*time.Hour, 1
			},
			src: map[string]string{"node-name": "flag --node-name", "hello-interval": "flag --hello-interval", "default-message-retries": "flag --default-message-retries"},
		},
		{
			name: "flag over default only",
			args: []string{"--broker-address", "10.0.0.1:4222", "--default-message-timeout", "5"},
			want: func(c *config.Config) {
				c.BrokerAddress, c.DefaultMessageTimeout = "nats://10.0.0.1:4222", 5*time.Second
			},
			src: map[string]string{"broker-address": "flag --broker-address", "node-name": "default"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			dir := t.TempDir()
			if tt.file != "" {
				writeFile(t, filepath.Join(dir, configFileName), tt.file)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			l, err := load(t, false, append([]string{"--config-folder", dir}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			want := config.Default()
			want.ConfigFolder = dir
			tt.want(&want)
			if !reflect.DeepEqual(l.cfg, want) {
				t.Fatalf("config\n got %+v\nwant %+v", l.cfg, want)
			}
			for k, v := range tt.src {
				if l.sources[k] != v {
					t.Errorf("source of %s = %q, want %q", k, l.sources[k], v)
				}
			}
		})
	}
}

func TestConfigFolder(t *testing.T) {
	tests := []struct {
		name    string
		flag    string
		legacy  string // CONFIG_FOLDER
		steward string // STEWARD_CONFIG_FOLDER
		want    string
	}{
		{name: "default", want: "./etc"},
		{name: "STEWARD_CONFIG_FOLDER", steward: "/s", want: "/s"},
		{name: "CONFIG_FOLDER over STEWARD_CONFIG_FOLDER", legacy: "/l", steward: "/s", want: "/l"},
		{name: "flag over both", flag: "/f", legacy: "/l", steward: "/s", want: "/f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("CONFIG_FOLDER", tt.legacy)
			t.Setenv("STEWARD_CONFIG_FOLDER", tt.steward)
			cmd := newConfigShowCmd(newTestEnv(t).app)
			var args []string
			if tt.flag != "" {
				args = []string{"--config-folder", tt.flag}
			}
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			got, _ := configFolder(cmd.Flags())
			if got != tt.want {
				t.Fatalf("config folder %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFirstStartCreatesFileWithDefaults(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "new", "etc")
	l, err := load(t, true, "--config-folder", dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.existed || !l.written {
		t.Fatalf("existed %v, written %v; want a new file", l.existed, l.written)
	}
	path := filepath.Join(dir, configFileName)
	raw, err := parseTOML(path, []byte(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	def := config.Default()
	want := map[string]any{}
	for _, s := range settings() {
		want[s.key] = defaultFileValue(field(def, s.key))
	}
	if !reflect.DeepEqual(raw, want) {
		t.Fatalf("file holds\n%v\nwant\n%v", raw, want)
	}
	if got := raw["default-delivery-deadline"]; got != "24h" {
		t.Fatalf("durations are written as Go durations: got %v", got)
	}

	// A second start without flags leaves the file alone.
	before := readFile(t, path)
	l, err = load(t, true, "--config-folder", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !l.existed || l.written || readFile(t, path) != before {
		t.Fatalf("second start rewrote the file (existed %v, written %v)", l.existed, l.written)
	}
}

func TestFlagsWrittenBackEnvNot(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, configFileName)
	writeFile(t, path, `# my notes
node-name = "old"
hello-interval = 200
concurrency = 8
future-key = "kept"

[future-table]
a = 1
`)
	t.Setenv("STEWARD_LOG_LEVEL", "debug")
	t.Setenv("STEWARD_DATA_FOLDER", "/env/data")
	l, err := load(t, true, "--config-folder", dir, "--node-name", "ship1", "--default-message-timeout=5", "--broker-address", "10.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	if !l.written {
		t.Fatal("flags were not written back")
	}
	if l.cfg.LogLevel != "debug" || l.cfg.DataFolder != "/env/data" {
		t.Fatalf("env not applied: %+v", l.cfg)
	}
	raw, err := parseTOML(path, []byte(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"node-name":               "ship1",         // flag
		"default-message-timeout": "5s",            // flag, seconds written as a Go duration
		"broker-address":          "10.0.0.1:4222", // flag, as given
		"hello-interval":          "3m20s",         // file, rewritten as a Go duration
		"concurrency":             int64(8),        // file
		"log-level":               "info",          // env not written: default
		"data-folder":             "./data",        // env not written: default
		"future-key":              "kept",          // unknown keys kept
		"future-table":            map[string]any{"a": int64(1)},
	}
	for k, v := range want {
		if !reflect.DeepEqual(raw[k], v) {
			t.Errorf("file %s = %#v, want %#v", k, raw[k], v)
		}
	}
	if !reflect.DeepEqual(l.unknown, []string{"future-key", "future-table"}) {
		t.Errorf("unknown keys %v", l.unknown)
	}

	// The next start without flags (and without the env) uses the flags.
	clearEnv(t)
	l, err = load(t, true, "--config-folder", dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.cfg.NodeName != "ship1" || l.cfg.DefaultMessageTimeout != 5*time.Second || l.cfg.HelloInterval != 200*time.Second {
		t.Fatalf("next start: %+v", l.cfg)
	}
	if l.cfg.LogLevel != "info" {
		t.Fatalf("log level %q: env value leaked into the file", l.cfg.LogLevel)
	}
}

func TestLoadWithoutWriteNeverCreatesFile(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "etc")
	l, err := load(t, false, "--config-folder", dir, "--node-name", "ship1")
	if err != nil {
		t.Fatal(err)
	}
	if l.cfg.NodeName != "ship1" || l.written {
		t.Fatalf("got %+v, written %v", l.cfg, l.written)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("config folder created: %v", err)
	}
}

// A node that refuses its settings at start (its broker would listen open,
// a key file is missing: checks node.Run makes, not config.Validate)
// leaves config.toml as it was; one that starts gets its flags written.
func TestNodeRunWritesFlagsOnlyOnceRunning(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "etc")
	file := filepath.Join(dir, configFileName)
	e := newTestEnv(t)
	e.app.runNode = func(context.Context, config.Config, node.Options) error {
		return errors.New("broker-listen 0.0.0.0:4222 without authentication")
	}
	if err := e.run(t, "node", "run", "--config-folder", dir, "--broker-listen", "0.0.0.0:4222"); err == nil {
		t.Fatal("the node's refusal was not returned")
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a node that refused to start created its config file: %v", err)
	}
	writeFile(t, file, "node-name = \"mine\"\n")
	_ = e.run(t, "node", "run", "--config-folder", dir, "--broker-listen", "0.0.0.0:4222")
	if got := readFile(t, file); got != "node-name = \"mine\"\n" {
		t.Fatalf("a node that refused to start changed its config file:\n%s", got)
	}
	e = newTestEnv(t) // its node starts
	if err := e.run(t, "node", "run", "--config-folder", dir, "--broker-listen", "127.0.0.1:4333"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, file); !strings.Contains(got, `broker-listen = "127.0.0.1:4333"`) || !strings.Contains(got, `node-name = "mine"`) {
		t.Fatalf("a node that started did not get its flag written:\n%s", got)
	}
}

func TestClientCommandsDoNotTouchFile(t *testing.T) {
	clearEnv(t)
	msgs := filepath.Join(t.TempDir(), "msg.json")
	writeFile(t, msgs, `{"toNode":"ship1","method":"REQPing"}`)
	for _, args := range [][]string{
		{"config", "show", "--node-name", "ship1"},
		{"send", "-f", msgs, "--node-name", "ship1"},
		{"status", "01ABC", "--node-name", "ship1"},
		{"nodes", "--node-name", "ship1"},
	} {
		t.Run(args[0], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "etc")
			e := newTestEnv(t)
			_ = e.run(t, append(args, "--config-folder", dir)...)
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%v created the config folder: %v", args, err)
			}

			// An existing file is read and left as it is.
			file := filepath.Join(dir, configFileName)
			writeFile(t, file, "node-name = \"mine\"\n")
			_ = e.run(t, append(args, "--config-folder", dir, "--node-name=other")...)
			if got := readFile(t, file); got != "node-name = \"mine\"\n" {
				t.Fatalf("%v changed the file:\n%s", args, got)
			}
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want string
	}{
		{name: "bad node name flag", args: []string{"--node-name", "ship 1"}, want: "node-name"},
		{name: "bad duration in file", file: "hello-interval = \"soon\"\n", want: "hello-interval (from file "},
		{name: "bad duration in env", env: map[string]string{"STEWARD_DEFAULT_MESSAGE_TIMEOUT": "1.5"}, want: "env STEWARD_DEFAULT_MESSAGE_TIMEOUT"},
		{name: "bad int in env", env: map[string]string{"STEWARD_CONCURRENCY": "many"}, want: "concurrency"},
		{name: "string as int in file", file: "concurrency = \"many\"\n", want: "concurrency"},
		{name: "bad toml", file: "node-name = \n", want: "config.toml:1:"},
		{name: "validation", file: "log-level = \"loud\"\n", want: "log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, configFileName)
			if tt.file != "" {
				writeFile(t, path, tt.file)
			}
			_, err := load(t, true, append([]string{"--config-folder", dir}, tt.args...)...)
			wantCode(t, err, ExitUsage)
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if tt.file == "" {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("invalid configuration created the file: %v", err)
				}
			} else if readFile(t, path) != tt.file {
				t.Fatal("invalid configuration rewrote the file")
			}
		})
	}
}

func TestInvalidConfigExitCode(t *testing.T) {
	clearEnv(t)
	e := newTestEnv(t)
	err := e.run(t, "node", "run", "--config-folder", t.TempDir(), "--log-level", "loud")
	wantCode(t, err, ExitUsage)
	if e.nodeCfg != nil {
		t.Fatal("node ran with an invalid configuration")
	}
}

func TestSettingsMatchConfig(t *testing.T) {
	typ := reflect.TypeFor[config.Config]()
	kinds := map[reflect.Type]valueKind{
		reflect.TypeFor[string]():            kindString,
		reflect.TypeFor[int]():               kindInt,
		reflect.TypeFor[time.Duration]():     kindDuration,
		reflect.TypeFor[map[string]string](): kindLabels,
	}
	seen := map[string]bool{}
	for _, s := range settings() {
		f, ok := fieldOf(typ, s.key)
		if !ok {
			t.Errorf("setting %s has no config.Config field", s.key)
			continue
		}
		if kinds[f.Type] != s.kind {
			t.Errorf("setting %s: kind %d, field type %s", s.key, s.kind, f.Type)
		}
		seen[s.key] = true
	}
	for f := range typ.Fields() {
		tag := f.Tag.Get("mapstructure")
		if tag != keyConfigFolder && tag != "-" && !seen[tag] {
			t.Errorf("config.Config field %s (%s) is no setting", f.Name, tag)
		}
	}
}

func fieldOf(typ reflect.Type, tag string) (reflect.StructField, bool) {
	for f := range typ.Fields() {
		if f.Tag.Get("mapstructure") == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func TestConvert(t *testing.T) {
	dur := setting{key: "d", kind: kindDuration}
	num := setting{key: "n", kind: kindInt}
	str := setting{key: "s", kind: kindString}
	tests := []struct {
		name    string
		s       setting
		in      any
		want    any
		wantErr bool
	}{
		{"toml int seconds", dur, int64(200), 200 * time.Second, false},
		{"flag int seconds", dur, "200", 200 * time.Second, false},
		{"go duration", dur, "30s", 30 * time.Second, false},
		{"hour", dur, "1h", time.Hour, false},
		{"default", dur, 5 * time.Second, 5 * time.Second, false},
		{"float seconds", dur, float64(3), 3 * time.Second, false},
		{"fraction", dur, 1.5, nil, true},
		{"invalid", dur, "soon", nil, true},
		{"bool", dur, true, nil, true},
		{"int", num, int64(4), 4, false},
		{"int from env", num, " 4 ", 4, false},
		{"int invalid", num, "four", nil, true},
		{"string", str, "x", "x", false},
		{"string from int", str, int64(4), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(tt.s, tt.in)
			if tt.wantErr != (err != nil) || (err == nil && got != tt.want) {
				t.Fatalf("convert(%v) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDurationValue(t *testing.T) {
	d := newDurationValue(24 * time.Hour)
	if d.String() != "24h" || d.Type() != "duration" {
		t.Fatalf("String %q Type %q", d.String(), d.Type())
	}
	for in, want := range map[string]time.Duration{"200": 200 * time.Second, "30s": 30 * time.Second, "1h": time.Hour} {
		if err := d.Set(in); err != nil || time.Duration(*d) != want {
			t.Fatalf("Set(%q) = %v, value %v, want %v", in, err, time.Duration(*d), want)
		}
	}
	if err := d.Set("x"); !errors.Is(err, config.ErrDuration) {
		t.Fatalf("Set(x) = %v, want ErrDuration", err)
	}
}

func TestTOMLQuote(t *testing.T) {
	for _, s := range []string{"plain", `a"b`, `c:\dir`, "tab\there", "line\nbreak", "bell\a", "ünïcode"} {
		line := tomlQuote(s)
		raw, err := parseTOML("x", []byte("k = "+line))
		if err != nil || raw["k"] != s {
			t.Errorf("%q encoded as %s, read back %q, %v", s, line, raw["k"], err)
		}
	}
}
