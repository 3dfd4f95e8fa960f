package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/target"
)

// defaultNodeExpiry is how long a node may go unseen before steward nodes
// hides it (--node-expiry, STEWARD_NODE_EXPIRY).
const defaultNodeExpiry = target.DefaultExpiry

// envNodeExpiry sets --node-expiry when the flag is not given.
const envNodeExpiry = "STEWARD_NODE_EXPIRY"

func newNodesCmd(a *app) *cobra.Command {
	var output *outputFormat
	var watch bool
	expiry := newDurationValue(defaultNodeExpiry)
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes of the fleet",
		Long: `List the node registry that the central node keeps from the hellos nodes
send: each node's state (online while its last hello is younger than three
hello intervals), when it was last seen, its version, how many methods it
runs and its labels. -o json prints the full records.

Nodes not seen for longer than --node-expiry (default 30 days; also
$STEWARD_NODE_EXPIRY; 0 shows every node) are left out, and standard error
says how many; "steward nodes rm --expired" removes them from the registry.

--watch keeps the list on screen: it is shown again whenever the registry
changes (a hello, a goodbye, a node removed) and when a node's hellos are
overdue (it is offline now), until Ctrl-C. On a terminal each list
replaces the last; otherwise each is printed after a blank line.`,
		Example: `  steward nodes

  # The names of the nodes that are online
  steward nodes -o json | jq -r '.[].name'

  # Every node, however long ago it was seen
  steward nodes --node-expiry 0

  # A live view
  steward nodes --watch`,
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keep, err := nodeExpiry(cmd, expiry)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			v := &nodesView{a: a, output: *output, keep: keep}
			if watch {
				return a.watchNodes(ctx, fl, v)
			}
			nodes, now, err := a.listNodes(ctx, fl)
			if err != nil {
				return err
			}
			return v.write(a.stdout, nodes, now)
		},
	}
	output = addOutputFlag(cmd)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "keep the list on screen and show it again whenever the registry changes, until Ctrl-C")
	cmd.PersistentFlags().Var(expiry, "node-expiry",
		"hide nodes not seen for longer than this (seconds or a Go duration; 0: show all; $"+envNodeExpiry+")")
	addConfigFlags(cmd.Flags(), clientKeys()...)
	cmd.AddCommand(newNodesRmCmd(a, expiry))
	return cmd
}

