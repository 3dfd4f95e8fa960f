// Package metrics is what a node tells Prometheus about itself (its
// /metrics endpoint) and its loopback-only profiling endpoint.
//
// Guarantees:
//   - Every Metrics owns its registry; nothing is registered with
//     Prometheus's global default registry, so tests and several nodes in
//     one process never collide, and a scrape shows only the node that
//     serves it (every series carries its name in the node label).
//   - The methods of a nil *Metrics do nothing: a node that serves no
//     metrics pays for none.
//   - Recording costs no broker round trip: counters and histograms move
//     as deliveries end; the gauges that need the broker (queue depth,
//     nodes online) are set by the node on a timer, never per message; the
//     others are read when scraped.
//   - The endpoints listen on loopback unless the operator names the
//     networks beyond it that may scrape (metrics only; profiling never
//     leaves loopback).
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metric names, as the dashboard (deploy/grafana/steward.json) and
// docs/operations.md use them.
const (
	MessagesHandled = "steward_messages_handled_total"
	MessagesRefused = "steward_messages_refused_total"
	DeliveryLatency = "steward_delivery_latency_seconds"
	DeliveryAttempt = "steward_delivery_attempts"
	MethodsInFlight = "steward_methods_in_flight"
	QueueDepth      = "steward_queue_depth"
	Nodes           = "steward_nodes"
	BrokerConnected = "steward_broker_connected"
	OutboxMessages  = "steward_outbox_messages"
	LedgerEntries   = "steward_ledger_entries"
)

// Sources are read when the node is scraped. Any may be nil (the metric
// is then left out).
type Sources struct {
	// Connected reports whether the node's link to the broker is up.
	Connected func() bool
	// Outbox is how many messages wait in the node's outbox.
	Outbox func() int
	// Ledger is how many entries the node's ledger holds.
	Ledger func() int
}

// Metrics are one node's metrics and the registry that holds them.
type Metrics struct {
	reg      *prometheus.Registry
	handled  *prometheus.CounterVec
	refused  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	attempts *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	queue    prometheus.Gauge
	nodes    *prometheus.GaugeVec
}

// New returns the metrics of the node named node, in a registry of their
// own that also holds the Go runtime's and the process's collectors.
func New(node string, src Sources) *Metrics {
	labels := prometheus.Labels{"node": node}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MessagesHandled, ConstLabels: labels,
			Help: "Deliveries this node took to their end, by method and final status.",
		}, []string{"method", "status"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MessagesRefused, ConstLabels: labels,
			Help: "Messages this node refused without running them or taking them as a delivery of its own, by error code: ones that did not decode or failed its checks (malformed, signature, key), replays of a delivery it has in hand or ended, replies to no request it sent.",
		}, []string{"code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: DeliveryLatency, ConstLabels: labels,
			Help: "Time from when the sender sent a message to when its delivery ended on this node, both on the broker's clock as each node measured it.",
			// Intermittent links: minutes and hours are ordinary.
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}, []string{"method"}),
		attempts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: DeliveryAttempt, ConstLabels: labels,
			Help:    "How many times the broker had delivered a message to this node when its delivery ended.",
			Buckets: []float64{1, 2, 3, 4, 5, 10, 20, 50},
		}, []string{"method"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MethodsInFlight, ConstLabels: labels,
			Help: "Methods running on this node now, by method.",
		}, []string{"method"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: QueueDepth, ConstLabels: labels,
			Help: "Messages in this node's queue on the broker: not yet delivered plus delivered and not yet acknowledged (refreshed periodically).",
		}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: Nodes, ConstLabels: labels,
			Help: "Nodes in the registry by state, online or offline (central node only, refreshed periodically).",
		}, []string{"state"}),
	}
	m.reg.MustRegister(m.handled, m.refused, m.latency, m.attempts, m.inFlight, m.queue, m.nodes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Connected != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: BrokerConnected, ConstLabels: labels,
			Help: "1 while this node's link to the broker is up, 0 while it is down.",
		}, func() float64 { return bool01(src.Connected()) }))
	}
	if src.Outbox != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: OutboxMessages, ConstLabels: labels,
			Help: "Messages waiting in this node's outbox for the broker to be reachable.",
		}, func() float64 { return float64(src.Outbox()) }))
	}
	if src.Ledger != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: LedgerEntries, ConstLabels: labels,
			Help: "Entries in this node's ledger of deliveries (all nodes' when several share one).",
		}, func() float64 { return float64(src.Ledger()) }))
	}
	return m
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handled records a delivery that ended with status: latency from its
// sending to now (negative latencies, from clocks apart, count as 0) and
// how many times the broker had delivered it.
func (m *Metrics) Handled(method, status string, latency time.Duration, attempts uint64) {
	if m == nil {
		return
	}
	m.handled.WithLabelValues(method, status).Inc()
	m.latency.WithLabelValues(method).Observe(max(latency, 0).Seconds())
	m.attempts.WithLabelValues(method).Observe(float64(attempts))
}

// Refused records a message refused with code (message.Code).
func (m *Metrics) Refused(code string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(code).Inc()
}

// Running counts a method as in flight until the returned func is called.
func (m *Metrics) Running(method string) (done func()) {
	if m == nil {
		return func() {}
	}
	g := m.inFlight.WithLabelValues(method)
	g.Inc()
	return g.Dec
}

// SetQueueDepth sets the node's queue depth.
func (m *Metrics) SetQueueDepth(n uint64) {
	if m == nil {
		return
	}
	m.queue.Set(float64(n))
}

// SetNodes sets how many nodes the registry has online and offline.
func (m *Metrics) SetNodes(online, offline int) {
	if m == nil {
		return
	}
	m.nodes.WithLabelValues("online").Set(float64(online))
	m.nodes.WithLabelValues("offline").Set(float64(offline))
}
