package node_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/status"
)

// withInputs gives cfg a TCP listener and an HTTP API with a token on
// free loopback ports, and returns the token.
func withInputs(t *testing.T, cfg *config.Config) string {
	t.Helper()
	cfg.TCPListener = natstest.FreePort(t)
	cfg.HTTPAPI = natstest.FreePort(t)
	const token = "0123456789abcdef0123456789abcdef"
	cfg.HTTPAPITokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.HTTPAPITokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return token
}

// streamCodes sends input to a socket or TCP listener and returns, per
// answer line, "ok" or the code the line ends with.
func streamCodes(t *testing.T, network, addr string, input []byte) []string {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go c.Write(input)
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s answer: %v (got %q)", network, err, out)
	}
	var codes []string
	for line := range strings.Lines(string(out)) {
		codes = append(codes, lineCode(line))
	}
	return codes
}

var codeAtEnd = regexp.MustCompile(`^error: .* \(([a-z_]+)\)\n$`)

func lineCode(line string) string {
	if m := codeAtEnd.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	if strings.HasPrefix(line, "error:") {
		return "no code in " + line
	}
	return "ok"
}

// apiResult is what POST /v1/messages answers.
type apiResult struct {
	Receipts []struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	} `json:"receipts"`
	Error string `json:"error"`
	Code  string `json:"code"`
}

// apiCodes posts input and returns the HTTP status and the codes.
func apiCodes(t *testing.T, addr, token string, input []byte) (int, []string) {
	t.Helper()
	resp := apiDo(t, "POST", "http://"+addr+"/v1/messages", token, input)
	defer resp.Body.Close()
	var res apiResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("POST answer: %v", err)
	}
	if res.Code != "" {
		return resp.StatusCode, []string{res.Code}
	}
	var codes []string
	for _, r := range res.Receipts {
		codes = append(codes, cmp(r.Error == "", "ok", r.Code))
	}
	return resp.StatusCode, codes
}

