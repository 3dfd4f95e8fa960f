package cli

import "github.com/spf13/cobra"

func newNodeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a steward node",
		Long: `A node runs the methods that messages name, sends their results back to
the sender, and says hello to the central node. "steward node run" runs one
until it is stopped.`,
		Example: `  steward node run --node-name ship1 --broker-address 10.0.0.1:4222`,
		Args:    groupArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newNodeRunCmd(a))
	return cmd
}
