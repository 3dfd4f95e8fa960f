package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/target"
)

// valueKind is how a setting is parsed and written.
type valueKind int

const (
	kindString valueKind = iota
	kindInt
	kindDuration
	// kindLabels is key=value pairs: "role=db,site=north" in a flag or
	// the environment, a string or a table in config.toml.
	kindLabels
)

// setting is one configuration key. Its key is at once the flag name, the
// key in config.toml and the mapstructure tag of its config.Config field
// (field and setField find the field by that tag);
// its environment variable is STEWARD_ followed by the key upper-cased with
// '-' turned into '_'.
type setting struct {
	key   string
	kind  valueKind
	usage string
}

// keyConfigFolder is the one key that is not read from the file: it says
// where the file is.
const keyConfigFolder = "config-folder"

// settings lists the keys of config.toml in the order the file shows them.
func settings() []setting {
	return []setting{
		{"node-name", kindString, "this node's unique name"},
		{"central-node-name", kindString, "the node that keeps the node registry and the error log"},
		{"broker-address", kindString, "NATS URL of the broker (nats://host:port, tls://host:port or host:port; a cluster's servers comma-separated); empty: run an embedded broker"},
		{"broker-listen", kindString, "host:port the embedded broker listens on (used when broker-address is empty)"},
		{"console", kindString, "host:port where the central node serves the fleet console, e.g. 127.0.0.1:8090 (beyond loopback it needs http-api-token-file); empty: none"},
		{"console-jaeger-url", kindString, "Jaeger's address the console links trace IDs to, e.g. http://127.0.0.1:16686"},
		{"broker-domain", kindString, "JetStream domain that holds the fleet's streams and buckets, for a node connected to a leaf node with JetStream of its own (e.g. hub); empty: the broker's own"},
		{"broker-replicas", kindInt, "copies of each steward stream and bucket the central node asks the broker for (3 on a JetStream cluster)"},
		{"queue-storage", kindString, "where the broker keeps the nodes' queue positions, set by the central node for the fleet: file, or memory (faster; after a broker restart every node creates its queue again)"},
		{"data-folder", kindString, "folder for reply files, the error log and the node's state"},
		{"socket-folder", kindString, "folder that holds steward.sock"},
		{"default-message-timeout", kindDuration, "ACK timeout of messages that set none (seconds or a Go duration)"},
		{"default-message-retries", kindInt, "retries of messages that set none"},
		{"default-delivery-deadline", kindDuration, "how long delivery of messages that set no deliveryDeadline is tried (seconds or a Go duration)"},
		{"hello-interval", kindDuration, "how often the node says hello to central, 0 for never (seconds or a Go duration)"},
		{"concurrency", kindInt, "how many methods the node runs at once"},
		{"log-level", kindString, "log level: debug, info, warn or error"},
		{"log-format", kindString, "log format: text or json"},
		{"audit-max-size", kindInt, "MiB after which the audit log is rotated"},
		{"audit-max-age", kindDuration, "age after which the audit log is rotated (seconds or a Go duration)"},
		{"audit-keep", kindInt, "how many rotated audit logs are kept"},
		{"labels", kindLabels, "this node's labels, key=value[,key=value] (letters, digits, '-', '_', '.'), which --target and label selectors in toNodes match"},
		{"nkey-seed-file", kindString, "nkey seed file this node authenticates to the broker with (mode 0600)"},
		{"creds-file", kindString, "NATS creds file this node authenticates to the broker with, instead of an nkey seed (mode 0600)"},
		{"root-ca-path", kindString, "PEM file of the CA that signed the broker's TLS certificate"},
		{"tls-cert", kindString, "this node's TLS client certificate (PEM), for brokers that require one"},
		{"tls-key", kindString, "the key of tls-cert (PEM, mode 0600)"},
		{"methods", kindString, "which request methods this node serves and for whom: 'REQHttpGet=off; REQTailFile=central ops' (off, *, or node names; a method not named runs for every node)"},
		{"policy-file", kindString, "this node's authorisation policy (JSON): which senders may run which methods and commands; default-deny once set"},
		{"trusted-keys", kindString, "file of \"<node> <public key>\" lines: run only messages signed by the key listed for their sender"},
		{"broker-tls-cert", kindString, "the embedded broker's TLS certificate (PEM); clients must then use TLS"},
		{"broker-tls-key", kindString, "the key of broker-tls-cert (PEM, mode 0600)"},
		{"broker-tls-client-ca", kindString, "PEM file of the CA that must have signed every client's certificate (mutual TLS)"},
		{"broker-authorization", kindString, "JSON file of the nkey users the embedded broker lets in (see docs/security.md)"},
		{"tcp-listener", kindString, "host:port where the node takes the socket's JSON input over TCP (loopback unless tcp-listener-remote is set); empty: none"},
		{"tcp-listener-remote", kindString, "networks beyond loopback (CIDRs or addresses, comma-separated) whose clients may use tcp-listener"},
		{"http-api", kindString, "host:port of the node's HTTP API, e.g. 127.0.0.1:8091 (beyond loopback it needs http-api-token-file); empty: none"},
		{"http-api-token-file", kindString, "file (mode 0600) of the bearer token every HTTP API request must carry"},
		{"http-tls-cert", kindString, "certificate (PEM) the HTTP API and the console serve HTTPS with; empty: plain HTTP"},
		{"http-tls-key", kindString, "the key of http-tls-cert (PEM, mode 0600)"},
		{"http-data-folder", kindString, "folder inside the data folder the HTTP API serves read-only at /v1/files/ (. for all of it, never .steward); empty: none"},
		{"prom-host-and-port", kindString, "host:port, or a port on loopback, where the node serves Prometheus metrics at /metrics (beyond loopback it needs prom-remote); empty: none"},
		{"prom-remote", kindString, "networks beyond loopback (CIDRs or addresses, comma-separated) whose clients may scrape prom-host-and-port"},
		{"profiling-port", kindString, "port (or 127.0.0.1:port) where the node serves Go's profiles at /debug/pprof/, on loopback only; empty: none"},
		{"otlp-endpoint", kindString, "where traces are exported over OTLP/HTTP (host:port or an http(s) URL, e.g. 127.0.0.1:4318); empty: off unless OTEL_* variables turn tracing on"},
	}
}

