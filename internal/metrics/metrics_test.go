package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNew builds two nodes' metrics in one process (no collision: each
// has its own registry) and checks what one records is in its page only.
func TestNew(t *testing.T) {
	a := New("a", Sources{Connected: func() bool { return true }, Outbox: func() int { return 2 }, Ledger: func() int { return 5 }})
	b := New("b", Sources{})
	a.Handled("REQPing", "succeeded", 1500*time.Millisecond, 1)
	done := a.Running("REQCliCommand")
	a.SetQueueDepth(7)
	a.SetNodes(3, 1)

	page := get(t, a.Handler(), "192.0.2.1:1234")
	for _, want := range []string{
		`steward_messages_handled_total{method="REQPing",node="a",status="succeeded"} 1`,
		`steward_delivery_latency_seconds_sum{method="REQPing",node="a"} 1.5`,
		`steward_delivery_attempts_count{method="REQPing",node="a"} 1`,
		`steward_methods_in_flight{method="REQCliCommand",node="a"} 1`,
		`steward_queue_depth{node="a"} 7`,
		`steward_nodes{node="a",state="online"} 3`,
		`steward_nodes{node="a",state="offline"} 1`,
		`steward_broker_connected{node="a"} 1`,
		`steward_outbox_messages{node="a"} 2`,
		`steward_ledger_entries{node="a"} 5`,
	} {
		if !strings.Contains(page, want+"\n") {
			t.Errorf("no %s in:\n%s", want, page)
		}
	}
	done()
	if page := get(t, a.Handler(), "192.0.2.1:1234"); !strings.Contains(page, `steward_methods_in_flight{method="REQCliCommand",node="a"} 0`) {
		t.Errorf("in flight after done:\n%s", page)
	}
	if page := get(t, b.Handler(), "192.0.2.1:1234"); strings.Contains(page, `node="a"`) || strings.Contains(page, BrokerConnected) {
		t.Errorf("b's page shows a's metrics, or sources it was not given:\n%s", page)
	}

	var none *Metrics // a node that serves no metrics
	none.Handled("REQPing", "succeeded", time.Second, 1)
	none.Running("REQPing")()
	none.SetQueueDepth(1)
	none.SetNodes(1, 1)
}

func TestListenLoopbackOnly(t *testing.T) {
	h := http.NotFoundHandler()
	if _, err := Listen("0.0.0.0:0", h, nil); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("0.0.0.0 without remote networks: err = %v, want ErrNotLoopback", err)
	}
	s, err := Listen("127.0.0.1:0", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.OnLoopback() {
		t.Errorf("%s is not on loopback", s.Addr())
	}
}

func TestAllowOnly(t *testing.T) {
	h := allowOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	for _, tt := range []struct {
		remote string
		want   int
	}{
		{"127.0.0.1:5000", http.StatusOK},
		{"[::1]:5000", http.StatusOK},
		{"10.1.2.3:5000", http.StatusOK},
		{"[::ffff:10.1.2.3]:5000", http.StatusOK},
		{"192.0.2.1:5000", http.StatusForbidden},
		{"garbage", http.StatusForbidden},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.RemoteAddr = tt.remote
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s: %d, want %d", tt.remote, w.Code, tt.want)
		}
	}
}

func TestProfilingHandler(t *testing.T) {
	if page := get(t, ProfilingHandler(), "127.0.0.1:1"); !strings.Contains(page, "goroutine") {
		t.Errorf("/debug/pprof/:\n%s", page)
	}
}

func get(t *testing.T, h http.Handler, remote string) string {
	t.Helper()
	path := "/metrics"
	if _, ok := h.(*http.ServeMux); ok {
		path = "/debug/pprof/"
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = remote
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
	return w.Body.String()
}

// TestDashboardNames checks that the Grafana dashboard queries only
// metrics this package defines.
func TestDashboardNames(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "steward.json"))
	if err != nil {
		t.Fatal(err)
	}
	known := []string{MessagesHandled, MessagesRefused, DeliveryLatency, DeliveryAttempt, MethodsInFlight, QueueDepth, Nodes,
		BrokerConnected, OutboxMessages, LedgerEntries}
	used := regexp.MustCompile(`steward_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the dashboard uses no steward metric")
	}
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if n, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(known, n) {
				base = n
			}
		}
		if !slices.Contains(known, base) {
			t.Errorf("the dashboard queries %s, which steward does not export", name)
		}
	}
}
