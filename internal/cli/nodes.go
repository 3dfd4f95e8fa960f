package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
)

func newNodesCmd(a *app) *cobra.Command {
	var output *outputFormat
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes of the fleet",
		Long: `List the node registry that the central node keeps from the hellos nodes
send: each node's state (online while its last hello is younger than three
hello intervals), when it was last seen, its version and how many methods
it runs. -o json prints the full records.`,
		Example: `  steward nodes

  # The names of the nodes that are online
  steward nodes -o json | jq -r '.[].name'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			nodes, err := fl.Nodes(ctx)
			if errors.Is(err, client.ErrUnreachable) {
				return exitError(ExitUnreachable, err)
			}
			if err != nil {
				return fmt.Errorf("list nodes: %w", err)
			}
			if *output == outputJSON {
				return writeJSON(a.stdout, nodes)
			}
			t := newTable(a.stdout, "NODE", "STATE", "LAST SEEN", "VERSION", "METHODS")
			now := a.now()
			for _, n := range nodes {
				state := "offline"
				if n.Online(now) {
					state = "online"
				}
				version := n.Version
				if version == "" {
					version = "-"
				}
				t.row(n.Name, state, age(now, n.LastSeen), version, strconv.Itoa(len(n.Methods)))
			}
			return t.flush()
		},
	}
	output = addOutputFlag(cmd)
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}