// clientKeys are the settings the client commands (send, status, nodes)
// take as flags: enough to find the broker and name themselves.
func clientKeys() []string {
	return []string{"node-name", "central-node-name", "broker-address", "broker-listen",
		"nkey-seed-file", "creds-file", "root-ca-path", "tls-cert", "tls-key"}
}

// envName is the environment variable of a key.
func envName(key string) string {
	return "STEWARD_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// addConfigFlags defines --config-folder and the flags of the given keys
// (every setting when none are given) on fs, with defaults from
// config.Default().
func addConfigFlags(fs *pflag.FlagSet, keys ...string) {
	def := config.Default()
	fs.String(keyConfigFolder, def.ConfigFolder,
		"folder holding config.toml; without this flag $CONFIG_FOLDER, then $STEWARD_CONFIG_FOLDER, then the default")
	for _, s := range settings() {
		if len(keys) > 0 && !slices.Contains(keys, s.key) {
			continue
		}
		switch v := field(def, s.key).(type) {
		case string:
			fs.String(s.key, v, s.usage)
		case int:
			fs.Int(s.key, v, s.usage)
		case time.Duration:
			fs.Var(newDurationValue(v), s.key, s.usage)
		case map[string]string:
			fs.String(s.key, target.Labels(v).String(), s.usage)
		}
	}
}

// durationValue is a pflag.Value for durations written as a number of
// seconds (the original's style) or as a Go duration.
type durationValue time.Duration

var _ pflag.Value = (*durationValue)(nil)

func newDurationValue(d time.Duration) *durationValue {
	v := durationValue(d)
	return &v
}

func (d *durationValue) Set(s string) error {
	v, err := config.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return config.FormatDuration(time.Duration(*d)) }

func (d *durationValue) Type() string { return "duration" }

// outputFormat is the -o/--output flag of the commands that can print
// their records as JSON or YAML.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
	outputYAML  outputFormat = "yaml"
)

// structured reports whether o prints records (JSON or YAML), not a
// table.
func (o *outputFormat) structured() bool { return *o == outputJSON || *o == outputYAML }

var _ pflag.Value = (*outputFormat)(nil)

func (o *outputFormat) Set(s string) error {
	switch f := outputFormat(strings.ToLower(s)); f {
	case outputTable, outputJSON, outputYAML:
		*o = f
		return nil
	}
	return fmt.Errorf("%q: want table, json or yaml", s)
}

func (o *outputFormat) String() string { return string(*o) }

func (o *outputFormat) Type() string { return "format" }

// addOutputFlag defines -o/--output on cmd, with shell completion of its
// values, and returns its value.
func addOutputFlag(cmd *cobra.Command) *outputFormat {
	o := outputTable
	cmd.Flags().VarP(&o, "output", "o", "output format: table, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]cobra.Completion{string(outputTable), string(outputJSON), string(outputYAML)}, cobra.ShellCompDirectiveNoFileComp))
	return &o
}

// fileValue converts a flag's text to what config.toml holds for s.
func fileValue(s setting, text string) (any, error) {
	switch s.kind {
	case kindInt:
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a whole number", s.key, text)
		}
		return n, nil
	case kindDuration:
		d, err := config.ParseDuration(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.key, err)
		}
		return config.FormatDuration(d), nil
	case kindLabels:
		l, err := target.ParseLabels(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.key, err)
		}
		return l.String(), nil
	}
	return text, nil
}