func newNodesRmCmd(a *app, expiry *durationValue) *cobra.Command {
	var force, expired bool
	cmd := &cobra.Command{
		Use:   "rm NODE...",
		Short: "Remove nodes from the node registry",
		Long: `Remove the registry records of the nodes named, or with --expired of every
node not seen for longer than --node-expiry. A node that is online is
refused unless --force: its next hello would bring it back anyway. Nothing
else of the node is touched: messages waiting for it keep waiting until
their deadline.

The exit code is 0 when every node was removed, 1 when some was not (not in
the registry, online, or it said hello meanwhile), 2 on a usage error and 3
when the broker cannot be reached.`,
		Example: `  # A node that was renamed or retired
  steward nodes rm shp1

  # Every node not seen for 90 days
  steward nodes rm --expired --node-expiry 2160h`,
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			switch {
			case expired && len(args) > 0:
				return errors.New("give node names or --expired, not both")
			case !expired && len(args) == 0:
				return errors.New("give the nodes to remove, or --expired")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			keep, err := nodeExpiry(cmd, expiry)
			if err != nil {
				return err
			}
			if expired && keep <= 0 {
				return usageError(cmd, errors.New("--expired needs a --node-expiry above 0"))
			}
			ctx := cmd.Context()
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			nodes, now, err := a.listNodes(ctx, fl)
			if err != nil {
				return err
			}
			var targets []*registry.Node
			failed := 0
			if expired {
				_, targets = splitExpired(nodes, now, keep)
			} else {
				byName := map[string]*registry.Node{}
				for _, n := range nodes {
					byName[n.Name] = n
				}
				for _, name := range args {
					n, ok := byName[name]
					switch {
					case !ok:
						failed++
						fmt.Fprintf(a.stderr, "%s: not in the node registry\n", name)
					case n.Online(now) && !force:
						failed++
						fmt.Fprintf(a.stderr, "%s: online (last seen %s); --force removes it, until its next hello\n", name, age(now, n.LastSeen))
					default:
						targets = append(targets, n)
					}
				}
			}
			total := len(args)
			if expired {
				total = len(targets)
			}
			for _, n := range targets {
				err := fl.RemoveNode(ctx, n)
				switch {
				case err == nil:
					fmt.Fprintf(a.stdout, "removed %s (last seen %s)\n", n.Name, age(now, n.LastSeen))
				case errors.Is(err, registry.ErrChanged):
					failed++
					fmt.Fprintf(a.stderr, "%s: said hello meanwhile, kept\n", n.Name)
				case errors.Is(err, jetstream.ErrKeyNotFound):
					failed++
					fmt.Fprintf(a.stderr, "%s: not in the node registry\n", n.Name)
				case errors.Is(err, client.ErrUnreachable):
					return exitError(ExitUnreachable, err)
				default:
					return fmt.Errorf("remove %s: %w", n.Name, err)
				}
			}
			if failed > 0 {
				return exitError(ExitFailed, fmt.Errorf("%d of %d nodes not removed", failed, total))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove nodes that are online too")
	cmd.Flags().BoolVar(&expired, "expired", false, "remove every node not seen for longer than --node-expiry")
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}

// listNodes reads the registry and the broker's clock, against which the
// last-seen times were stored and online is judged.
func (a *app) listNodes(ctx context.Context, fl fleet) ([]*registry.Node, time.Time, error) {
	nodes, err := fl.Nodes(ctx)
	if errors.Is(err, client.ErrUnreachable) {
		return nil, time.Time{}, exitError(ExitUnreachable, err)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list nodes: %w", err)
	}
	now, err := fl.Now(ctx)
	if err != nil {
		fmt.Fprintf(a.stderr, "cannot read the broker's clock (%v); using this machine's\n", err)
		now = a.now()
	}
	return nodes, now, nil
}

// nodeExpiry is --node-expiry, else $STEWARD_NODE_EXPIRY, else the
// default.
func nodeExpiry(cmd *cobra.Command, flag *durationValue) (time.Duration, error) {
	if f := cmd.Flags().Lookup("node-expiry"); f != nil && f.Changed {
		if *flag < 0 {
			return 0, usageError(cmd, errors.New("--node-expiry: must be 0 or more"))
		}
		return time.Duration(*flag), nil
	}
	if env := os.Getenv(envNodeExpiry); env != "" {
		d, err := config.ParseDuration(env)
		if err != nil || d < 0 {
			return 0, usageError(cmd, fmt.Errorf("%s=%q: not a duration of 0 or more", envNodeExpiry, env))
		}
		return d, nil
	}
	return time.Duration(*flag), nil
}

// splitExpired separates the nodes not seen for longer than keep (at now,
// the broker's time) from the others. keep 0 expires nothing.
func splitExpired(nodes []*registry.Node, now time.Time, keep time.Duration) (shown, expired []*registry.Node) {
	for _, n := range nodes {
		if keep > 0 && now.Sub(n.LastSeen) > keep {
			expired = append(expired, n)
			continue
		}
		shown = append(shown, n)
	}
	return shown, expired
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

// longDuration writes whole days as days: "30 days", else "36h".
func longDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%d days", d/day)
	}
	return config.FormatDuration(d)
}

// nodesView writes what steward nodes shows of a registry.
type nodesView struct {
	a      *app
	output outputFormat
	keep   time.Duration // --node-expiry
	// hidden is how many nodes the last view left out as expired: the
	// note on standard error is repeated only when it changes.
	hidden int
}

// write shows nodes at now (the broker's time) on w, and says on standard
// error how many nodes it leaves out as expired.
func (v *nodesView) write(w io.Writer, nodes []*registry.Node, now time.Time) error {
	shown, expired := splitExpired(nodes, now, v.keep)
	if len(expired) > 0 && len(expired) != v.hidden {
		fmt.Fprintf(v.a.stderr, "%d nodes not seen for more than %s are not shown (--node-expiry 0 shows them; steward nodes rm --expired removes them)\n",
			len(expired), longDuration(v.keep))
	}
	v.hidden = len(expired)
	if v.output.structured() {
		if shown == nil {
			shown = []*registry.Node{} // [] rather than null
		}
		return writeOutput(w, v.output, shown)
	}
	t := newTable(w, "NODE", "STATE", "LAST SEEN", "VERSION", "METHODS", "LABELS")
	for _, n := range shown {
		version := n.Version
		if version == "" {
			version = "-"
		}
		labels := target.Labels(n.Labels).String()
		if labels == "" {
			labels = "-"
		}
		t.row(n.Name, nodeState(n, now), age(now, n.LastSeen), version, strconv.Itoa(len(n.Methods)), labels)
	}
	return t.flush()
}

// nodesWatcher is the part of a fleet connection steward nodes --watch
// uses.
type nodesWatcher interface {
	WatchNodes(ctx context.Context) (<-chan []*registry.Node, error)
}

var _ nodesWatcher = (*client.Client)(nil)

// watchNodes shows the registry again whenever it changes, and when a
// node shown online passes its online window (nothing is written then),
// until ctx ends or Ctrl-C (exit 0).
func (a *app) watchNodes(ctx context.Context, fl fleet, v *nodesView) error {
	nw, ok := fl.(nodesWatcher)
	if !ok {
		return errors.New("this connection cannot watch the node registry")
	}
	ctx, stop := watchContext(ctx)
	defer stop()
	// Online is judged on the broker's clock: read it once, and follow it
	// with this machine's.
	var offset time.Duration
	if now, err := fl.Now(ctx); err != nil {
		fmt.Fprintf(a.stderr, "cannot read the broker's clock (%v); using this machine's\n", err)
	} else {
		offset = now.Sub(a.now())
	}
	updates, err := nw.WatchNodes(ctx)
	if err != nil {
		return watchError(ctx, err)
	}
	sc := newScreen(a.stdout, v.output)
	var nodes []*registry.Node
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case list, ok := <-updates:
			if !ok {
				return watchError(ctx, errors.New("the registry watch ended"))
			}
			nodes = list
		}
		now := a.now().Add(offset)
		if err := sc.show(func(w io.Writer) error { return v.write(w, nodes, now) }); err != nil {
			return err
		}
		if d, ok := nextOffline(nodes, now); ok {
			timer.Reset(d)
		}
	}
}

