package node

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/metrics"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/stream"
)

// metricsInterval is how often the node refreshes the gauges that cost a
// broker round trip (its queue depth; on central, the nodes online);
// metricsFirst is how long after start it first reads them.
const (
	metricsInterval = 15 * time.Second
	metricsFirst    = time.Second
)

// setupMetrics builds the node's metrics when it serves them (n.metrics
// stays nil otherwise, and recording costs nothing), and counts each
// delivery the node takes to its end before next (Options.OnDone) hears
// of it.
func (n *Node) setupMetrics(next func(Done)) {
	if n.cfg.PromHostAndPort == "" {
		return
	}
	n.metrics = metrics.New(n.cfg.NodeName, metrics.Sources{
		Connected: n.nc.IsConnected, Outbox: n.outbox.Len, Ledger: n.ledger.Len,
	})
	n.onDone = func(d Done) {
		var latency time.Duration
		if !d.Msg.SentAt.IsZero() {
			latency = n.sender.OnBrokerClock(n.now()).Sub(d.Msg.SentAt)
		}
		n.metrics.Handled(d.Msg.Method, d.Status, latency, d.Attempts)
		if next != nil {
			next(d)
		}
	}
}

// observers are the node's metrics and profiling endpoints. They listen
// before the node runs, so that a port already taken stops it at start.
type observers struct {
	n                  *Node
	metrics, profiling *metrics.Server
}

// listenObservers opens the configured endpoints; on error nothing is
// left listening.
func (n *Node) listenObservers() (*observers, error) {
	o := &observers{n: n}
	if n.metrics != nil {
		remote, err := config.ParseNetworks(n.cfg.PromRemote)
		if err == nil {
			o.metrics, err = metrics.Listen(n.cfg.PromHostAndPort, n.metrics.Handler(), remote)
		}
		if err != nil {
			return nil, fmt.Errorf("prom-host-and-port: %w", err)
		}
		if o.metrics.OnLoopback() {
			n.log.Info("metrics listening", "listen", o.metrics.Addr().String())
		} else {
			n.log.Warn("metrics listening beyond loopback, without authentication", "listen", o.metrics.Addr().String(), "remote", n.cfg.PromRemote)
		}
	}
	if n.cfg.ProfilingPort != "" {
		s, err := metrics.Listen(n.cfg.ProfilingPort, metrics.ProfilingHandler(), nil)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("profiling-port: %w", err)
		}
		o.profiling = s
		n.log.Info("profiling listening", "listen", s.Addr().String())
	}
	return o, nil
}

// run serves the endpoints, and refreshes the metrics' gauges, with
// goRun (see Node.run).
func (o *observers) run(goRun func(string, func(context.Context) error)) {
	if o.metrics != nil {
		goRun("metrics", o.metrics.Serve)
		goRun("metrics-refresh", o.n.refreshMetrics)
	}
	if o.profiling != nil {
		goRun("profiling", o.profiling.Serve)
	}
}

// close stops the endpoints (they stop by themselves when the node's
// context ends; close is for a node that stops before it runs them).
func (o *observers) close() {
	if o.metrics != nil {
		o.metrics.Close()
	}
	if o.profiling != nil {
		o.profiling.Close()
	}
}

// refreshMetrics reads the gauges that cost a broker round trip, every
// metricsInterval, until ctx ends.
func (n *Node) refreshMetrics(ctx context.Context) error {
	t := time.NewTimer(metricsFirst)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n.readGauges(ctx)
		t.Reset(metricsInterval)
	}
}

// readGauges reads the node's queue depth from its consumer's info and,
// on central, how many nodes the registry has online. What cannot be
// read now (the link is down) keeps its last value.
func (n *Node) readGauges(ctx context.Context) {
	if !n.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if q := n.queue.Load(); q != nil {
		q.mu.Lock()
		c := q.cons
		q.mu.Unlock()
		if c != nil {
			if info, err := c.Info(ctx); err == nil {
				n.metrics.SetQueueDepth(info.NumPending + uint64(max(info.NumAckPending, 0)))
			}
		}
	}
	if !n.isCentral() {
		return
	}
	nodes, err := registry.New(n.assets.Nodes).List(ctx)
	if err != nil {
		return
	}
	now, err := stream.BrokerNow(ctx, n.js, n.assets.Deadlines, n.cfg.NodeName)
	if err != nil {
		now = n.now()
	}
	online := 0
	for _, nd := range nodes {
		if nd.Online(now) {
			online++
		}
	}
	n.metrics.SetNodes(online, len(nodes)-online)
}
