package compose_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/status"
)

// referenceMessages sends the original's reference files from central and
// checks every delivery and every reply file. The images have no tree
// (busybox has none), so "tree ./" becomes "ls -R ./"; the HTTP GET goes
// to Jaeger's page.
func referenceMessages(t *testing.T, f *fleet) {
	examples := filepath.Join(f.root, "testdata", "examples")
	for _, ex := range []struct {
		file  string
		reply string // the reply file under central's data folder, %s the node
		want  string // in the reply file
	}{
		{"cli-command-two-nodes.json", "cli-command-executed-result/%s/some.log", "./"},
		{"cli-command.json", "cli-command-executed-result/%s/some.log", "./"},
		{"cli-command-reply-options.json", "var/cli/command_result/%s/some-file-name.result", "./"},
		{"http-get-to-nodes.json", "httpget/%s/index.html", "<html"},
		{"op-process-list.json", "test/dir/%s/test.result", "REQCliCommand"},
		{"hello.json", "", ""},
	} {
		b, err := os.ReadFile(filepath.Join(examples, ex.file))
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.NewReplacer("tree ./", "ls -R ./", "http://127.0.0.1:8080/", "http://jaeger:16686/").Replace(string(b)))
		start := time.Now()
		res := f.send("central", b, true)
		t.Logf("%s: %d records in %s", ex.file, len(res.Records), time.Since(start).Round(time.Millisecond))
		if len(res.Receipts) == 0 {
			t.Fatalf("%s: no receipt", ex.file)
		}
		deliveries := 0
		for _, r := range res.Records {
			if r.Status != status.Succeeded {
				t.Errorf("%s: %s %s: %s %q", ex.file, r.Node, map[bool]string{true: "reply", false: "delivery"}[r.Reply], r.Status, r.Error)
			}
			if r.Reply || ex.reply == "" {
				continue
			}
			deliveries++
			path := "/var/lib/steward/data/" + fmt.Sprintf(ex.reply, r.Node)
			out, err := f.run(time.Minute, nil, "docker", "exec", f.container("central"), "cat", path)
			if err != nil || !strings.Contains(out, ex.want) {
				t.Errorf("%s: reply file %s: %v %.200q", ex.file, path, err, out)
			}
		}
		if ex.reply != "" && deliveries == 0 {
			t.Errorf("%s: no delivery records: %+v", ex.file, res.Records)
		}
	}
}

// shipCutOff takes ship2 off the network while a command runs on it (for
// longer than the message's ACKTimeout) and sends it another meanwhile:
// both end once, with one run each, after it is back.
func shipCutOff(t *testing.T, f *fleet) {
	ship2 := f.container("ship2")
	long := command("sleep 8; "+record("cut-running"), "ship2")
	long.ACKTimeout, long.Retries = 2, 3
	running := f.sendMessages("central", false, long).Receipts[0].ID
	eventually(t, time.Minute, "the long command running on ship2", func() bool {
		recs := f.status("central", running)
		return len(recs) == 1 && recs[0].Status == status.Running
	})
	f.docker("network", "disconnect", f.network("hub"), ship2)
	connected := false
	defer func() {
		if !connected {
			f.docker("network", "connect", f.network("hub"), ship2)
		}
	}()
	queued := f.sendMessages("central", false, command(record("cut-queued"), "ship2")).Receipts[0].ID
	// The cut has to outlast AckWait (2 s) and the command: a fault's
	// length, not a wait for a result.
	time.Sleep(15 * time.Second)
	if recs := f.status("central", queued); recs[0].Status != status.Pending {
		t.Errorf("sent to ship2 while it was cut off: %s, want pending", recs[0].Status)
	}
	f.docker("network", "connect", f.network("hub"), ship2)
	connected = true
	for _, id := range []string{running, queued} {
		eventually(t, 3*time.Minute, "ship2's messages ended", func() bool {
			recs := f.status("central", id)
			return len(recs) == 1 && recs[0].Status.Terminal()
		})
		if recs := f.status("central", id); recs[0].Status != status.Succeeded {
			t.Errorf("%s: %s %q", id, recs[0].Status, recs[0].Error)
		}
	}
	runs := f.runs("ship2")
	if runs["cut-running"] != 1 || runs["cut-queued"] != 1 {
		t.Errorf("ship2 ran the long command %d times and the queued one %d times, want once each", runs["cut-running"], runs["cut-queued"])
	}
}

