package cli

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/status"
)

func newStatusCmd(a *app) *cobra.Command {
	var output *outputFormat
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show the deliveries of a message",
		Long: `Show every delivery of message ID (as "steward send" printed it): one row
per node with its status, delivery attempt, exit code, when it last
changed, and the first line of its error or output. -o json prints the
full records, output included.

The exit code is 0 when the message is found, 1 when it is not, 2 on a
usage error and 3 when the broker cannot be reached.`,
		Example: `  steward status 01JAY5G6ZB0D4Q6Y2M0K3V8N7C

  # The whole output of every delivery
  steward status 01JAY5G6ZB0D4Q6Y2M0K3V8N7C -o json | jq -r '.[].output'`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			records, err := fl.Status(ctx, args[0])
			switch {
			case errors.Is(err, client.ErrNotFound):
				return exitError(ExitFailed, err)
			case errors.Is(err, client.ErrUnreachable):
				return exitError(ExitUnreachable, err)
			case err != nil:
				return fmt.Errorf("status of %s: %w", args[0], err)
			case len(records) == 0:
				return exitError(ExitFailed, fmt.Errorf("%w: %s", client.ErrNotFound, args[0]))
			}
			slices.SortFunc(records, func(x, y *status.Record) int { return strings.Compare(x.Node, y.Node) })
			if output.structured() {
				return writeOutput(a.stdout, *output, records)
			}
			t := newTable(a.stdout, "NODE", "STATUS", "ATTEMPT", "EXIT", "UPDATED", "ERROR/OUTPUT")
			now := a.now()
			for _, r := range records {
				attempt := "-"
				if r.Attempt > 0 {
					attempt = strconv.FormatUint(r.Attempt, 10)
				}
				t.row(r.Node, string(r.Status), attempt, exitCell(r), age(now, r.UpdatedAt), oneLine(summary(r), cellWidth))
			}
			return t.flush()
		},
	}
	output = addOutputFlag(cmd)
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}