// nextOffline is how long until the first node online at now passes its
// online window, and a moment more: nothing in the registry changes then,
// but its state does.
func nextOffline(nodes []*registry.Node, now time.Time) (time.Duration, bool) {
	var first time.Duration
	found := false
	for _, n := range nodes {
		if !n.Online(now) {
			continue
		}
		if d := n.LastSeen.Add(n.OnlineWindow()).Sub(now); !found || d < first {
			first, found = d, true
		}
	}
	return first + time.Second, found
}

// watchContext is ctx, ended by Ctrl-C (or SIGTERM) too: a watch ends
// cleanly then.
func watchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// watchError is a watch's result when it stops with err: none when its
// context ended (Ctrl-C), else the broker is out of reach.
func watchError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, client.ErrNotFound) {
		return exitError(ExitUsage, err)
	}
	return exitError(ExitUnreachable, err)
}

// screen shows a live view: on a terminal each view replaces the last
// (the screen is cleared and drawn again), elsewhere each view follows
// the last after a blank line ("---" between YAML documents). A view the
// same as the last is not shown again.
type screen struct {
	w    io.Writer
	tty  bool
	sep  string
	last []byte // the last view shown; nil before the first
}

func newScreen(w io.Writer, output outputFormat) *screen {
	sep := "\n"
	if output == outputYAML {
		sep = "---\n"
	}
	return &screen{w: w, tty: isTerminal(w), sep: sep}
}

// show writes the view draw renders. It is rendered first, so a terminal
// is never left with half a view.
func (s *screen) show(draw func(io.Writer) error) error {
	var view bytes.Buffer
	if err := draw(&view); err != nil {
		return err
	}
	if s.last != nil && bytes.Equal(view.Bytes(), s.last) {
		return nil
	}
	var b bytes.Buffer
	switch {
	case s.tty:
		b.WriteString("\x1b[H\x1b[2J") // cursor home, clear the screen
	case s.last != nil:
		b.WriteString(s.sep)
	}
	b.Write(view.Bytes())
	s.last = view.Bytes()
	_, err := s.w.Write(b.Bytes())
	return err
}
