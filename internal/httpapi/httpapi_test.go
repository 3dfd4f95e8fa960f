package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stewardfleet/steward/internal/httpapi"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
)

const token = "0123456789abcdef0123456789abcdef"

// fake is a backend that decodes input as the sender does and sends
// nothing; refused collects what Refused was given.
type fake struct {
	mu      sync.Mutex
	refused []string
}

func (f *fake) backend() httpapi.Backend {
	return httpapi.Backend{
		Send: func(_ context.Context, input []byte) ([]sender.Receipt, error) {
			msgs, _, itemErrs, err := message.Decode(input)
			if err != nil {
				return nil, err
			}
			var out []sender.Receipt
			for i := range msgs {
				out = append(out, sender.Receipt{Index: i, ID: "id" + string(rune('a'+i))})
			}
			for _, ie := range itemErrs {
				out = append(out, sender.Receipt{Index: ie.Index, Error: ie.Err.Error(), Code: string(message.CodeOf(ie.Err))})
			}
			return out, nil
		},
		Status: func(context.Context, string) ([]*status.Record, error) { return nil, nil },
		Nodes:  func(context.Context) ([]*registry.Node, error) { return nil, nil },
		Refused: func(input []byte, err error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.refused = append(f.refused, err.Error())
		},
	}
}

