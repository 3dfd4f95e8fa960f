package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/display"
)

// resultsFleet is the part of a fleet connection `steward results` uses.
type resultsFleet interface {
	Results(ctx context.Context, id string, follow bool, fn func(client.Output)) error
}

func newResultsCmd(a *app) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "results ID",
		Short: "Print the output the nodes sent back for a message (live with --follow)",
		Long: `Print the output every node sent back for message ID, as the replies on the
broker hold it: the lines of a streaming method (REQCliCommandCont, REQTailFile)
as they came, or a method's whole output. With more than one node each line
starts with its node's name. With --follow it waits for more until every node's
final reply came (Ctrl-C stops it). What a reply method did with the output
(the files it wrote) is not read here. Output is shown with control characters
as escapes; status lines go to standard error.`,
		Example: `  steward send -f examples/cli-command-cont.json      # prints the ID
  steward results 6cCQuqYgao4b5MMj3k5yco --follow`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			rf, ok := fl.(resultsFleet)
			if !ok {
				return errors.New("this connection cannot read results")
			}
			nodes := map[string]bool{}
			prefix := func(node string) string { return "" }
			if recs, err := fl.Status(cmd.Context(), args[0]); err == nil {
				for _, r := range recs {
					if !r.Reply {
						nodes[r.Node] = true
					}
				}
				if len(nodes) > 1 {
					prefix = func(node string) string { return node + ": " }
				}
			}
			err = rf.Results(cmd.Context(), args[0], follow, func(o client.Output) {
				for _, line := range splitLines(o.Data) {
					fmt.Fprintf(a.stdout, "%s%s\n", prefix(o.Node), display.String(line))
				}
				if o.Final {
					msg := o.Status
					if o.Error != "" {
						msg += ": " + o.Error
					}
					fmt.Fprintf(a.stderr, "--- %s: %s\n", o.Node, display.String(msg))
				}
			})
			if errors.Is(err, client.ErrNotFound) {
				return exitError(ExitUsage, err)
			}
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "F", false, "wait for more output until every node's final reply came")
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}

// splitLines cuts data into lines without their newlines.
func splitLines(data []byte) []string {
	var out []string
	for len(data) > 0 {
		i := 0
		for i < len(data) && data[i] != '\n' {
			i++
		}
		out = append(out, string(data[:i]))
		if i < len(data) {
			i++
		}
		data = data[i:]
	}
	return out
}
