package cli

import "github.com/spf13/cobra"

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect steward's configuration",
		Long: `Inspect the configuration steward uses: flags, then STEWARD_* environment
variables, then config.toml in the config folder, then the defaults.`,
		Example: `  steward config show
  STEWARD_NODE_NAME=ship1 steward config show --config-folder /etc/steward`,
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newConfigShowCmd(a))
	return cmd
}
