package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/target"
)

// configFileName is the config file in the config folder.
const configFileName = "config.toml"

// loaded is the outcome of loading the configuration.
type loaded struct {
	cfg config.Config
	// path is config.toml; existed says whether it was there before
	// loading.
	path    string
	existed bool
	// sources tells, per key, where its value came from: "flag --x",
	// "env X", "file" or "default".
	sources map[string]string
	// unknown lists keys in the file that steward does not know.
	unknown []string
	// raw is the file as read (nil: none), for writeBack.
	raw map[string]any
}

// loadConfig fills a config.Config from, highest first: the flags of cmd
// that the user set, STEWARD_* environment variables, config.toml in the
// config folder, and config.Default(). It never writes the file: node run
// writes the flags back (writeBack) once the node runs with them.
//
// Errors are ExitErrors with ExitUsage. On an invalid configuration the
// returned loaded still holds what was read, for `config show`.
func loadConfig(cmd *cobra.Command) (*loaded, error) {
	flags := cmd.Flags()
	folder, folderSource := configFolder(flags)
	l := &loaded{
		path:    filepath.Join(folder, configFileName),
		sources: map[string]string{keyConfigFolder: folderSource},
	}
	data, raw, err := readConfigFile(l.path)
	if err != nil {
		return l, exitError(ExitUsage, err)
	}
	l.existed, l.raw = raw != nil, raw
	for k := range raw {
		if _, ok := lookupSetting(k); !ok {
			l.unknown = append(l.unknown, k)
		}
	}
	slices.Sort(l.unknown)

	v := viper.New()
	def := config.Default()
	for _, s := range settings() {
		v.SetDefault(s.key, field(def, s.key))
		if err := v.BindEnv(s.key, envName(s.key)); err != nil {
			return l, fmt.Errorf("bind %s: %w", envName(s.key), err)
		}
		if f := flags.Lookup(s.key); f != nil {
			if err := v.BindPFlag(s.key, f); err != nil {
				return l, fmt.Errorf("bind --%s: %w", s.key, err)
			}
		}
	}
	if l.existed {
		v.SetConfigType("toml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return l, exitError(ExitUsage, fmt.Errorf("%s: %w", l.path, err))
		}
	}

	l.cfg.ConfigFolder = folder
	var errs []error
	for _, s := range settings() {
		src := source(flags, v, s.key)
		l.sources[s.key] = src
		val, err := convert(s, v.Get(s.key))
		if err != nil {
			if src == "file" {
				src = "file " + l.path
			}
			errs = append(errs, fmt.Errorf("%s (from %s): %w", s.key, src, err))
			continue
		}
		setField(&l.cfg, s.key, val)
	}
	if err := errors.Join(errs...); err != nil {
		return l, exitError(ExitUsage, fmt.Errorf("%w: %w", config.ErrInvalid, err))
	}
	if err := l.cfg.Validate(); err != nil {
		return l, exitError(ExitUsage, err)
	}
	return l, nil
}

// configFolder returns the config folder and where it came from:
// --config-folder, else $CONFIG_FOLDER (the original's variable), else
// $STEWARD_CONFIG_FOLDER, else the default.
func configFolder(flags *pflag.FlagSet) (folder, src string) {
	if f := flags.Lookup(keyConfigFolder); f != nil && f.Changed {
		return f.Value.String(), "flag --" + keyConfigFolder
	}
	for _, name := range []string{"CONFIG_FOLDER", envName(keyConfigFolder)} {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			return v, "env " + name
		}
	}
	return config.Default().ConfigFolder, "default"
}

// source says where viper found key.
func source(flags *pflag.FlagSet, v *viper.Viper, key string) string {
	if f := flags.Lookup(key); f != nil && f.Changed {
		return "flag --" + key
	}
	if val, ok := os.LookupEnv(envName(key)); ok && val != "" {
		return "env " + envName(key)
	}
	if v.InConfig(key) {
		return "file"
	}
	return "default"
}

// readConfigFile reads and parses path. A missing file is no error: it
// returns nil data and a nil map.
func readConfigFile(path string) ([]byte, map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	raw, err := parseTOML(path, data)
	if err != nil {
		return nil, nil, err
	}
	return data, raw, nil
}

// lookupSetting finds the setting of a key, ignoring case as viper does.
func lookupSetting(key string) (setting, bool) {
	for _, s := range settings() {
		if strings.EqualFold(s.key, key) {
			return s, true
		}
	}
	return setting{}, false
}

// convert turns a value from a flag, the environment (strings), the file
// (TOML types) or the defaults into the Go type of s: string, int or
// time.Duration. Durations given as numbers are seconds.
func convert(s setting, val any) (any, error) {
	switch s.kind {
	case kindString:
		if x, ok := val.(string); ok {
			return x, nil
		}
		return nil, fmt.Errorf("%v: want a string", val)
	case kindInt:
		switch x := val.(type) {
		case int:
			return x, nil
		case int64:
			return int(x), nil
		case float64:
			if x == float64(int(x)) {
				return int(x), nil
			}
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err == nil {
				return n, nil
			}
		}
		return nil, fmt.Errorf("%v: want a whole number", val)
	case kindDuration:
		switch x := val.(type) {
		case time.Duration:
			return x, nil
		case string:
			return config.ParseDuration(x)
		case int:
			return config.Seconds(int64(x))
		case int64:
			return config.Seconds(x)
		case float64:
			if x == float64(int64(x)) {
				return config.Seconds(int64(x))
			}
		}
		return nil, fmt.Errorf("%w: %v: want seconds (200) or a Go duration (30s, 24h)", config.ErrDuration, val)
	case kindLabels:
		return convertLabels(val)
	}
	return nil, fmt.Errorf("unknown kind of setting %s", s.key)
}

// field returns the field of c whose mapstructure tag is key.
func field(c config.Config, key string) any {
	return fieldByTag(reflect.ValueOf(&c).Elem(), key).Interface()
}

// setField sets the field of c whose mapstructure tag is key; val has the
// field's type (as convert returns it).
func setField(c *config.Config, key string, val any) {
	f := fieldByTag(reflect.ValueOf(c).Elem(), key)
	f.Set(reflect.ValueOf(val).Convert(f.Type()))
}

// fieldByTag finds a struct field by its mapstructure tag. settings()
// names only existing tags (a test checks), so a miss is a programming
// error.
func fieldByTag(v reflect.Value, key string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("mapstructure") == key {
			return v.Field(i)
		}
	}
	panic("config.Config has no field tagged " + key)
}

// convertLabels reads labels as "key=value,key=value" (a flag, the
// environment, a string in the file) or as a TOML table of strings.
func convertLabels(val any) (map[string]string, error) {
	switch x := val.(type) {
	case nil:
		return nil, nil
	case map[string]string:
		return x, nil
	case string:
		l, err := target.ParseLabels(x)
		if len(l) == 0 {
			return nil, err
		}
		return l, err
	case map[string]any:
		l := map[string]string{}
		for k, v := range x {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("label %s = %v: want a string value", k, v)
			}
			l[k] = str
		}
		return l, nil
	}
	return nil, fmt.Errorf("%v: want key=value[,key=value] or a table of strings", val)
}
