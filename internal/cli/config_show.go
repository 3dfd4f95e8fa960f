package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/config"
)

func newConfigShowCmd(a *app) *cobra.Command {
	var output *outputFormat
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration and where each value comes from",
		Long: `Print the configuration a node started with the same flags and environment
would use, as TOML (the format of config.toml) or JSON, with where each
value comes from: a flag, an environment variable, the file or the default.

"config show" reads config.toml but never creates or changes it. An
invalid configuration is printed, then reported, with exit code 2.`,
		Example: `  steward config show

  # What a node started like this would use
  STEWARD_LOG_LEVEL=debug steward config show --node-name ship1 -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(cmd)
			a.warnUnknown(l)
			if err != nil && !errors.Is(err, config.ErrInvalid) {
				return err
			}
			var werr error
			if output.structured() {
				werr = writeOutput(a.stdout, *output, showJSON(l))
			} else {
				werr = showTOML(a.stdout, l)
			}
			return errors.Join(werr, err)
		},
	}
	output = addOutputFlag(cmd)
	addConfigFlags(cmd.Flags())
	return cmd
}

// effective is the configuration of config show as config.toml holds it.
type effective struct {
	ConfigFolder string            `json:"configFolder"`
	File         string            `json:"file"`
	FileFound    bool              `json:"fileFound"`
	Config       map[string]any    `json:"config"`
	Sources      map[string]string `json:"sources"`
}

func showJSON(l *loaded) effective {
	e := effective{
		ConfigFolder: l.cfg.ConfigFolder,
		File:         l.path,
		FileFound:    l.existed,
		Config:       map[string]any{},
		Sources:      l.sources,
	}
	for _, s := range settings() {
		e.Config[s.key] = defaultFileValue(field(l.cfg, s.key))
	}
	return e
}

func showTOML(w io.Writer, l *loaded) error {
	found := ""
	if !l.existed {
		found = " (not found)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Effective configuration (flag > environment > file > default).\n")
	fmt.Fprintf(&b, "# Config folder: %s (%s)\n", l.cfg.ConfigFolder, l.sources[keyConfigFolder])
	fmt.Fprintf(&b, "# File: %s%s\n\n", l.path, found)
	var lines []string
	width := 0
	for _, s := range settings() {
		line, err := tomlKeyValue(s.key, defaultFileValue(field(l.cfg, s.key)))
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		lines = append(lines, line)
		width = max(width, len(line))
	}
	for i, s := range settings() {
		fmt.Fprintf(&b, "%-*s  # %s\n", width, lines[i], l.sources[s.key])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
