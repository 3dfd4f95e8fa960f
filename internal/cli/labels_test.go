package cli

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"
)

// TestLabelsSetting: labels come from a flag, the environment, or
// config.toml as a string or a table, with the usual precedence; bad
// labels are refused; node run writes a flag's labels back as a string
// that the next start reads.
func TestLabelsSetting(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  string
		args []string
		want map[string]string
		bad  string
	}{
		{name: "none"},
		{name: "flag", args: []string{"--labels", "role=db, site=north"}, want: map[string]string{"role": "db", "site": "north"}},
		{name: "env", env: "role=web", want: map[string]string{"role": "web"}},
		{name: "file string", file: "labels = \"role=db,rack=r1.2\"\n", want: map[string]string{"role": "db", "rack": "r1.2"}},
		{name: "file table", file: "[labels]\nrole = \"db\"\nsite = \"south\"\n", want: map[string]string{"role": "db", "site": "south"}},
		{name: "flag over file", file: "labels = \"role=db\"\n", args: []string{"--labels", "role=web"}, want: map[string]string{"role": "web"}},
		{name: "bad character", args: []string{"--labels", "role=d b"}, bad: "may hold only letters, digits"},
		{name: "no value", args: []string{"--labels", "role"}, bad: "want key=value"},
		{name: "bad table key", file: "[labels]\n\"ro*le\" = \"db\"\n", bad: "may hold only letters, digits"},
		{name: "table value not a string", file: "[labels]\nrole = 3\n", bad: "want a string value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			dir := t.TempDir()
			t.Setenv("STEWARD_CONFIG_FOLDER", dir)
			if tt.env != "" {
				t.Setenv("STEWARD_LABELS", tt.env)
			}
			if tt.file != "" {
				writeFile(t, filepath.Join(dir, "config.toml"), tt.file)
			}
			l, err := load(t, false, tt.args...)
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("error %v, want one with %q", err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.want) == 0 && len(l.cfg.Labels) == 0 {
				return
			}
			if !maps.Equal(l.cfg.Labels, tt.want) {
				t.Fatalf("labels %v, want %v", l.cfg.Labels, tt.want)
			}
		})
	}
}

func TestLabelsWrittenBack(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	t.Setenv("STEWARD_CONFIG_FOLDER", dir)
	if _, err := load(t, true, "--labels", "site=north,role=db"); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, filepath.Join(dir, "config.toml"))
	if !strings.Contains(data, "\nlabels = \"role=db,site=north\"\n") {
		t.Fatalf("config.toml:\n%s", data)
	}
	l, err := load(t, true)
	if err != nil {
		t.Fatal(err)
	}
	if l.cfg.Labels["role"] != "db" || l.cfg.Labels["site"] != "north" {
		t.Fatalf("labels read back %v", l.cfg.Labels)
	}
	// A table in the file is kept as labels when the file is rewritten.
	writeFile(t, filepath.Join(dir, "config.toml"), "[labels]\nrole = \"web\"\n")
	if _, err := load(t, true, "--node-name", "ship1"); err != nil {
		t.Fatal(err)
	}
	if data := readFile(t, filepath.Join(dir, "config.toml")); !strings.Contains(data, "\nlabels = \"role=web\"\n") || strings.Contains(data, "[labels]") {
		t.Fatalf("config.toml:\n%s", data)
	}
}
