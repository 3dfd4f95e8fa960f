package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/signature"
)

func newKeysCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Make and read the nkeys nodes authenticate to the broker with",
		Example: `  steward keys new central ship1 ship2 --dir etc/keys
  steward keys public etc/keys/ship1.nk
  steward keys trust ops2 UABC… --nkey-seed-file etc/keys/central.nk
  steward keys revoke ops1 --nkey-seed-file etc/keys/central.nk
  steward keys show`,
	}
	cmd.AddCommand(newKeysNewCmd(a), newKeysPublicCmd(a), newKeysTrustCmd(a), newKeysRevokeCmd(a), newKeysShowCmd(a))
	return cmd
}

// keyFleet is the part of a fleet connection the key set commands use.
type keyFleet interface {
	KeySet(ctx context.Context) (*signature.KeySet, error)
	ChangeKeySet(ctx context.Context, change func(*signature.KeySet) error) (*signature.KeySet, error)
}

func newKeysTrustCmd(a *app) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "trust NODE PUBLICKEY",
		Short: "Trust a node's key fleet-wide (in the key set central signs)",
		Long: `Add NODE's public key to the fleet's key set (or replace the key it had),
sign the new version with the central node's key, publish it on the broker, and
send REQKeys to every node in the registry so nodes that check signatures take
it now; nodes offline take it when they come back. Run it as the central node,
with its nkey-seed-file. A key once revoked is never trusted again.`,
		Example: `  steward keys trust ops2 UABC… --nkey-seed-file etc/keys/central.nk`,
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.changeKeySet(cmd, wait, func(ks *signature.KeySet) error {
				if err := ks.Trust(args[0], args[1]); err != nil {
					return exitError(ExitUsage, err)
				}
				fmt.Fprintf(a.stdout, "trusted %s %s\n", args[0], args[1])
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "timeout", 30*time.Second, "how long to wait for the nodes to confirm (0: do not wait)")
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}

func newKeysRevokeCmd(a *app) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "revoke NODE|PUBLICKEY...",
		Short: "Revoke keys fleet-wide: nodes refuse everything signed with them",
		Long: `Revoke each key (or the key the key set has for each node named) in the fleet's
key set, sign the new version with the central node's key, publish it, and send
REQKeys to every node in the registry. A node refuses every message signed with
a revoked key (bad_signature), even where its trusted-keys file lists the key;
central's own key cannot be revoked this way (it is the root each node's
trusted-keys file names). Also take the key out of the broker's authorization
(steward broker authorization) so it cannot connect.`,
		Example: `  steward keys revoke ops1 --nkey-seed-file etc/keys/central.nk`,
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.changeKeySet(cmd, wait, func(ks *signature.KeySet) error {
				for _, arg := range args {
					key, err := ks.Revoke(arg)
					if err != nil {
						return exitError(ExitUsage, err)
					}
					fmt.Fprintf(a.stdout, "revoked %s\n", key)
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "timeout", 30*time.Second, "how long to wait for the nodes to confirm (0: do not wait)")
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}

func newKeysShowCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "show",
		Short:   "Print the fleet's key set as it is on the broker",
		Example: `  steward keys show | jq .revoked`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl, err := a.connectClient(cmd)
			if err != nil {
				return err
			}
			defer fl.Close()
			kf, ok := fl.(keyFleet)
			if !ok {
				return errors.New("this connection cannot read the key set")
			}
			ks, err := kf.KeySet(cmd.Context())
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, ks)
		},
	}
	addConfigFlags(cmd.Flags(), clientKeys()...)
	return cmd
}

// changeKeySet publishes the next key set, then has every registered node
// take it, waiting up to wait for them to say so.
func (a *app) changeKeySet(cmd *cobra.Command, wait time.Duration, change func(*signature.KeySet) error) error {
	ctx := cmd.Context()
	fl, err := a.connectClient(cmd)
	if err != nil {
		return err
	}
	defer fl.Close()
	kf, ok := fl.(keyFleet)
	if !ok {
		return errors.New("this connection cannot change the key set")
	}
	ks, err := kf.ChangeKeySet(ctx, change)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "key set version %d published\n", ks.Version)
	nodes, err := fl.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("key set published, but the node registry cannot be read to tell the nodes (they take it at their next start or reconnect): %w", err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	if len(names) == 0 {
		return nil
	}
	input, _ := json.Marshal(map[string]any{"toNodes": names, "method": "REQKeys"})
	receipts, err := fl.Send(ctx, input)
	if err != nil {
		return err
	}
	if len(receipts) != 1 || !receipts[0].OK() {
		return fmt.Errorf("key set published, but REQKeys not sent (nodes take it at their next start or reconnect): %+v", receipts)
	}
	fmt.Fprintf(a.stdout, "REQKeys sent to %d nodes as message %s\n", len(names), receipts[0].ID)
	if wait <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	recs, _ := fl.Wait(wctx, []string{receipts[0].ID}, nil)
	seen := map[string]bool{}
	t := newTable(a.stdout, "NODE", "STATUS", "KEYS")
	for _, r := range recs {
		if r.Reply {
			continue
		}
		seen[r.Node] = true
		t.row(r.Node, string(r.Status), oneLine(summary(r), 200))
	}
	for _, name := range names {
		if !seen[name] {
			t.row(name, "waiting", "takes it when it is back (its queue holds REQKeys)")
		}
	}
	return t.flush()
}

