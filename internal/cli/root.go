// Package cli is steward's command line: one cobra command per file, built
// fresh by NewRootCommand with no package state, and the loading of the
// configuration with viper (flag > STEWARD_* environment > config.toml >
// config.Default()). Package config stays free of flags and files.
//
// Every error a command returns carries an exit code (see ExitCode and the
// Exit* constants); main reports it with Report.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/node"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/status"
)

// Options are what main gives the command tree.
type Options struct {
	// Version overrides the link-time Version (tests set it); empty uses
	// Version, then the build information.
	Version string
	// Stdin, Stdout and Stderr default to the process's.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// fleet is what the client commands use of a client.Client; tests put a
// fake in its place.
type fleet interface {
	Send(ctx context.Context, input []byte) ([]client.Receipt, error)
	SendWith(ctx context.Context, input []byte, o client.SendOptions) ([]client.Receipt, error)
	Publish(ctx context.Context, m *message.Message, nodes []string) error
	Withhold(ctx context.Context, m *message.Message, nodes []string, reason string) error
	Wait(ctx context.Context, ids []string, progress func(*status.Record)) ([]*status.Record, error)
	WaitWith(ctx context.Context, ids []string, o client.WaitOptions) ([]*status.Record, error)
	Status(ctx context.Context, id string) ([]*status.Record, error)
	Nodes(ctx context.Context) ([]*registry.Node, error)
	RemoveNode(ctx context.Context, n *registry.Node) error
	Now(ctx context.Context) (time.Time, error)
	Close()
}

var _ fleet = (*client.Client)(nil)

// app is the state one command tree shares: its streams and the
// collaborators tests replace.
type app struct {
	version string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	now     func() time.Time
	runNode func(ctx context.Context, cfg config.Config, opts node.Options) error
	connect func(ctx context.Context, cfg config.Config) (fleet, error)
	// queue keeps messages in the local node's outbox (client.Queue).
	queue func(ctx context.Context, cfg config.Config, input []byte) ([]client.Receipt, error)
}

func newApp(opts Options) *app {
	a := &app{
		version: opts.Version,
		stdin:   opts.Stdin,
		stdout:  opts.Stdout,
		stderr:  opts.Stderr,
		now:     time.Now,
		runNode: node.Run,
		queue:   client.Queue,
		connect: func(ctx context.Context, cfg config.Config) (fleet, error) {
			c, err := client.Connect(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
	}
	if a.stdin == nil {
		a.stdin = os.Stdin
	}
	if a.stdout == nil {
		a.stdout = os.Stdout
	}
	if a.stderr == nil {
		a.stderr = os.Stderr
	}
	return a
}

// NewRootCommand builds a fresh steward command tree. Trees share nothing:
// a test can build as many as it likes.
func NewRootCommand(opts Options) *cobra.Command { return newRootCmd(newApp(opts)) }

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "steward",
		Short: "Command and control for a fleet of nodes over NATS JetStream",
		Long: `steward sends messages to the nodes of a fleet and makes sure they are
delivered and run: a node that is offline gets its messages when it comes
back, within each message's deadline. Every delivery has a status that
"steward send --wait" and "steward status" show.

Configuration comes from flags, then STEWARD_* environment variables, then
config.toml in the config folder (--config-folder, $CONFIG_FOLDER,
$STEWARD_CONFIG_FOLDER, else ./etc), then the defaults. "steward node run"
creates config.toml on first start and writes the flags it is given back
into it. The original's flags (-nodeName=ship1, -brokerAddress=…) still work.`,
		Example: `  # Run the central node with its embedded broker
  steward node run --node-name central

  # Run a node that connects to central's broker
  steward node run --node-name ship1 --broker-address 10.0.0.1:4222

  # Run a command on ship1 and wait for its result
  steward send -f msg.json --wait`,
		Args:          groupArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(flagError)
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newNodeCmd(a),
		newSendCmd(a),
		newStatusCmd(a),
		newNodesCmd(a),
		newResultsCmd(a),
		newPsCmd(a),
		newCancelCmd(a),
		newConsoleCmd(a),
		newMethodsCmd(a),
		newSetupCmd(a),
		newKeysCmd(a),
		newBrokerCmd(a),
		newPolicyCmd(a),
		newConfigCmd(a),
		newVersionCmd(a),
		newCompletionCmd(a),
		newBenchCmd(a),
	)
	prepareTree(root)
	return root
}

// connectClient loads the configuration of a client command (never
// writing the file) and connects to the broker with it.
func (a *app) connectClient(cmd *cobra.Command) (fleet, error) {
	l, err := loadConfig(cmd)
	a.warnUnknown(l)
	if err != nil {
		return nil, err
	}
	fl, err := a.connect(cmd.Context(), l.cfg)
	if err != nil {
		return nil, connectError(l.cfg.ClientBrokerURL(), err)
	}
	return fl, nil
}

// connectError classifies a failure of connect: an invalid configuration
// is a usage error, anything else means the broker cannot be reached.
func connectError(url string, err error) error {
	switch {
	case errors.Is(err, config.ErrInvalid):
		return exitError(ExitUsage, err)
	case errors.Is(err, client.ErrUnreachable):
		return exitError(ExitUnreachable, err)
	}
	return exitError(ExitUnreachable, fmt.Errorf("%w at %s: %w", client.ErrUnreachable, url, err))
}

// groupArgs is the Args of the commands that only group others (steward,
// steward node, steward config): an argument is an unknown subcommand.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", quoteJoin(s, " or "))
	}
	return usageError(cmd, errors.New(msg))
}

// usageArgs wraps a cobra argument check so its error is a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError(cmd, err)
		}
		return nil
	}
}
