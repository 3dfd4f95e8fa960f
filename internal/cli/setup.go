package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/stream"
)

func newSetupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create or update steward's streams and buckets on the broker",
		Long: `Create or update the JetStream streams and KV buckets steward uses on the
broker, as the central node does when it starts. Only the central node and
this command change them: every other node and command only opens them, so
a node on an older build cannot put old settings back, and nodes need no
right to change fleet-wide assets.

Use it to set the broker up before the central node first starts, or to
move the layout to a JetStream cluster with --broker-replicas 3, or to set
where the broker keeps the nodes' queue positions (--queue-storage). A layout
written by a newer steward is left as it is.`,
		Example: `  steward setup --broker-address nats://nats1:4222 --broker-replicas 3`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(cmd)
			a.warnUnknown(l)
			if err != nil {
				return err
			}
			log := newLogger(a.stderr, "info", "text")
			assets, err := client.Setup(cmd.Context(), l.cfg, log)
			switch {
			case errors.Is(err, config.ErrInvalid):
				return exitError(ExitUsage, err)
			case err != nil:
				return exitError(ExitUnreachable, fmt.Errorf("set up the broker: %w", err))
			}
			info := assets.Messages.CachedInfo()
			fmt.Fprintf(a.stdout, "steward layout %s on %s: streams %s and %s, buckets %s and %s (%d replicas, queue storage %s)\n",
				info.Config.Metadata[stream.VersionKey], l.cfg.ClientBrokerURL(), stream.MessagesStream, stream.DeadlinesStream,
				stream.StatusBucket, stream.NodesBucket, info.Config.Replicas, info.Config.Metadata[stream.QueueStorageKey])
			return nil
		},
	}
	addConfigFlags(cmd.Flags(), append(clientKeys(), "broker-replicas", "queue-storage")...)
	return cmd
}
