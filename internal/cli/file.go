package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/target"
)

// fileHeader opens every config.toml steward writes.
const fileHeader = `# steward configuration.
#
# "steward node run" creates this file with the defaults on first start and
# writes the flags it is given back here, so the next start without flags
# uses them. Precedence: flag > environment (STEWARD_*) > this file >
# default; environment values are never written here. Durations are Go
# durations ("30s", "24h") or a whole number of seconds.
`

// parseTOML parses config.toml, naming the line of a syntax error.
func parseTOML(path string, data []byte) (map[string]any, error) {
	raw := map[string]any{}
	if err := toml.Unmarshal(data, &raw); err != nil {
		if de, ok := errors.AsType[*toml.DecodeError](err); ok {
			row, col := de.Position()
			return nil, fmt.Errorf("%s:%d:%d: %w", path, row, col, err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return raw, nil
}

// writeBack writes config.toml for node run: when it does not exist (raw
// is nil) or some flags were set. The file then holds, per key, the flag
// the user set, else the file's value, else the default; durations are
// rewritten as Go durations, keys steward does not know are kept. It
// reports whether it wrote the file.
func writeBack(path string, raw map[string]any, flags *pflag.FlagSet) (bool, error) {
	set := map[string]any{}
	for _, s := range settings() {
		if f := flags.Lookup(s.key); f != nil && f.Changed {
			v, err := fileValue(s, f.Value.String())
			if err != nil {
				return false, exitError(ExitUsage, err)
			}
			set[s.key] = v
		}
	}
	if raw != nil && len(set) == 0 {
		return false, nil
	}
	values, extra := fileValues(raw, set)
	data, err := encodeConfigFile(values, extra)
	if err != nil {
		return false, err
	}
	if err := writeFileAtomic(path, data); err != nil {
		return false, err
	}
	return true, nil
}

// fileValues merges the flags that were set over the file's values over
// the defaults, one value per setting, and returns the keys of raw that
// are no setting apart.
func fileValues(raw, set map[string]any) (values, extra map[string]any) {
	values, extra = map[string]any{}, map[string]any{}
	def := config.Default()
	for _, s := range settings() {
		values[s.key] = defaultFileValue(field(def, s.key))
	}
	for k, v := range raw {
		s, ok := lookupSetting(k)
		if !ok {
			extra[k] = v
			continue
		}
		switch s.kind {
		case kindDuration:
			if d, err := convert(s, v); err == nil {
				v = config.FormatDuration(d.(time.Duration))
			}
		case kindLabels:
			// A table is written back as the one-line form.
			if l, err := convertLabels(v); err == nil {
				v = target.Labels(l).String()
			}
		}
		values[s.key] = v
	}
	for k, v := range set {
		values[k] = v
	}
	return values, extra
}

// defaultFileValue is how config.toml holds a default value.
func defaultFileValue(v any) any {
	switch x := v.(type) {
	case time.Duration:
		return config.FormatDuration(x)
	case int:
		return int64(x)
	case map[string]string:
		return target.Labels(x).String()
	}
	return v
}

// encodeConfigFile writes the settings in their order, each under its
// usage and environment variable, then the unknown keys as they were.
func encodeConfigFile(values, extra map[string]any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(fileHeader)
	for _, s := range settings() {
		v := values[s.key]
		switch v.(type) {
		case string, int, int64, float64, bool:
		default:
			// A table or array where a value belongs: keep it, Validate
			// will name the key.
			extra[s.key] = v
			continue
		}
		fmt.Fprintf(&b, "\n# %s.\n# Flag --%s, environment %s.\n", capitalize(s.usage), s.key, envName(s.key))
		line, err := tomlKeyValue(s.key, v)
		if err != nil {
			return nil, err
		}
		b.WriteString(line)
	}
	if len(extra) > 0 {
		data, err := toml.Marshal(extra)
		if err != nil {
			return nil, fmt.Errorf("encode unknown keys: %w", err)
		}
		b.WriteString("\n# Keys steward does not know, kept as they were.\n")
		b.Write(data)
	}
	return b.Bytes(), nil
}

// tomlKeyValue encodes one `key = value` line.
func tomlKeyValue(key string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return key + " = " + tomlQuote(x) + "\n", nil
	case int:
		return fmt.Sprintf("%s = %d\n", key, x), nil
	case int64:
		return fmt.Sprintf("%s = %d\n", key, x), nil
	}
	data, err := toml.Marshal(map[string]any{key: v})
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", key, err)
	}
	return string(data), nil
}

// tomlQuote writes s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// writeFileAtomic creates path's folder if needed and replaces path with
// data, so a crash never leaves half a config file.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create config folder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config.toml.*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