// uplinkCut cuts the leaf site off the hub. The site's own fleet goes on
// (site1 sends to ship3 and gets its result); what central sends to ship3
// waits in the hub and runs once after the uplink is back.
func uplinkCut(t *testing.T, f *fleet) {
	leaf := f.container("site1-nats")
	f.docker("network", "disconnect", f.network("hub"), leaf)
	connected := false
	defer func() {
		if !connected {
			f.docker("network", "connect", f.network("hub"), leaf)
		}
	}()
	fromHub := f.sendMessages("central", false, command(record("hub-during-cut"), "ship3")).Receipts[0].ID
	local := f.sendMessages("site1", true, command(record("site-during-cut"), "ship3"))
	for _, r := range local.Records {
		if r.Status != status.Succeeded || (!r.Reply && r.Output != "site-during-cut\n") {
			t.Errorf("the site's own message with its uplink cut: %s %s %q %q", r.Node, r.Status, r.Output, r.Error)
		}
	}
	if recs := f.status("central", fromHub); recs[0].Status != status.Pending {
		t.Errorf("central's message to ship3 with the uplink cut: %s, want pending", recs[0].Status)
	}
	f.docker("network", "connect", f.network("hub"), leaf)
	connected = true
	eventually(t, 3*time.Minute, "central's message to ship3 ended", func() bool {
		recs := f.status("central", fromHub)
		return len(recs) == 1 && recs[0].Status.Terminal()
	})
	if recs := f.status("central", fromHub); recs[0].Status != status.Succeeded || recs[0].Output != "hub-during-cut\n" {
		t.Errorf("central's message to ship3 after the uplink came back: %s %q %q", recs[0].Status, recs[0].Output, recs[0].Error)
	}
	// Both sides still see the site's result.
	if recs := f.status("site1", local.Receipts[0].ID); recs[0].Status != status.Succeeded {
		t.Errorf("the site's message on site1 after the uplink came back: %s", recs[0].Status)
	}
	runs := f.runs("ship3")
	if runs["hub-during-cut"] != 1 || runs["site-during-cut"] != 1 {
		t.Errorf("ship3 ran central's message %d times and site1's %d times, want once each", runs["hub-during-cut"], runs["site-during-cut"])
	}
}

// serverStopped stops one of the hub's three NATS servers while 200
// commands go to ship1 and ship2, and starts it again: every command
// succeeds and ran exactly once.
func serverStopped(t *testing.T, f *fleet) {
	const n = 200
	var msgs []message
	for i := range n {
		msgs = append(msgs, command(record(fmt.Sprintf("load-%d", i)), []string{"ship1", "ship2"}[i%2]))
	}
	input, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := f.run(6*time.Minute, input, "docker", "exec", "-i", f.container("central"), "steward",
			"send", "-f", "-", "-o", "json", "--wait", "--timeout", "300s")
		done <- result{out, err}
	}()
	eventually(t, 2*time.Minute, "the load running", func() bool {
		runs := f.runs("ship1")
		started := 0
		for k := range runs {
			if strings.HasPrefix(k, "load-") {
				started++
			}
		}
		return started >= 5
	})
	if out, err := f.run(2*time.Minute, nil, f.composeArgs("stop", "nats2")...); err != nil {
		t.Fatalf("stop nats2: %v %s", err, out)
	}
	time.Sleep(10 * time.Second) // the server stays down for this long: the fault, not a wait
	if out, err := f.run(2*time.Minute, nil, f.composeArgs("start", "nats2")...); err != nil {
		t.Fatalf("start nats2: %v %s", err, out)
	}
	r := <-done
	var res sendResult
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("send under load: %v %v\n%s", r.err, err, r.out)
	}
	succeeded := 0
	for _, rec := range res.Records {
		if !rec.Reply && rec.Status == status.Succeeded {
			succeeded++
		}
	}
	if succeeded != n {
		t.Errorf("%d of %d commands succeeded with nats2 stopped and started (send: %v)", succeeded, n, r.err)
	}
	runs := map[string]int{}
	for _, ship := range []string{"ship1", "ship2"} {
		for k, v := range f.runs(ship) {
			runs[k] += v
		}
	}
	for i := range n {
		if got := runs[fmt.Sprintf("load-%d", i)]; got != 1 {
			t.Errorf("load-%d ran %d times, want once", i, got)
		}
	}
	t.Logf("%d commands with nats2 stopped for 10 s under load: %d succeeded, each ran once", n, succeeded)
}

var traceLine = regexp.MustCompile(`(?m)^trace ([0-9a-f]{32})$`)

