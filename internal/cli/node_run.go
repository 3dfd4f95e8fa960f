package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/node"
)

func newNodeRunCmd(a *app) *cobra.Command {
	var clockOffset time.Duration
	var insecure bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a node until SIGINT or SIGTERM",
		Long: `Run a node until it gets SIGINT or SIGTERM, then shut it down in order.

With no --broker-address the node runs an embedded broker on
--broker-listen, as the central node of a small fleet does; with one, it
connects to that broker.

On first start the node creates config.toml in the config folder with the
defaults. Flags given to "node run" are written back into that file, so the
next start without flags uses them; STEWARD_* environment variables override
the file but are never written to it. Durations are Go durations (30s, 24h)
or a whole number of seconds, as the original took them.

The original's flags keep working: -nodeName, -brokerAddress,
-centralNodeName, -defaultMessageTimeout, -defaultMessageRetries,
-subscribersDataFolder, -socketFolder, -startPubREQHello, -configFolder,
-promHostAndPort and -profilingPort are read as the flags below; the
-startSubREQ… flags of request methods set --methods.`,
		Example: `  # Central node with an embedded broker on 127.0.0.1:4222
  steward node run --node-name central

  # A node that connects to central's broker and says hello every 60s
  steward node run --node-name ship1 --broker-address nats://10.0.0.1:4222 --hello-interval 60

  # The same with the original's flags and environment
  env CONFIG_FOLDER=./etc/ steward -nodeName="ship1" -brokerAddress="10.0.0.1:4222" -startPubREQHello=60

  # Settings from the environment (not written to config.toml)
  STEWARD_LOG_LEVEL=debug steward node run`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := loadConfig(cmd)
			a.warnUnknown(l)
			if err != nil {
				return err
			}
			// node.Run narrows the logger to the node itself.
			log := newLogger(a.stderr, l.cfg.LogLevel, l.cfg.LogFormat)
			l.cfg.Insecure = insecure
			// The flags go into config.toml once the node has taken them
			// (before it listens, so a command beside it reads them): a node
			// that refuses its settings at start (an open broker, a missing
			// key file) leaves the file as it was.
			opened := func() {
				changed, err := writeBack(l.path, l.raw, cmd.Flags())
				switch {
				case err != nil:
					log.Warn("cannot write the flags to the config file", "path", l.path, "error", err)
				case !l.existed:
					log.Info("created config file", "node", l.cfg.NodeName, "path", l.path)
				case changed:
					log.Info("wrote flags to config file", "node", l.cfg.NodeName, "path", l.path)
				}
			}
			opts := node.Options{Logger: log, Stdout: a.stdout, Version: a.versionString(), Opened: opened}
			if clockOffset != 0 {
				// A fault drill: the node reads a clock that is off by
				// this much. Nothing that decides a delivery's fate reads
				// the node's clock; a drill proves it on a real process.
				log.Warn("running with a skewed clock", "offset", clockOffset)
				opts.Now = func() time.Time { return time.Now().Add(clockOffset) }
			}
			err = a.runNode(ctx, l.cfg, opts)
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil
			}
			return err
		},
	}
	addConfigFlags(cmd.Flags())
	cmd.Flags().BoolVar(&insecure, "insecure", false, "let the embedded broker listen beyond loopback with no authentication (a warning at every start); never written to config.toml")
	cmd.Flags().DurationVar(&clockOffset, "clock-offset", 0, "fault drill: run the node on a clock this far off (e.g. -10m); not written to config.toml")
	cmd.Flags().MarkHidden("clock-offset")
	return cmd
}

// newLogger is the node's logger: text or json (format) to w at level
// (debug, info, warn or error; config.Validate checked both).
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// warnUnknown tells about keys in config.toml that steward ignores.
func (a *app) warnUnknown(l *loaded) {
	if l == nil || len(l.unknown) == 0 {
		return
	}
	fmt.Fprintf(a.stderr, "steward: %s: ignoring unknown keys: %s\n", l.path, strings.Join(l.unknown, ", "))
}
