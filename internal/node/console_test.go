package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
)

// consoleDo sends req to the console and decodes its JSON answer into v
// (when not nil); it returns the HTTP status.
func consoleDo(t *testing.T, hc *http.Client, req *http.Request, v any) int {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", req.URL.Path, err)
		}
	}
	return resp.StatusCode
}

func consoleGet(t *testing.T, hc *http.Client, base, path string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return consoleDo(t, hc, req, v)
}

// consolePost posts body as JSON, with the console's guard header when
// guard is set.
func consolePost(t *testing.T, hc *http.Client, base, path, body string, guard bool, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if guard {
		req.Header.Set("X-Steward-Console", "1")
	}
	return consoleDo(t, hc, req, v)
}

// TestConsoleAPI: the console on central shows the fleet, sends through
// the node's sender (and refuses a POST without its guard header), shows
// a message's deliveries, output and timeline, streams the registry's
// changes as events, and lists central's error log.
func TestConsoleAPI(t *testing.T) {
	f := newFleet(t)
	addr := natstest.FreePort(t)
	centralCfg := f.config("central")
	centralCfg.Console = addr
	f.start(centralCfg)
	f.start(f.config("ship1"))
	base := "http://" + addr
	hc := &http.Client{Timeout: 20 * time.Second}

	type fleetView struct {
		Nodes []struct {
			Name   string  `json:"name"`
			Online bool    `json:"online"`
			Queue  *uint64 `json:"queue"`
		} `json:"nodes"`
	}
	eventually(t, 30*time.Second, "ship1 online in the console with its queue depth", func() bool {
		var v fleetView
		consoleGet(t, hc, base, "/api/fleet", &v)
		for _, n := range v.Nodes {
			if n.Name == "ship1" && n.Online && n.Queue != nil {
				return true
			}
		}
		return false
	})

	// Events: the registry's changes come as they happen.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events content type %q", ct)
	}
	sawNode := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				event = e
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok && event == "nodes" && strings.Contains(d, `"name":"ship1"`) {
				sawNode <- true
				return
			}
		}
		sawNode <- false
	}()
	select {
	case ok := <-sawNode:
		if !ok {
			t.Fatal("the event stream ended without ship1's hello")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no nodes event for ship1's hellos")
	}

	// Sending: refused without the guard header, then sent.
	msg := `{"toNodes":["ship1"],"method":"REQCliCommand","methodArgs":["sh","-c","echo from-console; echo to-stderr >&2"]}`
	if code := consolePost(t, hc, base, "/api/send", msg, false, nil); code != http.StatusForbidden {
		t.Fatalf("POST without X-Steward-Console: %d, want 403", code)
	}
	var dry struct {
		DryRun   bool `json:"dryRun"`
		Receipts []struct {
			ID    string   `json:"id"`
			Nodes []string `json:"nodes"`
			Error string   `json:"error"`
		} `json:"receipts"`
	}
	if code := consolePost(t, hc, base, "/api/send?dryRun=1", `{"toNodes":["*"],"method":"REQPing"}`, true, &dry); code != http.StatusOK || !dry.DryRun ||
		len(dry.Receipts) != 1 || strings.Join(dry.Receipts[0].Nodes, ",") != "central,ship1" {
		t.Fatalf("dry run of *: %d %+v", code, dry)
	}
	var sent = dry
	if code := consolePost(t, hc, base, "/api/send", msg, true, &sent); code != http.StatusAccepted || sent.Receipts[0].ID == "" {
		t.Fatalf("send: %d %+v", code, sent)
	}
	id := sent.Receipts[0].ID
	type messageView struct {
		Done    bool `json:"done"`
		Records []struct {
			Node     string `json:"node"`
			Reply    bool   `json:"reply"`
			Status   string `json:"status"`
			Output   string `json:"output"`
			Stderr   string `json:"stderr"`
			File     string `json:"file"`
			Timeline []struct {
				Status string `json:"status"`
			} `json:"timeline"`
		} `json:"records"`
	}
	var mv messageView
	eventually(t, 30*time.Second, "the message done in the console", func() bool {
		mv = messageView{}
		return consoleGet(t, hc, base, "/api/messages/"+id, &mv) == http.StatusOK && mv.Done
	})
	d := mv.Records[0]
	if d.Node != "ship1" || d.Reply || d.Status != "succeeded" || d.Output != "from-console\n" || d.Stderr != "to-stderr\n" {
		t.Fatalf("delivery in the console: %+v", d)
	}
	// The reply record names the file central's reply method wrote.
	if len(mv.Records) != 2 || !mv.Records[1].Reply || mv.Records[1].File == "" {
		t.Fatalf("reply record in the console: %+v", mv.Records)
	}
	if got := readFile(t, filepath.Join(centralCfg.DataFolder, mv.Records[1].File)); got != "from-console\n" {
		t.Errorf("the reply file %s holds %q", mv.Records[1].File, got)
	}
	var steps []string
	for _, s := range d.Timeline {
		steps = append(steps, s.Status)
	}
	if got := strings.Join(steps, " "); got != "pending delivered running succeeded" {
		t.Errorf("timeline %q", got)
	}
	var page struct {
		Data  string `json:"data"`
		Total int    `json:"total"`
	}
	if consoleGet(t, hc, base, "/api/messages/"+id+"/output?node=ship1", &page); page.Data != "from-console\n" || page.Total != 13 {
		t.Errorf("output page: %+v", page)
	}
	var list struct {
		Messages []struct {
			ID     string         `json:"id"`
			Counts map[string]int `json:"counts"`
		} `json:"messages"`
	}
	eventually(t, 10*time.Second, "the message in the list", func() bool {
		consoleGet(t, hc, base, "/api/messages?node=ship1&status=succeeded", &list)
		return len(list.Messages) > 0 && list.Messages[0].ID == id && list.Messages[0].Counts["succeeded"] == 1
	})
	if code := consoleGet(t, hc, base, "/api/messages/nosuchmessage", nil); code != http.StatusNotFound {
		t.Errorf("an unknown message: %d", code)
	}

	// A failed command reaches central's error log, and the console lists it.
	consolePost(t, hc, base, "/api/send", `{"toNodes":["ship1"],"method":"REQCliCommand","methodArgs":["sh","-c","exit 7"]}`, true, nil)
	var errs struct {
		Errors []struct {
			Node string `json:"node"`
			Text string `json:"text"`
		} `json:"errors"`
	}
	eventually(t, 30*time.Second, "ship1's error in the console", func() bool {
		consoleGet(t, hc, base, "/api/errors?node=ship1", &errs)
		return len(errs.Errors) > 0 && errs.Errors[0].Node == "ship1"
	})

	// The pages are there, under the security policy.
	resp2, err := hc.Get(base + "/messages/" + url.PathEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK || !strings.Contains(string(body), id) || !strings.Contains(resp2.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("message page: %d %q", resp2.StatusCode, resp2.Header.Get("Content-Security-Policy"))
	}
}

// TestConsoleToken: with a token, the console asks for it; the login form
// gives a session cookie that is not the token.
func TestConsoleToken(t *testing.T) {
	f := newFleet(t)
	addr := natstest.FreePort(t)
	cfg := f.config("central")
	token := "console-token-0123456789abcdef"
	cfg.HTTPAPITokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.HTTPAPITokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Console = addr
	f.start(cfg)
	base := "http://" + addr
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code := consoleGet(t, noRedirect, base, "/api/fleet", nil); code != http.StatusUnauthorized {
		t.Fatalf("API without the token: %d", code)
	}
	resp, err := noRedirect.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("page without the token: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noRedirect.PostForm(base+"/login", url.Values{"token": {"wrong-token-wrong-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("a wrong token logged in: %d", resp.StatusCode)
	}
	resp, err = noRedirect.PostForm(base+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d %+v", resp.StatusCode, cookies)
	}
	if strings.Contains(cookies[0].Value, token) {
		t.Fatal("the session cookie holds the token")
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/fleet", nil)
	req.AddCookie(cookies[0])
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API with the session cookie: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/api/fleet", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API with the bearer token: %d", resp.StatusCode)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