// traceInJaeger sends one command to ship1, ship2 and ship3 (behind the
// leaf node) and finds the trace steward status names in Jaeger: one trace
// with spans from central and the three ships, every span but the root
// parented by another span of the trace.
func traceInJaeger(t *testing.T, f *fleet) {
	res := f.sendMessages("central", true, command("echo traced", "ship1", "ship2", "ship3"))
	id := res.Receipts[0].ID
	out, err := f.steward("central", nil, "status", id)
	m := traceLine.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("steward status %s prints no trace ID: %v\n%s", id, err, out)
	}
	url := f.publishedURL("jaeger", 16686) + "/api/traces/" + m[1]
	var trace struct {
		Data []struct {
			Spans []struct {
				SpanID     string `json:"spanID"`
				ProcessID  string `json:"processID"`
				References []struct {
					SpanID string `json:"spanID"`
				} `json:"references"`
			} `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	// Spans reach Jaeger as they end, a parent after its children: the
	// trace is read again until it is whole.
	services := map[string]int{}
	var missing []string
	roots := 0
	whole := func() bool {
		b, err := httpGet(url)
		if err != nil || json.Unmarshal(b, &trace) != nil || len(trace.Data) != 1 {
			return false
		}
		clear(services)
		spans := map[string]bool{}
		for _, s := range trace.Data[0].Spans {
			services[trace.Data[0].Processes[s.ProcessID].ServiceName]++
			spans[s.SpanID] = true
		}
		missing, roots = nil, 0
		for _, s := range trace.Data[0].Spans {
			if len(s.References) == 0 {
				roots++
			}
			for _, ref := range s.References {
				if !spans[ref.SpanID] {
					missing = append(missing, fmt.Sprintf("span %s has a parent %s outside the trace", s.SpanID, ref.SpanID))
				}
			}
		}
		return services["central"] > 0 && services["ship1"] > 0 && services["ship2"] > 0 && services["ship3"] > 0 && len(missing) == 0
	}
	for deadline := time.Now().Add(time.Minute); !whole(); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("the trace in Jaeger with central and the three ships, every parent in it: not within a minute; services %v; %s",
				services, strings.Join(missing, "; "))
		}
	}
	if roots != 1 {
		t.Errorf("%d root spans, want 1", roots)
	}
	t.Logf("trace %s: %d spans, by service %v", m[1], len(trace.Data[0].Spans), services)
}

// metrics scrapes central's /metrics: the fleet is online and the counters
// moved.
func metrics(t *testing.T, f *fleet) {
	b, err := httpGet(f.publishedURL("central", 2112) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	sample := func(name string) float64 {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
				if i := strings.LastIndexByte(line, ' '); i > 0 {
					v, _ := strconv.ParseFloat(line[i+1:], 64)
					return v
				}
			}
		}
		return -1
	}
	if v := sample(`steward_nodes{node="central",state="online"}`); v < 4 {
		t.Errorf("central's metrics count %v nodes online, want at least 4", v)
	}
	if v := sample(`steward_messages_handled_total{method="REQToFileAppend",node="central",status="succeeded"}`); v <= 0 {
		t.Errorf("central's metrics count %v replies handled", v)
	}
	if v := sample(`steward_broker_connected{node="central"}`); v != 1 {
		t.Errorf("central's broker connection is %v", v)
	}
}

// connectionsUseTLS reads each hub server's client connections from its
// monitoring port (inside the hub's network, from central's container):
// every one is TLS. The leaf node's uplink is up, and the hub servers'
// leaf node listener takes TLS only (its tls block; /leafz shows no TLS
// field to check).
func connectionsUseTLS(t *testing.T, f *fleet) {
	clients, leafs := 0, 0
	for _, server := range []string{"nats1", "nats2", "nats3"} {
		var z struct {
			Connections []struct {
				Name       string `json:"name"`
				TLSVersion string `json:"tls_version"`
			} `json:"connections"`
			Leafs []struct{} `json:"leafs"`
		}
		for _, kind := range []string{"connz", "leafz"} {
			out, err := f.run(time.Minute, nil, "docker", "exec", f.container("central"), "wget", "-qO-", "http://"+server+":8222/"+kind+"?limit=1000")
			if err != nil {
				t.Fatalf("%s /%s: %v %s", server, kind, err, out)
			}
			if err := json.Unmarshal([]byte(out), &z); err != nil {
				t.Fatalf("%s /%s: %v", server, kind, err)
			}
		}
		for _, c := range z.Connections {
			if c.TLSVersion == "" {
				t.Errorf("%s: client connection %q without TLS", server, c.Name)
			}
		}
		clients += len(z.Connections)
		leafs += len(z.Leafs)
	}
	if clients == 0 || leafs != 1 {
		t.Errorf("the hub has %d client connections and %d leaf node connections, want some and 1", clients, leafs)
	}
	t.Logf("the hub's %d client connections are TLS; %d leaf node connection", clients, leafs)
}
