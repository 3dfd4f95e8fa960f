package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/status"
)

// cancelFleet is the part of a fleet connection `steward cancel` uses.
type cancelFleet interface {
	Cancel(ctx context.Context, id string) ([]client.Cancelled, error)
}

func newCancelCmd(a *app) *cobra.Command {
	var wait time.Duration
	var output *outputFormat
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a message: take it away where it has not run yet, stop it where it runs",
		Long: `Cancel message ID on every node where it has not ended. A delivery whose node has
not taken it yet (the node is offline, or the message waits in its queue) is taken
away: its node will not run it, whenever it comes back (the cancel and the node's
claim exclude each other on the broker), and it is cancelled at once. A delivery
that runs is stopped on its node (REQOpProcessStop): it ends cancelled, with its
output so far. Deliveries that already ended are left as they are. It then waits
up to --timeout for the stopped ones to end and prints each delivery's state.`,
		Example: `  steward cancel 6cCQuqYgao4b5MMj3k5yco`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			cf, ok := fl.(cancelFleet)
			if !ok {
				return errors.New("this connection cannot cancel")
			}
			res, err := cf.Cancel(ctx, args[0])
			if errors.Is(err, client.ErrNotFound) {
				return exitError(ExitUsage, err)
			}
			if err != nil {
				return err
			}
			if wait > 0 {
				var ids []string
				for _, r := range res {
					if r.StopID != "" {
						ids = append(ids, r.StopID, args[0])
					}
				}
				if len(ids) > 0 {
					wctx, cancel := context.WithTimeout(ctx, wait)
					recs, _ := fl.Wait(wctx, ids, nil)
					cancel()
					for i, r := range res {
						for _, rec := range recs {
							if rec.ID == args[0] && rec.Node == r.Node && !rec.Reply && rec.Status.Terminal() {
								res[i].Outcome = string(rec.Status)
								if rec.Status == status.Cancelled {
									res[i].Detail = rec.Error
								}
							}
						}
					}
				}
			}
			if output.structured() {
				return writeOutput(a.stdout, *output, res)
			}
			t := newTable(a.stdout, "NODE", "OUTCOME", "DETAIL")
			for _, r := range res {
				t.row(r.Node, r.Outcome, oneLine(r.Detail, 100))
			}
			return t.flush()
		},
	}
	cmd.Flags().DurationVar(&wait, "timeout", 30*time.Second, "how long to wait for running deliveries to stop (0: do not wait)")
	output = addOutputFlag(cmd)
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}