func newKeysNewCmd(a *app) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "new NODE...",
		Short: "Make an nkey seed file for each node",
		Long: `Make a new nkey (an ed25519 key pair) for each node named, write its seed to
<dir>/<node>.nk with mode 0600, and print "<node> <public key>". An existing
file is never overwritten. Give the node its file (--nkey-seed-file); give the
broker the public keys (steward broker authorization).`,
		Example: `  steward keys new central ship1 ship2 --dir etc/keys`,
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			for _, name := range names {
				if err := message.ValidNodeName(name); err != nil {
					return exitError(ExitUsage, err)
				}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			for _, name := range names {
				pub, err := newSeedFile(filepath.Join(dir, name+".nk"))
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s %s\n", name, pub)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "keys", "folder the seed files are written to")
	return cmd
}

// newSeedFile writes a new user nkey seed to file (mode 0600, never over
// an existing file) and returns its public key.
func newSeedFile(file string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", err
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("seed file: %w", err)
	}
	_, err = f.Write(append(seed, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return "", fmt.Errorf("seed file %s: %w", file, err)
	}
	return kp.PublicKey()
}

func newKeysPublicCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "public SEEDFILE...",
		Short:   "Print the public key of each seed file",
		Example: `  steward keys public etc/keys/ship1.nk`,
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			for _, file := range files {
				signer, err := signature.LoadSigner(file)
				if err != nil {
					return exitError(ExitUsage, err)
				}
				fmt.Fprintf(a.stdout, "%s %s\n", file, signer.PublicKey())
			}
			return nil
		},
	}
}

func newBrokerCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "broker",
		Short:   "Make what a broker needs to let a fleet in",
		Example: `  steward broker authorization --dir etc/keys -o etc/authorization.json`,
	}
	cmd.AddCommand(newBrokerAuthorizationCmd(a))
	return cmd
}

func newBrokerAuthorizationCmd(a *app) *cobra.Command {
	var dir, out, format, domain string
	var senders []string
	cmd := &cobra.Command{
		Use:   "authorization",
		Short: "Write the embedded broker's authorization file for the keys in a folder",
		Long: `Write the authorization file (JSON) that lets in every node whose seed file
<node>.nk is in --dir, each as a user named after its node. Give it to the
central node as --broker-authorization.

With --format nats-server it writes the same users for a stock nats-server
(authorization { include "authorization.conf" }), as the compose fleet uses.

The nodes named by --senders (the central node, and the names operators send
as) may do anything. Every other node gets permissions of its own: it takes
messages from its own queue only, writes its own statuses and claims only,
publishes only to the senders' queues (replies, error reports, hellos), and
cannot create, change or delete streams, buckets or other nodes' consumers
(see docs/security.md).`,
		Example: `  steward keys new central ship1 ship2 --dir etc/keys
  steward broker authorization --dir etc/keys -o etc/authorization.json
  steward node run --broker-authorization etc/authorization.json --nkey-seed-file etc/keys/central.nk`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			auth, err := authorizationOf(dir, senders, domain)
			if err != nil {
				return exitError(ExitUsage, err)
			}
			var b []byte
			switch format {
			case "steward":
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false) // "$JS.ACK.>" stays readable
				enc.SetIndent("", "  ")
				if err := enc.Encode(auth); err != nil {
					return err
				}
				b = buf.Bytes()
			case "nats-server":
				if b, err = auth.NATSServerConf(); err != nil {
					return err
				}
			default:
				return exitError(ExitUsage, fmt.Errorf("--format %q: want steward or nats-server", format))
			}
			if out == "" || out == "-" {
				_, err = a.stdout.Write(b)
				return err
			}
			tmp := out + ".tmp"
			if err := os.WriteFile(tmp, b, 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, out)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "keys", "folder of the nodes' seed files (<node>.nk)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	cmd.Flags().StringVar(&domain, "domain", "", "JetStream domain the nodes reach the fleet's layout in (their --broker-domain, for nodes behind a leaf node)")
	cmd.Flags().StringVar(&format, "format", "steward", "steward (JSON for --broker-authorization) or nats-server (a users list for nats-server's authorization block)")
	cmd.Flags().StringSliceVar(&senders, "senders", []string{"central"}, "nodes that may do anything: the central node and the names operators send as")
	return cmd
}

// authorizationOf lists the users of every <node>.nk seed file in dir:
// senders unrestricted, every other node with its own permissions.
func authorizationOf(dir string, senders []string, domain string) (*credentials.Authorization, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.nk"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no seed files (*.nk) in %s: make them with steward keys new", dir)
	}
	auth := &credentials.Authorization{}
	var errs []error
	for _, file := range files {
		signer, err := signature.LoadSigner(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := strings.TrimSuffix(filepath.Base(file), ".nk")
		u := credentials.User{Name: name, Nkey: signer.PublicKey()}
		if !slices.Contains(senders, name) {
			if err := message.ValidNodeName(name); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", file, err))
				continue
			}
			u.Permissions = credentials.InDomain(credentials.NodePermissions(name, senders), domain)
		}
		auth.Users = append(auth.Users, u)
	}
	return auth, errors.Join(errs...)
}
