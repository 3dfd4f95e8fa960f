package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/procs"
)

// procsFleet is the part of a fleet connection `steward ps` uses.
type procsFleet interface {
	Processes(ctx context.Context, node string) (*procs.Snapshot, error)
}

// procsWatcher is the part of a fleet connection `steward ps --watch`
// uses.
type procsWatcher interface {
	WatchProcesses(ctx context.Context, node string) (<-chan *procs.Snapshot, error)
}

var (
	_ procsFleet   = (*client.Client)(nil)
	_ procsWatcher = (*client.Client)(nil)
)

func newPsCmd(a *app) *cobra.Command {
	var output *outputFormat
	var watch bool
	cmd := &cobra.Command{
		Use:   "ps NODE",
		Short: "Show a node's processes: the methods it serves and for whom, and what runs now",
		Long: `Show NODE's process table as the node last published it to the broker: each
request method it serves (running, for every node or for some senders, or
stopped) and each delivery it runs now. Change it with REQOpProcessStart and
REQOpProcessStop (or REQOpCommand); a node's configuration (methods, the
original's -startSubREQ… flags) sets where it starts. See docs/methods.md.

--watch shows the table again each time the node publishes a new one (a
delivery starts or ends, a method is started or stopped), until Ctrl-C; it
waits for a node that has published none yet. On a terminal each table
replaces the last; otherwise each is printed after a blank line.`,
		Example: `  steward ps ship1
  steward ps ship1 -o json | jq '.running[].id'
  steward ps ship1 --watch`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			if watch {
				return a.watchProcesses(cmd.Context(), fl, args[0], *output)
			}
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
			return a.writeProcesses(a.stdout, s, *output)
		},
	}
	output = addOutputFlag(cmd)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "show the table again each time the node publishes one, until Ctrl-C")
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}

// writeProcesses shows a process table on w.
func (a *app) writeProcesses(w io.Writer, s *procs.Snapshot, output outputFormat) error {
	if output.structured() {
		return writeOutput(w, output, s)
	}
	now := a.now()
	t := newTable(w, "METHOD / DELIVERY", "STATE", "FOR / FROM", "SINCE")
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
}

// watchProcesses shows node's process table each time the node publishes
// one, until ctx ends or Ctrl-C (exit 0). While there is none, standard
// error says so.
func (a *app) watchProcesses(ctx context.Context, fl fleet, node string, output outputFormat) error {
	pw, ok := fl.(procsWatcher)
	if !ok {
		return errors.New("this connection cannot watch process tables")
	}
	ctx, stop := watchContext(ctx)
	defer stop()
	updates, err := pw.WatchProcesses(ctx, node)
	if err != nil {
		return watchError(ctx, err)
	}
	sc := newScreen(a.stdout, output)
	for {
		select {
		case <-ctx.Done():
			return nil
		case s, ok := <-updates:
			if !ok {
				return watchError(ctx, fmt.Errorf("the watch of %s's process table ended", node))
			}
			if s == nil {
				fmt.Fprintf(a.stderr, "%s has published no process table (is it running, and as new as this steward?); waiting for one\n", node)
				continue
			}
			if err := sc.show(func(w io.Writer) error { return a.writeProcesses(w, s, output) }); err != nil {
				return err
			}
		}
	}
}