func cmp(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

func apiDo(t *testing.T, method, url, token string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(natstest.Context(t, 60*time.Second), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestInputsGiveTheSameErrors: the same bad input through the socket, the
// TCP listener, the HTTP API and the client (what steward send uses) is
// refused with the same codes.
func TestInputsGiveTheSameErrors(t *testing.T) {
	f := newFleet(t)
	cfg := f.config("central")
	token := withInputs(t, &cfg)
	central := f.start(cfg)
	c := f.client(central.cfg)

	oversize := []byte(`[{"toNode":"ship1","method":"REQPing","data":"` + strings.Repeat("a", 16<<20) + `"}]`)
	cases := []struct {
		name  string
		input []byte
		want  []string
		http  int
	}{
		{"malformed JSON", []byte(`[{"toNode": oops}]`), []string{"malformed"}, 400},
		{"trailing comma", []byte(`[{"toNode":"ship1","method":"REQPing"},]`), []string{"malformed"}, 400},
		{"not a message", []byte("42\n"), []string{"malformed"}, 400},
		{"unknown field", []byte(`{"toNode":"ship1","method":"REQPing","colour":"red"}`), []string{"unknown_field"}, 400},
		{"unknown method", []byte(`{"toNode":"ship1","method":"REQNope"}`), []string{"unknown_method"}, 400},
		{"missing target", []byte(`{"method":"REQPing"}`), []string{"missing_target"}, 400},
		{"bad path", []byte(`{"toNode":"ship1","method":"REQPing","directory":"x","fileName":"../../etc/passwd"}`), []string{"bad_path"}, 400},
		{"good and bad", []byte(`[{"toNode":"ship1","method":"REQPing"},{"toNode":"ship1","method":"REQNope"}]`), []string{"ok", "unknown_method"}, 202},
		{"oversize", oversize, []string{"too_large"}, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string][]string{
				"socket": streamCodes(t, "unix", central.cfg.SocketPath(), tc.input),
				"tcp":    streamCodes(t, "tcp", central.cfg.TCPListener, tc.input),
			}
			st, codes := apiCodes(t, central.cfg.HTTPAPI, token, tc.input)
			got["http"] = codes
			if st != tc.http {
				t.Errorf("HTTP status %d, want %d", st, tc.http)
			}
			receipts, err := c.Send(natstest.Context(t, 30*time.Second), tc.input)
			if err != nil {
				got["client"] = []string{string(message.CodeOf(err))}
			} else {
				for _, r := range receipts {
					got["client"] = append(got["client"], cmp(r.OK(), "ok", r.Code))
				}
			}
			for input, codes := range got {
				if !slices.Equal(codes, tc.want) {
					t.Errorf("%s: codes %q, want %q", input, codes, tc.want)
				}
			}
		})
	}

	// Input refused before the sender is audited as the sender's refusals are.
	natstest.Eventually(t, 10*time.Second, "the oversize input audited", func() bool {
		b, _ := os.ReadFile(central.cfg.AuditPath())
		return strings.Count(string(b), "input is too large") >= 2 && strings.Contains(string(b), "a batch may have")
	})
}

// TestHTTPAPI: a message posted to the API runs; its status, the registry
// and the reply file are read back through the API, with the token only.
func TestHTTPAPI(t *testing.T) {
	f := newFleet(t)
	cfg := f.config("central")
	token := withInputs(t, &cfg)
	cfg.HTTPDataFolder = "."
	central := f.start(cfg)
	f.start(f.config("ship1"))
	base := "http://" + central.cfg.HTTPAPI

	for _, tok := range []string{"", "wrong-token-wrong-token-wrong"} {
		resp := apiDo(t, "GET", base+"/v1/nodes", tok, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, resp.StatusCode)
		}
	}

	resp := apiDo(t, "POST", base+"/v1/messages", token,
		[]byte(`{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","hi"],"directory":"out","fileName":"hi.txt"}`))
	var sent struct {
		Receipts []struct {
			ID string `json:"id"`
		} `json:"receipts"`
	}
	json.NewDecoder(resp.Body).Decode(&sent)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || len(sent.Receipts) != 1 || sent.Receipts[0].ID == "" {
		t.Fatalf("POST: %d %+v", resp.StatusCode, sent)
	}
	id := sent.Receipts[0].ID
	c := f.client(central.cfg)
	wait(t, c, []string{id}, 30*time.Second)

	var recs []*status.Record
	getJSON(t, base+"/v1/messages/"+id, token, http.StatusOK, &recs)
	if len(recs) != 2 || recs[0].Node != "ship1" || recs[0].Status != status.Succeeded || !recs[1].Reply {
		t.Errorf("status records: %s", describe(recs))
	}
	getJSON(t, base+"/v1/messages/NoSuchMessage1", token, http.StatusNotFound, nil)

	var nodes []*registry.Node
	getJSON(t, base+"/v1/nodes", token, http.StatusOK, &nodes)
	if !slices.ContainsFunc(nodes, func(n *registry.Node) bool { return n.Name == "ship1" }) {
		t.Errorf("registry: %+v", nodes)
	}

	resp = apiDo(t, "GET", base+"/v1/files/out/ship1/hi.txt", token, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "hi\n" || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("reply file: %d %q %q", resp.StatusCode, b, resp.Header.Get("Content-Type"))
	}
	var top struct {
		Entries []struct{ Name string } `json:"entries"`
	}
	getJSON(t, base+"/v1/files/", token, http.StatusOK, &top)
	for _, e := range top.Entries {
		if e.Name == message.ReservedDataPath {
			t.Errorf("the listing shows the state folder: %+v", top)
		}
	}
	for _, p := range []string{".steward/audit.jsonl", ".steward/", "%2e%2e/etc/passwd", "out/%2e%2e/.steward/audit.jsonl"} {
		resp := apiDo(t, "GET", base+"/v1/files/"+p, token, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET /v1/files/%s: 200 %q", p, b)
		}
	}
}

func getJSON(t *testing.T, url, token string, want int, v any) {
	t.Helper()
	resp := apiDo(t, "GET", url, token, nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
}

// TestInputsRefuseToStartBeyondLoopback: a TCP listener or an HTTP API
// beyond loopback with no opt-in stops the node at start, saying why.
func TestInputsRefuseToStartBeyondLoopback(t *testing.T) {
	f := newFleet(t)
	f.start(f.config("central")) // sets the broker up
	cases := []struct {
		name string
		set  func(*config.Config)
		want string
	}{
		{"tcp", func(c *config.Config) { c.TCPListener = "0.0.0.0:0" }, "listens beyond loopback"},
		{"http without token", func(c *config.Config) { c.HTTPAPI = "0.0.0.0:0" }, "http-api-token-file"},
		{"token file open to others", func(c *config.Config) {
			c.HTTPAPI = "127.0.0.1:0"
			c.HTTPAPITokenFile = filepath.Join(t.TempDir(), "token")
			os.WriteFile(c.HTTPAPITokenFile, []byte("0123456789abcdef0123"), 0o644)
		}, "0644"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.config(fmt.Sprintf("n%d", i))
			tc.set(&cfg)
			_, err := f.launch(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("start: %v, want an error saying %q", err, tc.want)
			}
			if _, serr := os.Stat(cfg.SocketPath()); serr == nil {
				t.Errorf("the socket was left behind")
			}
		})
	}
}
