package node_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/metrics"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// TestMetricsEndpoint runs a central node and a ship that serve metrics,
// sends the ship pings and scrapes both over HTTP: the ship's counters of
// handled messages, latencies and attempts move, its gauges are there, a
// malformed message counts as refused, and central counts both nodes
// online. The ship's profiling port serves Go's profiles.
func TestMetricsEndpoint(t *testing.T) {
	f := newFleet(t)
	ccfg := f.config("central")
	ccfg.PromHostAndPort = natstest.FreePort(t)
	central := f.start(ccfg)
	scfg := f.config("ship1")
	scfg.PromHostAndPort = natstest.FreePort(t)
	scfg.ProfilingPort = natstest.FreePort(t)
	f.start(scfg)

	ship := "http://" + scfg.PromHostAndPort + "/metrics"
	before := scrape(t, ship)
	if v, ok := metricValue(before, metrics.BrokerConnected, `node="ship1"`); !ok || v != 1 {
		t.Errorf("%s = %v (found %v), want 1:\n%s", metrics.BrokerConnected, v, ok, before)
	}
	for _, name := range []string{metrics.QueueDepth, metrics.OutboxMessages, metrics.LedgerEntries, "go_goroutines"} {
		if _, ok := metricValue(before, name); !ok {
			t.Errorf("no %s in the scrape:\n%s", name, before)
		}
	}
	pings := func(body string) float64 {
		v, _ := metricValue(body, metrics.MessagesHandled, `method="REQPing"`, `status="succeeded"`)
		return v
	}
	start := pings(before)

	c := f.client(central.cfg)
	const n = 3
	var input []string
	for range n {
		input = append(input, `{"toNode":"ship1","method":"REQPing"}`)
	}
	ids := send(t, c, "["+strings.Join(input, ",")+"]")
	for _, r := range wait(t, c, ids, 20*time.Second) {
		if r.Status != status.Succeeded {
			t.Fatalf("ping: %s", describe(wait(t, c, ids, time.Second)))
		}
	}

	// A scrape is not a snapshot: each metric family is read in turn
	// (attempts before latency before handled), while deliveries end. So
	// wait until every one of them counts the pings.
	var body string
	observed := func(name string) float64 {
		v, _ := metricValue(body, name, `method="REQPing"`)
		return v
	}
	natstest.Eventually(t, 10*time.Second, fmt.Sprintf("%d more succeeded REQPing on ship1's %s and histograms", n, metrics.MessagesHandled), func() bool {
		body = scrape(t, ship)
		return pings(body)-start >= n && observed(metrics.DeliveryLatency+"_count") >= n && observed(metrics.DeliveryAttempt+"_count") >= n
	})
	for _, name := range []string{metrics.DeliveryLatency + "_count", metrics.DeliveryAttempt + "_count"} {
		if v, _ := metricValue(body, name, `method="REQPing"`); v < n {
			t.Errorf("%s = %v, want at least %d:\n%s", name, v, n, body)
		}
	}
	if v, _ := metricValue(body, metrics.DeliveryAttempt+"_sum", `method="REQPing"`); v < n {
		t.Errorf("%s_sum = %v, want at least %d (every delivery is delivered once at least)", metrics.DeliveryAttempt, v, n)
	}
	if v, ok := metricValue(body, metrics.MethodsInFlight, `method="REQPing"`); !ok || v != 0 {
		t.Errorf("%s for REQPing = %v (found %v), want 0 once they ended", metrics.MethodsInFlight, v, ok)
	}
	if v, _ := metricValue(body, metrics.LedgerEntries); v < n {
		t.Errorf("%s = %v, want at least %d", metrics.LedgerEntries, v, n)
	}

	// A message that does not decode is refused, and counted by its code.
	_, js := natstest.Connect(t, f.srv)
	if _, err := js.Publish(t.Context(), stream.MessageSubject("ship1"), []byte(`{"toNode":"ship1","method":`)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 20*time.Second, "ship1 counts the malformed message refused", func() bool {
		v, _ := metricValue(scrape(t, ship), metrics.MessagesRefused, `code="malformed"`)
		return v == 1
	})

	natstest.Eventually(t, 20*time.Second, "central counts both nodes online", func() bool {
		v, _ := metricValue(scrape(t, "http://"+ccfg.PromHostAndPort+"/metrics"), metrics.Nodes, `state="online"`)
		return v >= 2
	})

	res, err := http.Get("http://" + scfg.ProfilingPort + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine") {
		t.Errorf("/debug/pprof/: %s\n%s", res.Status, b)
	}
}

// scrape fetches a metrics page.
func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s %v", url, res.Status, err)
	}
	return string(b)
}

// metricValue sums the samples of name (in Prometheus's text format)
// whose labels include every one of labels (`key="value"`).
func metricValue(body, name string, labels ...string) (sum float64, found bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(line, l)
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if match && err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}
