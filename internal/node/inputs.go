package node

import (
	"context"
	"fmt"

	"github.com/stewardfleet/steward/internal/audit"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/httpapi"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/socket"
)

// listenInputs opens what operators give the node messages through:
// steward.sock always, the TCP listener (on the socket's server: the same
// input, answers and limits) and the HTTP API when configured. Input from
// all of them goes through sendInput; input refused before it is audited
// by refusedInput. On error nothing is left listening.
func (n *Node) listenInputs() (*socket.Server, *httpapi.Server, error) {
	sock, err := socket.New(n.textInput, n.log.With("component", "socket"), socket.Options{Refused: n.refusedInput})
	if err != nil {
		return nil, nil, err
	}
	if err := sock.ListenUnix(n.cfg.SocketPath()); err != nil {
		return nil, nil, err
	}
	if n.cfg.TCPListener != "" {
		remote, err := config.ParseNetworks(n.cfg.TCPListenerRemote)
		if err == nil {
			var addr fmt.Stringer
			if addr, err = sock.ListenTCP(n.cfg.TCPListener, remote); err == nil {
				n.log.Info("TCP listener listening", "listen", addr.String())
			}
		}
		if err != nil {
			sock.Close()
			return nil, nil, fmt.Errorf("tcp-listener: %w", err)
		}
	}
	if n.cfg.HTTPAPI == "" {
		return sock, nil, nil
	}
	api, err := n.listenHTTP()
	if err != nil {
		sock.Close()
		return nil, nil, err
	}
	return sock, api, nil
}

// listenHTTP opens the HTTP API.
func (n *Node) listenHTTP() (*httpapi.Server, error) {
	var token string
	if n.cfg.HTTPAPITokenFile != "" {
		var err error
		if token, err = httpapi.LoadToken(n.cfg.HTTPAPITokenFile); err != nil {
			return nil, fmt.Errorf("http-api-token-file: %w", err)
		}
	}
	var folder string
	if n.cfg.HTTPDataFolder != "" {
		var err error
		if folder, err = config.CleanHTTPDataFolder(n.cfg.HTTPDataFolder); err != nil {
			return nil, fmt.Errorf("http-data-folder: %w", err)
		}
	}
	tlsConfig, err := n.httpTLS()
	if err != nil {
		return nil, fmt.Errorf("http-api: %w", err)
	}
	nodes := registry.New(n.assets.Nodes)
	return httpapi.Listen(httpapi.Backend{
		Send: n.sendInput, Status: n.status.List, Nodes: nodes.List, Refused: n.refusedInput,
	}, httpapi.Options{
		Addr: n.cfg.HTTPAPI, Token: token, DataFolder: n.files.Dir(), FilesFolder: folder, TLS: tlsConfig,
		Logger: n.log.With("component", "http-api"),
	})
}

// textInput sends one JSON value from the socket or the TCP listener and
// answers with one line per message (socket.Answer).
func (n *Node) textInput(ctx context.Context, input []byte) []byte {
	return socket.Answer(n.sendInput(ctx, input))
}

// sendInput sends operator input through the node's sender (into the
// outbox while the broker cannot be reached) and logs what became of it.
// Target expressions ("*", label selectors) are resolved on the central
// node and refused elsewhere (targetResolver), for every input alike.
func (n *Node) sendInput(ctx context.Context, input []byte) ([]sender.Receipt, error) {
	receipts, err := n.sender.SendInputWith(ctx, input, sender.InputOptions{Resolver: n.targetResolver()})
	if err != nil {
		n.log.Warn("input refused", "error", err, "code", socket.Code(err))
		return nil, err
	}
	for _, r := range receipts {
		switch {
		case r.Queued:
			n.log.Info("message queued in the outbox", "msg_id", r.ID, "method", r.Method, "to", r.Nodes)
			n.wakeForwarder()
		case r.OK():
			n.log.Info("message sent", "msg_id", r.ID, "method", r.Method, "to", r.Nodes)
		default:
			n.log.Warn("message refused", "msg_id", r.ID, "index", r.Index+1, "error", r.Error, "code", r.Code)
		}
	}
	return receipts, nil
}

// refusedInput audits input an input refused before the sender could
// read it (invalid JSON or too large on the socket, an HTTP body over
// 16 MiB), as the sender audits what it refuses.
func (n *Node) refusedInput(input []byte, err error) {
	_ = n.audit.Write(audit.RefusedInput(input, err))
}
