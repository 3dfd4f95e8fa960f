package cli

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/registry"
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
			// Online is judged on the broker's clock, against which the
			// last-seen times were stored.
			now, err := fl.Now(ctx)
			if err != nil {
				fmt.Fprintf(a.stderr, "cannot read the broker's clock (%v); using this machine's\n", err)
				now = a.now()
			}
			t := newTable(a.stdout, "NODE", "STATE", "LAST SEEN", "VERSION", "METHODS")
			for _, n := range nodes {
				state := nodeState(n, now)
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

// nodeState is what the STATE column says of a node.
func nodeState(n *registry.Node, now time.Time) string {
	state := "offline"
	switch {
	case !n.StoppedAt.IsZero():
		state = "stopped"
	case n.Online(now):
		state = "online"
	}
	if n.Conflict != "" {
		state += ", name conflict"
	}
	if n.Online(now) && !n.QueueOK && n.Instance != "" {
		state += ", queue missing"
	}
	return state
}
