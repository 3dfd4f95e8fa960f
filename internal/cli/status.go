package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/status"
)

func newStatusCmd(a *app) *cobra.Command {
	var output *outputFormat
	var watch bool
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show the deliveries of a message",
		Long: `Show every delivery of message ID (as "steward send" printed it): one row
per node with its status, delivery attempt, exit code, when it last
changed, and the first line of its error or output; above them the
message's trace ID when its sender traced it (see it in Jaeger). -o json
prints the full records, output included.

--watch shows the deliveries again whenever one changes, until every one
has ended (and its reply was handled) or Ctrl-C. On a terminal each table
replaces the last; otherwise each is printed after a blank line.

The exit code is 0 when the message is found, 1 when it is not, 2 on a
usage error and 3 when the broker cannot be reached.`,
		Example: `  steward status 01JAY5G6ZB0D4Q6Y2M0K3V8N7C

  # The whole output of every delivery
  steward status 01JAY5G6ZB0D4Q6Y2M0K3V8N7C -o json | jq -r '.[].output'

  # Follow it until every delivery has ended
  steward status 01JAY5G6ZB0D4Q6Y2M0K3V8N7C --watch`,
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
			if watch {
				return a.watchStatus(ctx, fl, args[0], records, *output)
			}
			return a.writeStatus(a.stdout, records, *output)
		},
	}
	output = addOutputFlag(cmd)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "show the deliveries again whenever one changes, until every one has ended or Ctrl-C")
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}

// writeStatus shows a message's records on w, sorted by node (each
// delivery before its reply).
func (a *app) writeStatus(w io.Writer, records []*status.Record, output outputFormat) error {
	records = slices.Clone(records)
	slices.SortStableFunc(records, status.Compare)
	if output.structured() {
		return writeOutput(w, output, records)
	}
	// One message is one trace (docs/architecture.md#traces).
	for _, r := range records {
		if r.TraceID != "" {
			if _, err := fmt.Fprintf(w, "trace %s\n", r.TraceID); err != nil {
				return err
			}
			break
		}
	}
	t := newTable(w, "NODE", "STATUS", "ATTEMPT", "EXIT", "UPDATED", "ERROR/OUTPUT")
	now := a.now()
	for _, r := range records {
		attempt := "-"
		if r.Attempt > 0 {
			attempt = strconv.FormatUint(r.Attempt, 10)
		}
		node := r.Node
		if r.Reply {
			// How the reply method on the sending node handled the output.
			node = "  └ reply " + r.Method
		}
		t.row(node, string(r.Status), attempt, exitCell(r), age(now, r.UpdatedAt), oneLine(summary(r), cellWidth))
	}
	return t.flush()
}

// watchStatus shows message id's records, then again whenever one
// changes (changes that come together are shown once), until every
// delivery has ended and its reply was handled (client.Wait), or ctx ends
// or Ctrl-C (exit 0).
func (a *app) watchStatus(ctx context.Context, fl fleet, id string, records []*status.Record, output outputFormat) error {
	ctx, stop := watchContext(ctx)
	defer stop()
	sc := newScreen(a.stdout, output)
	var (
		mu      sync.Mutex
		latest  = map[string]*status.Record{}
		shown   = map[string][]byte{} // each record's JSON as last shown
		changed = make(chan struct{}, 1)
	)
	// set records r; it reports whether r differs from what was shown.
	set := func(r *status.Record) bool {
		b, err := json.Marshal(r)
		if err != nil {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		latest[r.Key()] = r
		if string(shown[r.Key()]) == string(b) {
			return false
		}
		shown[r.Key()] = b
		return true
	}
	draw := func() error {
		mu.Lock()
		list := make([]*status.Record, 0, len(latest))
		for _, r := range latest {
			list = append(list, r)
		}
		mu.Unlock()
		return sc.show(func(w io.Writer) error { return a.writeStatus(w, list, output) })
	}
	for _, r := range records {
		set(r)
	}
	if err := draw(); err != nil {
		return err
	}
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		_, err := fl.Wait(ctx, []string{id}, func(r *status.Record) {
			if set(r) {
				select {
				case changed <- struct{}{}:
				default: // a redraw is due already: it shows this one too
				}
			}
		})
		done <- result{err}
	}()
	for {
		select {
		case <-changed:
			if err := draw(); err != nil {
				return err
			}
		case res := <-done:
			select {
			case <-changed: // the last changes are not shown yet
				if err := draw(); err != nil {
					return err
				}
			default:
			}
			if res.err != nil {
				return watchError(ctx, fmt.Errorf("watch %s: %w", id, res.err))
			}
			return nil
		}
	}
}
