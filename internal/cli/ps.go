package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/procs"
)

// procsFleet is the part of a fleet connection `steward ps` uses.
type procsFleet interface {
	Processes(ctx context.Context, node string) (*procs.Snapshot, error)
}

func newPsCmd(a *app) *cobra.Command {
	var output *outputFormat
	cmd := &cobra.Command{
		Use:   "ps NODE",
		Short: "Show a node's processes: the methods it serves and for whom, and what runs now",
		Long: `Show NODE's process table as the node last published it to the broker: each
request method it serves (running, for every node or for some senders, or
stopped) and each delivery it runs now. Change it with REQOpProcessStart and
REQOpProcessStop (or REQOpCommand); a node's configuration (methods, the
original's -startSubREQ… flags) sets where it starts. See docs/methods.md.`,
		Example: `  steward ps ship1
  steward ps ship1 -o json | jq '.running[].id'`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			pf, ok := fl.(procsFleet)
			if !ok {
				return errors.New("this connection cannot read process tables")
			}
			s, err := pf.Processes(cmd.Context(), args[0])
			if errors.Is(err, client.ErrNotFound) {
				return exitError(ExitUsage, err)
			}
			if err != nil {
				return err
			}
			if output.structured() {
				return writeOutput(a.stdout, *output, s)
			}
			now := a.now()
			t := newTable(a.stdout, "METHOD / DELIVERY", "STATE", "FOR / FROM", "SINCE")
			for _, m := range s.Methods {
				state, whom := "stopped", "-"
				if m.Running {
					state, whom = "running", "every node"
					if len(m.Senders) > 0 {
						whom = strings.Join(m.Senders, ", ")
					}
				}
				t.row(m.Name, state, whom, age(now, m.Since))
			}
			for _, r := range s.Running {
				t.row("  "+r.ID+" ("+r.Method+")", "running", r.From, age(now, r.Started))
			}
			return t.flush()
		},
	}
	output = addOutputFlag(cmd)
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}
