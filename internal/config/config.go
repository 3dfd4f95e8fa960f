// Package config holds steward's configuration as a plain struct with
// defaults and validation. It knows nothing of flags, files or environment
// variables: the CLI layer (package cli) fills a Config from those with the
// precedence flag > environment > file > default, and writes flags back.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/stream"
	"github.com/stewardfleet/steward/internal/target"
)

// Config is the configuration of one steward node and of the client
// commands (send, status, nodes) run beside it.
type Config struct {
	// ConfigFolder holds config.toml. Set by CONFIG_FOLDER or --config-folder.
	ConfigFolder string `mapstructure:"config-folder"`
	// NodeName is this node's unique name.
	NodeName string `mapstructure:"node-name"`
	// CentralNodeName is the node that keeps the registry and error log.
	CentralNodeName string `mapstructure:"central-node-name"`
	// BrokerAddress is a NATS URL. Empty: run an embedded broker.
	BrokerAddress string `mapstructure:"broker-address"`
	// BrokerListen is where the embedded broker listens (host:port).
	BrokerListen string `mapstructure:"broker-listen"`
	// BrokerReplicas is how many copies of each stream and bucket the
	// central node asks a clustered broker for (1 on a single server).
	BrokerReplicas int `mapstructure:"broker-replicas"`
	// QueueStorage is where the broker keeps the state of the nodes' queues,
	// "file" or "memory" (stream.Layout.QueueStorage); the central node
	// sets it for the fleet.
	QueueStorage string `mapstructure:"queue-storage"`
	// BrokerDomain is the JetStream domain that holds the fleet's layout,
	// for a node whose broker is a leaf node with JetStream of its own.
	// Empty: the broker's own.
	BrokerDomain string `mapstructure:"broker-domain"`
	// DataFolder is where reply files, the error log and node state live.
	DataFolder string `mapstructure:"data-folder"`
	// SocketFolder holds steward.sock.
	SocketFolder string `mapstructure:"socket-folder"`
	// DefaultMessageTimeout is the ACKTimeout of messages that set none, and
	// the AckWait of this node's consumer.
	DefaultMessageTimeout time.Duration `mapstructure:"default-message-timeout"`
	// DefaultMessageRetries is the retries of messages that set none.
	DefaultMessageRetries int `mapstructure:"default-message-retries"`
	// DefaultDeliveryDeadline bounds delivery of messages that set no
	// deliveryDeadline.
	DefaultDeliveryDeadline time.Duration `mapstructure:"default-delivery-deadline"`
	// HelloInterval is how often the node says hello to central (0: never).
	HelloInterval time.Duration `mapstructure:"hello-interval"`
	// Concurrency caps how many methods the node runs at once.
	Concurrency int `mapstructure:"concurrency"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `mapstructure:"log-level"`
	// AuditMaxSize (MiB) and AuditMaxAge rotate the audit log; AuditKeep
	// rotated files are kept (see package audit).
	AuditMaxSize int           `mapstructure:"audit-max-size"`
	AuditMaxAge  time.Duration `mapstructure:"audit-max-age"`
	AuditKeep    int           `mapstructure:"audit-keep"`
	// Labels describe the node (role=db, site=north): announced in its
	// hello, kept in the node registry, and matched by label selectors in
	// a message's targets (package target).
	Labels map[string]string `mapstructure:"labels"`

	// Security of the broker connection (package credentials; see
	// docs/security.md). NkeySeedFile or CredsFile is what the node proves
	// itself with; RootCAPath is the CA it trusts for the broker's TLS
	// certificate; TLSCert and TLSKey are its client certificate.
	NkeySeedFile string `mapstructure:"nkey-seed-file"`
	CredsFile    string `mapstructure:"creds-file"`
	RootCAPath   string `mapstructure:"root-ca-path"`
	TLSCert      string `mapstructure:"tls-cert"`
	TLSKey       string `mapstructure:"tls-key"`
	// TrustedKeys is a file of "<node> <public key>" lines: when set, the
	// node runs only messages signed by the key listed for their sender.
	TrustedKeys string `mapstructure:"trusted-keys"`
	// PolicyFile, when set, is the node's authorisation policy (package
	// policy): a request runs only when a rule allows it.
	PolicyFile string `mapstructure:"policy-file"`
	// Methods says which request methods the node serves and for whom:
	// "REQHttpGet=off; REQTailFile=central ops" (package procs). A method
	// it does not name runs for every node. The original's -startSubREQ…
	// flags set it.
	Methods string `mapstructure:"methods"`
	// The embedded broker's TLS certificate and key, the CA its clients'
	// certificates must be signed by (mutual TLS), and the file of nkey
	// users it lets in.
	BrokerTLSCert       string `mapstructure:"broker-tls-cert"`
	BrokerTLSKey        string `mapstructure:"broker-tls-key"`
	BrokerTLSClientCA   string `mapstructure:"broker-tls-client-ca"`
	BrokerAuthorization string `mapstructure:"broker-authorization"`
	// TCPListener is where the node takes the socket's input over TCP
	// (host:port; empty: no TCP listener). It must be on loopback unless
	// TCPListenerRemote names the networks beyond it that may connect.
	TCPListener string `mapstructure:"tcp-listener"`
	// TCPListenerRemote lists the networks (CIDRs or addresses,
	// comma-separated) beyond loopback whose clients may use TCPListener.
	TCPListenerRemote string `mapstructure:"tcp-listener-remote"`
	// HTTPAPI is where the node serves its HTTP API (host:port; empty: no
	// API). Beyond loopback it needs HTTPAPITokenFile.
	HTTPAPI string `mapstructure:"http-api"`
	// HTTPAPITokenFile holds the bearer token every API request must carry
	// (mode 0600).
	HTTPAPITokenFile string `mapstructure:"http-api-token-file"`
	// HTTPTLSCert and HTTPTLSKey are the certificate and key (PEM) the
	// HTTP API and the console serve HTTPS with; empty: plain HTTP.
	HTTPTLSCert string `mapstructure:"http-tls-cert"`
	HTTPTLSKey  string `mapstructure:"http-tls-key"`
	// Console is where the central node serves the fleet console
	// (host:port; empty: none). Beyond loopback it needs HTTPAPITokenFile.
	Console string `mapstructure:"console"`
	// ConsoleJaegerURL is Jaeger's address the console links traces to
	// (e.g. http://127.0.0.1:16686); empty: trace IDs are shown unlinked.
	ConsoleJaegerURL string `mapstructure:"console-jaeger-url"`
	// HTTPDataFolder is the folder inside the data folder the API serves
	// read-only under /v1/files/ ("." for the whole data folder, never its
	// state folder); empty: none.
	HTTPDataFolder string `mapstructure:"http-data-folder"`
	// PromHostAndPort is where the node serves Prometheus metrics at
	// /metrics (host:port, or a port on loopback; empty: none). Beyond
	// loopback it needs PromRemote.
	PromHostAndPort string `mapstructure:"prom-host-and-port"`
	// PromRemote lists the networks (CIDRs or addresses, comma-separated)
	// beyond loopback whose clients may scrape PromHostAndPort.
	PromRemote string `mapstructure:"prom-remote"`
	// ProfilingPort is where the node serves Go's profiles at
	// /debug/pprof/ (a port, or host:port on loopback; empty: none).
	ProfilingPort string `mapstructure:"profiling-port"`
	// LogFormat is text or json.
	LogFormat string `mapstructure:"log-format"`
	// OTLPEndpoint is where the node exports traces over OTLP/HTTP
	// (host:port or an http(s) URL; empty: tracing is off unless the
	// OTEL_* environment turns it on, see package telemetry).
	OTLPEndpoint string `mapstructure:"otlp-endpoint"`
	// Insecure lets the embedded broker listen beyond loopback with no
	// authentication (a warning at every start). Only a flag of node run.
	Insecure bool `mapstructure:"-"`
}

// Default returns the configuration used when nothing else is given: a
// node named "central" that runs its own embedded broker.
func Default() Config {
	return Config{
		ConfigFolder:            "./etc",
		NodeName:                "central",
		CentralNodeName:         "central",
		BrokerAddress:           "",
		BrokerListen:            "127.0.0.1:4222",
		BrokerReplicas:          1,
		QueueStorage:            "file",
		DataFolder:              "./data",
		SocketFolder:            "./tmp",
		DefaultMessageTimeout:   10 * time.Second,
		DefaultMessageRetries:   3,
		DefaultDeliveryDeadline: 24 * time.Hour,
		HelloInterval:           30 * time.Second,
		Concurrency:             64,
		LogLevel:                "info",
		LogFormat:               "text",
		AuditMaxSize:            100,
		AuditMaxAge:             24 * time.Hour,
		AuditKeep:               10,
	}
}

// Validate checks the configuration and normalises the broker address
// (a bare host:port gets the nats:// scheme, as the original accepted).
func (c *Config) Validate() error {
	var errs []error
	if err := message.ValidNodeName(c.NodeName); err != nil {
		errs = append(errs, fmt.Errorf("node-name: %w", err))
	}
	if err := message.ValidNodeName(c.CentralNodeName); err != nil {
		errs = append(errs, fmt.Errorf("central-node-name: %w", err))
	}
	if c.BrokerAddress != "" {
		addr, err := NormalizeBrokerAddress(c.BrokerAddress)
		if err != nil {
			errs = append(errs, fmt.Errorf("broker-address: %w", err))
		}
		c.BrokerAddress = addr
	}
	if _, _, err := net.SplitHostPort(c.BrokerListen); err != nil {
		errs = append(errs, fmt.Errorf("broker-listen %q: want host:port: %w", c.BrokerListen, err))
	}
	if c.Console != "" {
		if err := c.validConsole(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.BrokerDomain != "" && !validDomain(c.BrokerDomain) {
		errs = append(errs, fmt.Errorf("broker-domain %q: want letters, digits, '-' or '_'", c.BrokerDomain))
	}
	if c.BrokerReplicas < 1 || c.BrokerReplicas > 5 {
		errs = append(errs, fmt.Errorf("broker-replicas %d: must be within 1..5", c.BrokerReplicas))
	}
	if err := stream.CheckQueueStorage(c.QueueStorage); err != nil {
		errs = append(errs, fmt.Errorf("queue-storage: %w", err))
	}
	if c.DataFolder == "" {
		errs = append(errs, errors.New("data-folder is empty"))
	}
	if c.SocketFolder == "" {
		errs = append(errs, errors.New("socket-folder is empty"))
	}
	if c.DefaultMessageTimeout < time.Second {
		errs = append(errs, fmt.Errorf("default-message-timeout %s: must be at least 1s", c.DefaultMessageTimeout))
	}
	if c.DefaultMessageRetries < 0 || c.DefaultMessageRetries > message.MaxRetries {
		errs = append(errs, fmt.Errorf("default-message-retries %d: must be within 0..%d", c.DefaultMessageRetries, message.MaxRetries))
	}
	if c.DefaultDeliveryDeadline < time.Second || c.DefaultDeliveryDeadline > message.MaxTimeout {
		errs = append(errs, fmt.Errorf("default-delivery-deadline %s: must be within 1s..%s", c.DefaultDeliveryDeadline, message.MaxTimeout))
	}
	if c.HelloInterval < 0 || (c.HelloInterval > 0 && c.HelloInterval < time.Second) {
		errs = append(errs, fmt.Errorf("hello-interval %s: must be 0 (off) or at least 1s", c.HelloInterval))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency))
	}
	if c.AuditMaxSize < 1 {
		errs = append(errs, fmt.Errorf("audit-max-size %d: must be at least 1 (MiB)", c.AuditMaxSize))
	}
	if c.AuditMaxAge < time.Minute {
		errs = append(errs, fmt.Errorf("audit-max-age %s: must be at least 1m", c.AuditMaxAge))
	}
	if c.AuditKeep < 1 {
		errs = append(errs, fmt.Errorf("audit-keep %d: must be at least 1", c.AuditKeep))
	}
	if err := target.Labels(c.Labels).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("labels: %w", err))
	}
	errs = append(errs, c.validateInputs()...)
	errs = append(errs, c.validateMetrics()...)
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// NormalizeBrokerAddress accepts "nats://host:port", "tls://host:port" or a
// bare "host:port" and returns a URL.
func NormalizeBrokerAddress(addr string) (string, error) {
	urls := strings.Split(addr, ",")
	for i, one := range urls {
		one = strings.TrimSpace(one)
		if !strings.Contains(one, "://") {
			one = "nats://" + one
		}
		u, err := url.Parse(one)
		if err != nil {
			return "", fmt.Errorf("%q is not a URL: %w", one, err)
		}
		if u.Host == "" {
			return "", fmt.Errorf("%q names no host", one)
		}
		urls[i] = one
	}
	return strings.Join(urls, ","), nil
}

// ClientBrokerURL is the broker a client command (send, status, nodes)
// connects to: the configured broker, or the embedded one's listen address.
func (c *Config) ClientBrokerURL() string {
	if c.BrokerAddress != "" {
		return c.BrokerAddress
	}
	return "nats://" + c.BrokerListen
}

// SocketPath is the unix socket operators write messages to.
func (c *Config) SocketPath() string { return filepath.Join(c.SocketFolder, "steward.sock") }

// StateFolder holds the node's own state (embedded broker store, executed
// messages, audit log) inside the data folder.
func (c *Config) StateFolder() string { return filepath.Join(c.DataFolder, message.ReservedDataPath) }

// OutboxFolder holds the messages the node was given while it could not
// reach the broker (see package outbox); `steward send` run beside the
// node puts messages there too when the broker cannot be reached.
func (c *Config) OutboxFolder() string { return filepath.Join(c.StateFolder(), "outbox") }

// AuditPath is the node's audit log.
func (c *Config) AuditPath() string { return filepath.Join(c.StateFolder(), "audit.jsonl") }

// validDomain reports whether d can be a JetStream domain: one subject
// token ($JS.<domain>.API).
func validDomain(d string) bool {
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return d != ""
}

// validConsole checks the console's settings: the central node serves it,
// on host:port, beyond loopback only with a token.
func (c *Config) validConsole() error {
	if c.NodeName != c.CentralNodeName {
		return fmt.Errorf("console: only the central node (%s) serves the console, not %s", c.CentralNodeName, c.NodeName)
	}
	if _, _, err := net.SplitHostPort(c.Console); err != nil {
		return fmt.Errorf("console %q: want host:port: %w", c.Console, err)
	}
	if !loopbackHost(c.Console) && c.HTTPAPITokenFile == "" {
		return fmt.Errorf("console %q is beyond loopback: set http-api-token-file (its token is the console's too)", c.Console)
	}
	if c.ConsoleJaegerURL != "" {
		if u, err := url.Parse(c.ConsoleJaegerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("console-jaeger-url %q: want an http(s) URL", c.ConsoleJaegerURL)
		}
	}
	return nil
}
