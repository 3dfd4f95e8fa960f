package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
)

// jaeger is a Jaeger v2 all-in-one process (memory storage) on loopback.
type jaeger struct {
	otlp  string // host:port of its OTLP/HTTP receiver
	query string // base URL of its HTTP API
}

// startJaeger runs the binary STEWARD_JAEGER names (scripts/build-tools.sh
// builds it), or skips the test when there is none.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := os.Getenv("STEWARD_JAEGER")
	if bin == "" {
		t.Skip("STEWARD_JAEGER is not set (scripts/build-tools.sh jaeger builds Jaeger)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("STEWARD_JAEGER=%s: %v", bin, err)
	}
	config, err := filepath.Abs(filepath.Join("testdata", "jaeger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	otlp, query, grpc := fleettest.FreePort(t), fleettest.FreePort(t), fleettest.FreePort(t)
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "jaeger.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", config)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	cmd.Env = append(os.Environ(), "JAEGER_OTLP_PORT="+strconv.Itoa(otlp),
		"JAEGER_QUERY_PORT="+strconv.Itoa(query), "JAEGER_QUERY_GRPC_PORT="+strconv.Itoa(grpc))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("--- jaeger's log:\n%s", b)
		}
	})
	j := &jaeger{otlp: fmt.Sprintf("127.0.0.1:%d", otlp), query: fmt.Sprintf("http://127.0.0.1:%d", query)}
	fleettest.Eventually(t, 30*time.Second, "jaeger's query API", func() bool {
		_, err := j.get("/api/services")
		return err == nil
	})
	return j
}

func (j *jaeger) get(path string) ([]byte, error) {
	resp, err := http.Get(j.query + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, err
}

// jaegerTrace is the part of Jaeger's /api/traces/<id> answer the test
// reads.
type jaegerTrace struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			ProcessID     string `json:"processID"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
				TraceID string `json:"traceID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

// TestTracesInJaeger: central and ship1 run as processes exporting to a
// real Jaeger; a message sent with steward send is one trace in Jaeger,
// holding the spans of the sender, ship1 and central (the reply method),
// each parented across the processes.
func TestTracesInJaeger(t *testing.T) {
	j := startJaeger(t)
	f := newFleet(t)
	f.Start("central", "--otlp-endpoint", j.otlp)
	f.Start("ship1", "--otlp-endpoint", j.otlp)
	f.WaitOnline("central", "ship1")

	res, code := f.sendWait(writeTemp(t, `{"toNode":"ship1","method":"REQPing"}`))
	if code != 0 || len(res.Records) != 1 || res.Records[0].Status != "succeeded" {
		t.Fatalf("exit %d, records %+v", code, res.Records)
	}
	traceID := res.Records[0].TraceID
	if len(traceID) != 32 {
		t.Fatalf("the status record has no trace ID: %+v", res.Records[0])
	}
	if out, _, _ := f.Steward("central", nil, "status", res.Records[0].ID); !strings.Contains(out, "trace "+traceID) {
		t.Errorf("steward status does not show the trace ID:\n%s", out)
	}

	type span struct{ id, name, service, parent string }
	var spans []span
	fleettest.Eventually(t, 60*time.Second, "the whole trace in jaeger", func() bool {
		b, err := j.get("/api/traces/" + traceID)
		if err != nil {
			return false
		}
		var tr jaegerTrace
		if err := json.Unmarshal(b, &tr); err != nil || len(tr.Data) != 1 {
			return false
		}
		spans = spans[:0]
		for _, s := range tr.Data[0].Spans {
			sp := span{id: s.SpanID, name: s.OperationName, service: tr.Data[0].Processes[s.ProcessID].ServiceName}
			for _, r := range s.References {
				if r.RefType == "CHILD_OF" {
					sp.parent = r.SpanID
				}
			}
			spans = append(spans, sp)
		}
		// send, publish, queue, deliver, run, reply on the way out;
		// queue, deliver, run of the reply on central.
		return len(spans) >= 9
	})
	find := func(name, service string) span {
		t.Helper()
		var found []span
		for _, s := range spans {
			if s.name == name && s.service == service {
				found = append(found, s)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d spans %s of %s in jaeger, want 1: %+v", len(found), name, service, spans)
		}
		return found[0]
	}
	childOf := func(c, p span) {
		t.Helper()
		if c.parent != p.id {
			t.Errorf("%s (%s) is not a child of %s (%s): %+v", c.name, c.service, p.name, p.service, spans)
		}
	}
	send := find("send", "central")
	if send.parent != "" {
		t.Errorf("send has a parent: %+v", send)
	}
	publish := find("publish", "central")
	childOf(publish, send)
	childOf(find("queue", "ship1"), publish)
	deliver := find("deliver", "ship1")
	childOf(deliver, publish)
	childOf(find("run", "ship1"), deliver)
	reply := find("reply", "ship1")
	childOf(reply, deliver)
	replyDeliver := find("deliver", "central")
	childOf(replyDeliver, reply)
	childOf(find("run", "central"), replyDeliver)
}