// serve runs an API with o (Addr defaults to a free loopback port) until
// the test ends and returns its base URL.
func serve(t *testing.T, b httpapi.Backend, o httpapi.Options) string {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	s, err := httpapi.Listen(b, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + s.Addr().String()
}

func do(t *testing.T, method, url, tok string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestNoTokenOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		if _, err := httpapi.Listen((&fake{}).backend(), httpapi.Options{Addr: addr}); !errors.Is(err, httpapi.ErrNoToken) {
			t.Errorf("Listen(%s) without a token: %v, want ErrNoToken", addr, err)
		}
	}
	base := serve(t, (&fake{}).backend(), httpapi.Options{Addr: "0.0.0.0:0", Token: token})
	if st, _, _ := do(t, "GET", base+"/v1/nodes", "", nil); st != http.StatusUnauthorized {
		t.Errorf("beyond loopback with a token, no token given: %d", st)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if got, err := httpapi.LoadToken(write("good", token+"\n", 0o600)); err != nil || got != token {
		t.Errorf("good token file: %q, %v", got, err)
	}
	for name, p := range map[string]string{
		"open to others": write("open", token, 0o644),
		"short":          write("short", "secret", 0o600),
		"two words":      write("two", token+" "+token, 0o600),
		"missing":        filepath.Join(dir, "missing"),
	} {
		if _, err := httpapi.LoadToken(p); !errors.Is(err, httpapi.ErrToken) {
			t.Errorf("%s: %v, want ErrToken", name, err)
		}
	}
}

func TestPostStatuses(t *testing.T) {
	f := &fake{}
	base := serve(t, f.backend(), httpapi.Options{Token: token})
	cases := []struct {
		name, body string
		want       int
		code       string
	}{
		{"sent", `{"toNode":"a","method":"REQPing"}`, 202, ""},
		{"malformed", `[{"toNode": x}]`, 400, `"code": "malformed"`},
		{"empty", ``, 400, `"code": "malformed"`},
		{"all refused", `[{"toNode":"a","colour":1}]`, 400, `"code": "unknown_field"`},
		{"oversize", `["` + strings.Repeat("a", 16<<20) + `"]`, 413, `"code": "too_large"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body, h := do(t, "POST", base+"/v1/messages", token, strings.NewReader(tc.body))
			if st != tc.want || !strings.Contains(body, tc.code) || h.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s, want %d with %s", st, body, tc.want, tc.code)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.refused) != 1 || !strings.Contains(f.refused[0], "16 MiB") {
		t.Errorf("refused input reported: %q", f.refused)
	}
}

// TestFiles: only regular files and folders inside the served folder,
// never the state folder, never through a link, never a pipe.
func TestFiles(t *testing.T) {
	data := t.TempDir()
	outside := t.TempDir()
	mk := func(rel, content string) {
		p := filepath.Join(data, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("out/ship1/hi.txt", "<script>alert(1)</script>")
	mk(".steward/ledger/x", "secret")
	os.WriteFile(filepath.Join(outside, "o.txt"), []byte("outside"), 0o644)
	links := map[string]string{
		"out/state":       filepath.Join(data, ".steward"),
		"out/ledger.txt":  filepath.Join(data, ".steward", "ledger", "x"),
		"out/outside.txt": filepath.Join(outside, "o.txt"),
		"out/inside.txt":  filepath.Join(data, "out", "ship1", "hi.txt"),
	}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(data, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(data, "out", "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := serve(t, (&fake{}).backend(), httpapi.Options{Token: token, DataFolder: data, FilesFolder: "."})

	st, body, h := do(t, "GET", base+"/v1/files/out/ship1/hi.txt", token, nil)
	if st != 200 || body != "<script>alert(1)</script>" || h.Get("Content-Type") != "application/octet-stream" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("a file: %d %q %v", st, body, h)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/files/out/ship1/hi.txt", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Range", "bytes=1-6")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || string(b) != "script" {
			t.Errorf("a range: %d %q", resp.StatusCode, b)
		}
	}
	if st, _, _ := do(t, "GET", base+"/v1/files/out/ship1/hi.txt", "", nil); st != 401 {
		t.Errorf("a file without the token: %d", st)
	}
	st, body, _ = do(t, "GET", base+"/v1/files/out", token, nil)
	if st != 200 || !strings.Contains(body, `"name": "ship1"`) || strings.Contains(body, "pipe") || strings.Contains(body, ".txt") {
		t.Errorf("a listing (links and pipes left out): %d %s", st, body)
	}
	if _, body, _ = do(t, "GET", base+"/v1/files/", token, nil); strings.Contains(body, ".steward") || !strings.Contains(body, `"out"`) {
		t.Errorf("the top listing: %s", body)
	}
	for _, p := range []string{".steward/ledger/x", ".STEWARD/ledger/x", ".steward", "out/state/ledger/x", "out/ledger.txt",
		"out/outside.txt", "out/inside.txt", "out/pipe", "%2e%2e/" + filepath.Base(outside) + "/o.txt", "out/..%2f..%2fetc/passwd", "nothing"} {
		if st, body, _ := do(t, "GET", base+"/v1/files/"+p, token, nil); st != 404 {
			t.Errorf("GET /v1/files/%s: %d %q, want 404", p, st, body)
		}
	}
	if st, _, _ := do(t, "PUT", base+"/v1/files/out/new", token, strings.NewReader("x")); st == 200 || st == 201 || st == 204 {
		t.Errorf("PUT a file: %d", st)
	}
}

// TestFilesOfASubfolder: with a subfolder served, nothing beside it is.
func TestFilesOfASubfolder(t *testing.T) {
	data := t.TempDir()
	os.MkdirAll(filepath.Join(data, "reports"), 0o755)
	os.WriteFile(filepath.Join(data, "reports", "r.txt"), []byte("r"), 0o644)
	os.WriteFile(filepath.Join(data, "other.txt"), []byte("o"), 0o644)
	base := serve(t, (&fake{}).backend(), httpapi.Options{DataFolder: data, FilesFolder: "reports"})
	if st, body, _ := do(t, "GET", base+"/v1/files/r.txt", "", nil); st != 200 || body != "r" {
		t.Errorf("in the subfolder: %d %q", st, body)
	}
	if st, _, _ := do(t, "GET", base+"/v1/files/%2e%2e/other.txt", "", nil); st != 404 {
		t.Errorf("beside the subfolder: %d", st)
	}
}

func TestNoFilesUnlessAsked(t *testing.T) {
	base := serve(t, (&fake{}).backend(), httpapi.Options{DataFolder: t.TempDir()})
	if st, body, _ := do(t, "GET", base+"/v1/files/", "", nil); st != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("files without http-data-folder: %d %s", st, body)
	}
}
