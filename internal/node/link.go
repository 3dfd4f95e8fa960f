package node

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/stream"
)

// Link is a connection to the broker as a node uses it, made by Dial. A
// node dials its own, or runs on one its caller shares between several
// nodes in one process (Options.Link); either way the node is told of
// every reconnect.
type Link struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// Assets, if not nil, is steward's layout on the broker, opened once
	// for every node on the link; a node on a link without it opens the
	// layout itself (central creates it).
	Assets *stream.Assets

	log   *slog.Logger
	mu    sync.Mutex
	nodes map[*Node]struct{} // told of reconnects

	lastErr   string // the last connection failure logged, and when
	lastErrAt time.Time
}

// Dial connects to the broker at url, reconnecting forever. Publishes made
// while the link is down fail at once instead of waiting in a buffer to be
// sent later, long after their caller gave up on them: every delivery step
// is retried from the ledger instead. A link that goes silent (a black
// hole) is noticed in under a minute. name is the connection's name on the
// broker; domain is the JetStream domain of the fleet's layout ("" for the
// broker's own, see stream.NewJetStream); opts are added to these settings.
func Dial(url, name, domain string, log *slog.Logger, opts ...nats.Option) (*Link, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Link{log: log}
	all := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
		nats.PingInterval(15 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				l.log.Warn("disconnected from broker", "error", err)
			}
		}),
		// A refused connection (wrong key, bad certificate) is retried
		// every second; say why at once, then once a minute.
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			l.connectFailed(err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			l.log.Info("reconnected to broker", "url", c.ConnectedUrlRedacted())
			l.reconnected()
		}),
	}
	nc, err := nats.Connect(url, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to broker %s: %w", url, err)
	}
	if l.JS, err = stream.NewJetStream(nc, stream.PubAckTimeout, domain); err != nil {
		nc.Close()
		return nil, err
	}
	l.NC = nc
	return l, nil
}

// Close waits (at most 5 s) for the broker to confirm what was published
// on the link, then drains and closes the connection.
func (l *Link) Close() {
	select {
	case <-l.JS.PublishAsyncComplete():
	case <-time.After(5 * time.Second):
		l.log.Warn("stopping with publishes not yet confirmed by the broker")
	}
	if err := l.NC.Drain(); err != nil {
		l.NC.Close()
	}
	for i := 0; i < 100 && !l.NC.IsClosed(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// attach tells n of the link's reconnects from now on; detach stops that.
func (l *Link) attach(n *Node) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nodes == nil {
		l.nodes = map[*Node]struct{}{}
	}
	l.nodes[n] = struct{}{}
}

func (l *Link) detach(n *Node) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.nodes, n)
}

func (l *Link) reconnected() {
	l.mu.Lock()
	nodes := make([]*Node, 0, len(l.nodes))
	for n := range l.nodes {
		nodes = append(nodes, n)
	}
	l.mu.Unlock()
	for _, n := range nodes {
		n.reconnected()
	}
}

// connectFailed logs why a connection attempt failed: a new reason at
// once, the same one again after a minute.
func (l *Link) connectFailed(err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	same := err.Error() == l.lastErr && time.Since(l.lastErrAt) < time.Minute
	if !same {
		l.lastErr, l.lastErrAt = err.Error(), time.Now()
	}
	l.mu.Unlock()
	if !same {
		l.log.Warn("cannot connect to the broker; retrying", "error", err)
	}
}
