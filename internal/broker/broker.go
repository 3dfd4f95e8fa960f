// Package broker runs the embedded NATS server with JetStream that makes a
// single steward binary its own broker. The store lives in the node's state
// folder, so stream and consumer state survive restarts (and kill -9).
//
// A full disk does not need a restart by hand. nats-server reacts to "no
// space left on device" in one of two ways: a stream's store keeps the write
// error and refuses every later message (what a direct publish does to a
// standalone server), or JetStream is shut down as a whole (what a mirror or
// source does). A Supervisor running beside the server notices either within
// one check interval and logs it once; as soon as the store's file system has
// SuperviseOptions.MinFree bytes free again, it restarts JetStream inside the
// running server with the configuration and limits JetStream had when the
// supervisor was made (right after Start). Streams, consumers and every
// message acknowledged before the failure are read back from the store.
// Clients keep their connections and see publishes succeed again; pull
// consumers lose their waiting pull requests and pull again once they miss
// heartbeats. Lost are only the publishes that failed (their senders got no
// acknowledgement) and memory-storage streams, which no JetStream restart
// keeps. The Supervisor reports each change (Status, OnChange), so the node
// can say whether its broker can store messages.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stewardfleet/steward/internal/credentials"
)

// Options configure the embedded broker.
type Options struct {
	// Listen is host:port for clients; port 0 picks a free port.
	Listen string
	// StoreDir is the JetStream store folder.
	StoreDir string
	// Name is the server name (the node name reads well in monitoring).
	Name string
	// Logger receives the server's warnings and errors (nil: discarded).
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections.
	ReadyTimeout time.Duration
	// TLS, if not nil, makes clients connect with TLS; with ClientCAs set
	// it also checks their certificates (mutual TLS).
	TLS *tls.Config
	// Users are the nkey users the broker lets in (none: anyone).
	Users []*server.NkeyUser
	// Insecure lets the broker listen beyond loopback with no
	// authentication; it then logs a warning.
	Insecure bool
}

// ErrUnauthenticated: an embedded broker asked to listen beyond loopback
// with no way to tell its clients apart.
var ErrUnauthenticated = errors.New("the embedded broker would accept anyone on the network: give it broker-authorization (nkey users) or broker-tls-client-ca (mutual TLS), listen on loopback, or pass --insecure")

// authenticated reports whether the broker tells its clients apart.
func (o Options) authenticated() bool {
	return len(o.Users) > 0 || (o.TLS != nil && o.TLS.ClientCAs != nil)
}

// Start starts an embedded NATS server with JetStream and waits until it
// accepts connections.
func Start(o Options) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("broker listen port %q: %w", portStr, err)
	}
	if !o.authenticated() && !credentials.IsLoopback(host) {
		if !o.Insecure {
			return nil, fmt.Errorf("listen on %s: %w", o.Listen, ErrUnauthenticated)
		}
		if o.Logger != nil {
			o.Logger.Warn("INSECURE: the embedded broker listens beyond loopback with no authentication; anyone who can reach it can make every node run anything", "listen", o.Listen)
		}
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// Say plainly when the address is taken: the server would only
		// report "not ready" after the whole timeout.
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded broker cannot listen on %s: %w", o.Listen, err)
		}
		ln.Close()
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		// Nodes on weak links reconnect often; keep their subscriptions'
		// pending data bounded but generous.
		MaxPayload: 1 << 20,
		Nkeys:      o.Users,
	}
	if o.TLS != nil {
		opts.TLSConfig, opts.TLS = o.TLS, true
		opts.TLSVerify = o.TLS.ClientCAs != nil
		opts.TLSTimeout = 5
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded broker: %w", err)
	}
	if o.Logger != nil {
		srv.SetLoggerV2(&slogAdapter{l: o.Logger.With("component", "broker")}, false, false, false)
	}
	srv.Start()
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("%w after %s (is %s already in use?)", ErrNotReady, timeout, o.Listen)
	}
	return srv, nil
}

// slogAdapter feeds the server's log into slog. Notices are debug-level:
// the server is chatty at start.
type slogAdapter struct{ l *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any)  {}
