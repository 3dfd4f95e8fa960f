package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/status"
)

// httpGetServer serves httpGetPage at / and a 404 with its own body
// elsewhere, on loopback only (httptest listens on 127.0.0.1), and keeps the
// User-Agent of every request.
type httpGetServer struct {
	*httptest.Server
	mu     sync.Mutex
	agents []string
}

const (
	httpGetPage        = "<!doctype html>\n<title>steward</title>\n<p>served to the fleet</p>\n"
	httpGetMissingPage = "<!doctype html>\n<p>no such page</p>\n"
)

func newHTTPGetServer(t *testing.T) *httpGetServer {
	t.Helper()
	s := &httpGetServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.agents = append(s.agents, r.UserAgent())
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path != "/" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(httpGetMissingPage))
			return
		}
		w.Write([]byte(httpGetPage))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *httpGetServer) userAgents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.agents)
}

// The reference file http-get-to-nodes.json (testdata/examples holds the
// reference copy) asks central and ship2 for http://127.0.0.1:8080/ and
// writes each page to httpget/<node>/index.html on central. Port 8080 may
// be taken on a test machine, so the test serves the page on a free
// loopback port and rewrites the file's URL to it; every other field is
// sent as the file has it.
func TestHttpGetReferenceFile(t *testing.T) {
	f := newFleet(t)
	srv := newHTTPGetServer(t)
	f.Start("central")
	f.Start("ship1")
	f.Start("ship2")
	f.WaitOnline("central", "ship1", "ship2")

	file := rewriteHTTPGetURL(t, filepath.Join(examples, "http-get-to-nodes.json"), "http://127.0.0.1:8080/", srv.URL+"/")
	res, code := f.sendWait(file)
	if code != 0 || len(res.Records) != 2 || len(res.Replies) != 2 {
		t.Fatalf("exit %d, records %+v, replies %+v", code, res.Records, res.Replies)
	}
	var nodes []string
	for _, r := range res.Records {
		nodes = append(nodes, r.Node)
		if r.Status != status.Succeeded || r.Method != "REQHttpGet" || r.Output != httpGetPage {
			t.Errorf("%s: %s %q %s", r.Node, r.Status, r.Output, r.Error)
		}
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"central", "ship2"}) {
		t.Errorf("deliveries to %v, want central and ship2", nodes)
	}
	for _, r := range res.Replies {
		if r.Status != status.Succeeded || r.FromNode != "central" || r.Method != "REQToFile" {
			t.Errorf("reply record %+v", r)
		}
	}
	// send --wait returns once the replies are written.
	for _, node := range []string{"central", "ship2"} {
		got, err := os.ReadFile(filepath.Join(f.Dir("central"), "data", "httpget", node, "index.html"))
		if err != nil || string(got) != httpGetPage {
			t.Errorf("httpget/%s/index.html on central: %q %v", node, got, err)
		}
	}
	if _, err := os.Stat(filepath.Join(f.Dir("central"), "data", "httpget", "ship1")); !os.IsNotExist(err) {
		t.Errorf("ship1 was not asked, yet: %v", err)
	}
	agents := srv.userAgents()
	if len(agents) != 2 {
		t.Errorf("the server got %d requests, want 2: %q", len(agents), agents)
	}
	for _, a := range agents {
		if !strings.HasPrefix(a, "steward/") {
			t.Errorf("User-Agent %q does not name steward", a)
		}
	}
}

// A 404 is failed, with the status in steward status and in central's
// error log; the page the server sent with it is still the reply's data.
func TestHttpGetNotFoundFails(t *testing.T) {
	f := newFleet(t)
	srv := newHTTPGetServer(t)
	f.Start("central")
	f.Start("ship1")
	f.WaitOnline("central", "ship1")

	msg, err := json.Marshal([]map[string]any{{
		"toNode": "ship1", "method": "REQHttpGet", "methodArgs": []string{srv.URL + "/missing"},
		"replyMethod": "REQToFile", "directory": "httpget", "fileName": "missing.html", "methodTimeout": 5,
	}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "http-get-missing.json")
	if err := os.WriteFile(file, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	res, code := f.sendWait(file)
	if code != 1 || len(res.Records) != 1 || len(res.Receipts) != 1 {
		t.Fatalf("exit %d (want 1: a delivery failed), records %+v", code, res.Records)
	}
	id := res.Receipts[0].ID

	recs := f.status(id)
	if len(recs) != 1 {
		t.Fatalf("status %s: %+v", id, recs)
	}
	r := recs[0]
	if r.Node != "ship1" || r.Status != status.Failed || r.ErrorCode != "http_status" || !strings.HasPrefix(r.Error, "HTTP 404 Not Found") ||
		!strings.Contains(r.Error, srv.URL+"/missing") || r.Output != httpGetMissingPage {
		t.Errorf("status: %s %s error %q output %q", r.Node, r.Status, r.Error, r.Output)
	}
	out, errOut, code := f.Steward("central", nil, "status", id)
	if code != 0 || !fleettest.LineHas(out, "ship1", "failed") || !strings.Contains(out, "HTTP 404 Not Found") {
		t.Errorf("steward status %s: exit %d\n%s%s", id, code, out, errOut)
	}
	if got := read(t, filepath.Join(f.Dir("central"), "data", "httpget", "ship1", "missing.html")); got != httpGetMissingPage {
		t.Errorf("reply file: %q", got)
	}
	errorLog := filepath.Join(f.Dir("central"), "data", "errorLog", "ship1", "errors.log")
	fleettest.Eventually(t, 20*time.Second, "the 404 in central's error log", func() bool {
		b, _ := os.ReadFile(errorLog)
		return strings.Contains(string(b), "HTTP 404 Not Found")
	})
}

// rewriteHTTPGetURL writes a copy of a message file whose methodArgs are
// [from] with methodArgs [to], and returns its path. It fails the test if
// a message has another URL, so the file is the one the test expects.
func rewriteHTTPGetURL(t *testing.T, path, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []struct {
		MethodArgs []string `json:"methodArgs"`
	}
	if err := json.Unmarshal(b, &msgs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i, m := range msgs {
		if len(m.MethodArgs) != 1 || m.MethodArgs[0] != from {
			t.Fatalf("%s: message %d has methodArgs %v, want [%s]", path, i+1, m.MethodArgs, from)
		}
	}
	return rewriteFields(t, path, map[string]any{"methodArgs": []string{to}})
}
