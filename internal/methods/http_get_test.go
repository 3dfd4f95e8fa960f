package methods

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// Every server here is httptest's, on loopback: REQHttpGet's tests never
// reach another address.

// httpGetRequest is a REQHttpGet request for args on a node of version
// 1.2.3.
func httpGetRequest(args ...string) *Request {
	return &Request{
		Msg:     &message.Message{ToNode: "ship1", FromNode: "central", Method: "REQHttpGet", MethodArgs: args},
		Attempt: 1,
		Env:     &Env{NodeName: "ship1", Version: "1.2.3"},
		Log:     slog.New(slog.DiscardHandler),
	}
}

func getURL(t *testing.T, ctx context.Context, rawURL string) (*Result, error) {
	t.Helper()
	return runHTTPGet(ctx, httpGetRequest(rawURL))
}

// withBodyCap sets maxHTTPBody for one test.
func withBodyCap(t *testing.T, n int) {
	t.Helper()
	orig := maxHTTPBody
	maxHTTPBody = n
	t.Cleanup(func() { maxHTTPBody = orig })
}

func TestHTTPGetRegistered(t *testing.T) {
	s, err := Default().Lookup("REQHttpGet")
	if err != nil || s.Name != "REQHttpGet" || s.Kind != Command || s.Validate == nil || s.Internal {
		t.Fatalf("Lookup(REQHttpGet) = %+v, %v", s, err)
	}
	if name, reply, ok := Default().Resolve("REQHttpGet"); !ok || reply || name != "REQHttpGet" {
		t.Errorf("Resolve(REQHttpGet) = %q %v %v", name, reply, ok)
	}
}

func TestHTTPGetValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; empty: valid
	}{
		{"http", []string{"http://127.0.0.1:8080/"}, ""},
		{"https with path and query", []string{"https://example.com/a/b?c=d#e"}, ""},
		{"upper-case scheme", []string{"HTTP://example.com/"}, ""},
		{"IPv6 host", []string{"http://[::1]:8080/"}, ""},
		{"no methodArgs", nil, "needs methodArgs"},
		{"empty URL", []string{""}, "needs methodArgs"},
		{"two URLs", []string{"http://a.example/", "http://b.example/"}, "takes one methodArg, the URL"},
		{"relative", []string{"/index.html"}, "must be absolute"},
		{"no scheme", []string{"example.com/index.html"}, "must be absolute"},
		{"host:port without scheme", []string{"localhost:8080"}, "must be absolute"},
		{"ftp", []string{"ftp://example.com/file"}, "http:// or https://"},
		{"file", []string{"file:///etc/passwd"}, "http:// or https://"},
		{"no host", []string{"http:///index.html"}, "names no host"},
		{"port only", []string{"http://:8080/"}, "names no host"},
		{"opaque", []string{"http:example.com"}, "names no host"},
		{"credentials", []string{"https://user:secret@example.com/"}, "user name or password"},
		{"not a URL", []string{"http://exa mple.com/\x7f"}, "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := httpGet.Validate(&message.Message{Method: "REQHttpGet", ToNode: "ship1", MethodArgs: tt.args})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("valid URL refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
			if !errors.Is(err, message.ErrFieldValue) || message.CodeOf(err) != message.CodeFieldValue {
				t.Errorf("error %v has code %s, want %s", err, message.CodeOf(err), message.CodeFieldValue)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the password: %v", err)
			}
			// The node checks again what reaches it from elsewhere.
			if _, err := runHTTPGet(context.Background(), httpGetRequest(tt.args...)); !errors.Is(err, ErrBadArgs) {
				t.Errorf("handler: %v, want %v", err, ErrBadArgs)
			}
		})
	}
}

// fleetPages serves what TestHTTPGet fetches.
func fleetPages(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "not a GET", http.StatusMethodNotAllowed)
			return
		}
		fmt.Fprintf(w, "<html>hello, agent %s</html>\n", r.UserAgent())
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such page", http.StatusNotFound)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	// /hops/n redirects n times before it lands on /page.
	mux.HandleFunc("/hops/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 {
			http.NotFound(w, r)
			return
		}
		next := "/page"
		if n > 1 {
			next = fmt.Sprintf("/hops/%d", n-1)
		}
		http.Redirect(w, r, next, http.StatusFound)
	})
	mux.HandleFunc("/to-ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://127.0.0.1/file", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/to-missing", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/missing", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPGet(t *testing.T) {
	srv := fleetPages(t)
	page := "<html>hello, agent steward/1.2.3</html>\n"
	tests := []struct {
		name    string
		path    string
		wantOut string
		wantErr string // substring of the error; empty: no error
	}{
		{name: "page, with steward's User-Agent", path: "/page", wantOut: page},
		{name: "no content", path: "/empty", wantOut: ""},
		{name: "404 is failed, the body is kept", path: "/missing", wantOut: "no such page\n", wantErr: "HTTP 404 Not Found ("},
		{name: "503", path: "/broken", wantOut: "database down\n", wantErr: "HTTP 503 Service Unavailable ("},
		{name: "one redirect", path: "/hops/1", wantOut: page},
		{name: "five redirects", path: "/hops/5", wantOut: page},
		{name: "six redirects", path: "/hops/6", wantErr: "stopped after 5 redirects"},
		{name: "redirect to ftp", path: "/to-ftp", wantErr: "follows redirects to http and https URLs only"},
		{name: "redirect to a 404 names both URLs", path: "/to-missing", wantOut: "no such page\n",
			wantErr: fmt.Sprintf("HTTP 404 Not Found (GET %s/to-missing, redirected to %s/missing)", srv.URL, srv.URL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := getURL(t, t.Context(), srv.URL+tt.path)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
			if strings.HasPrefix(tt.wantErr, "HTTP ") && !errors.Is(err, ErrHTTPStatus) {
				t.Errorf("error %v does not carry the http_status code", err)
			}
			var out string
			if res != nil {
				out = string(res.Output)
			}
			if out != tt.wantOut {
				t.Errorf("output %q, want %q", out, tt.wantOut)
			}
		})
	}
}

func TestHTTPGetBodyCap(t *testing.T) {
	withBodyCap(t, 10)
	mux := http.NewServeMux()
	mux.HandleFunc("/fits", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("0123456789"))
	})
	mux.HandleFunc("/announced", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "11")
		w.Write([]byte("0123456789A"))
	})
	mux.HandleFunc("/streamed", func(w http.ResponseWriter, r *http.Request) {
		// Flushed in parts: no Content-Length, the size shows only as
		// it arrives.
		for _, part := range []string{"01234", "56789", "ABCDE"} {
			w.Write([]byte(part))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "11")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("0123456789A"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	res, err := getURL(t, t.Context(), srv.URL+"/fits")
	if err != nil || string(res.Output) != "0123456789" {
		t.Errorf("body at the cap: %q %v", res.Output, err)
	}
	res, err = getURL(t, t.Context(), srv.URL+"/announced")
	if err == nil || !strings.Contains(err.Error(), "announces a body of 11 bytes, over REQHttpGet's cap of 10 bytes: nothing was read") || len(res.Output) != 0 {
		t.Errorf("announced body over the cap: %q %v", res.Output, err)
	}
	res, err = getURL(t, t.Context(), srv.URL+"/streamed")
	if err == nil || !strings.Contains(err.Error(), "over REQHttpGet's cap of 10 bytes: the first 10 bytes are returned") || string(res.Output) != "0123456789" {
		t.Errorf("streamed body over the cap: %q %v", res.Output, err)
	}
	res, err = getURL(t, t.Context(), srv.URL+"/missing")
	if err == nil || !strings.HasPrefix(err.Error(), "HTTP 404 Not Found, and the server announces a body of 11 bytes") {
		t.Errorf("404 over the cap: %q %v", res.Output, err)
	}
}

// A compressed answer is unpacked; the cap counts the unpacked bytes, so
// a small compressed body cannot bring a large one in.
func TestHTTPGetUnpacksGzip(t *testing.T) {
	text := strings.Repeat("steward ", 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			http.Error(w, "gzip not offered", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write([]byte(text))
		zw.Close()
	}))
	t.Cleanup(srv.Close)

	res, err := getURL(t, t.Context(), srv.URL+"/")
	if err != nil || string(res.Output) != text {
		t.Fatalf("output %q, %v; want %q", res.Output, err, text)
	}
	withBodyCap(t, len(text)-1)
	res, err = getURL(t, t.Context(), srv.URL+"/")
	if err == nil || !strings.Contains(err.Error(), "over REQHttpGet's cap") || len(res.Output) != len(text)-1 {
		t.Errorf("unpacked body over the cap: %q %v", res.Output, err)
	}
}

// A server that does not answer, or stops in the middle of its body, is
// cut off at the method's deadline; the error wraps the context's, which
// the node turns into execution_timed_out, and the body so far is kept.
func TestHTTPGetDeadline(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/silent", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	mux.HandleFunc("/stalls", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first part;"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	t.Run("no answer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		res, err := getURL(t, ctx, srv.URL+"/silent")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer before the deadline") {
			t.Fatalf("error %v, want no answer before the deadline, wrapping %v", err, context.DeadlineExceeded)
		}
		if res != nil && len(res.Output) > 0 {
			t.Errorf("output %q", res.Output)
		}
	})
	t.Run("stalls in the body", func(t *testing.T) {
		// The first part must reach the node before its deadline: on a
		// loaded machine it may not within the first deadlines, so each
		// try gives it longer.
		for d := 200 * time.Millisecond; ; d *= 4 {
			ctx, cancel := context.WithTimeout(t.Context(), d)
			res, err := getURL(t, ctx, srv.URL+"/stalls")
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want one wrapping %v", err, context.DeadlineExceeded)
			}
			if res == nil || len(res.Output) == 0 {
				if d > 10*time.Second {
					t.Fatalf("no part of the body within %s: %v", d, err)
				}
				continue
			}
			if string(res.Output) != "first part;" || !strings.Contains(err.Error(), "body cut off after 11 bytes") {
				t.Errorf("output %q, error %v", res.Output, err)
			}
			return
		}
	})
}

// A server that drops the connection in the middle of its body: failed,
// and the body so far is kept.
func TestHTTPGetBodyCutOff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("first part;"))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	res, err := getURL(t, t.Context(), srv.URL+"/")
	if err == nil || !strings.HasPrefix(err.Error(), "body cut off after 11 bytes: unexpected EOF (GET ") {
		t.Fatalf("error %v", err)
	}
	if string(res.Output) != "first part;" {
		t.Errorf("output %q", res.Output)
	}
}

// No response: the error says what went wrong in words an operator can
// act on.
func TestHTTPGetConnectionErrors(t *testing.T) {
	// A loopback port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("plain")) }))
	t.Cleanup(plain.Close)
	selfSigned := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("tls")) }))
	selfSigned.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	selfSigned.StartTLS()
	t.Cleanup(selfSigned.Close)

	for _, tt := range []struct{ name, url, wantErr string }{
		{"connection refused", "http://" + closed + "/", "cannot connect to " + closed + ": "},
		{"certificate not trusted", selfSigned.URL + "/", "the server's TLS certificate is not accepted"},
		{"https to a plain server", "https://" + plain.Listener.Addr().String() + "/", "server gave HTTP response to HTTPS client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := getURL(t, t.Context(), tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasSuffix(err.Error(), " (GET "+tt.url+")") {
				t.Fatalf("error %v, want …%s… (GET %s)", err, tt.wantErr, tt.url)
			}
			if tt.name != "https to a plain server" && !errors.Is(err, ErrUnreachable) {
				t.Errorf("error %v does not carry the unreachable code", err)
			}
			if res != nil && len(res.Output) > 0 {
				t.Errorf("output %q with no response", res.Output)
			}
		})
	}
}

// A host that does not resolve is said so. The error is made here rather
// than by a lookup, which would ask a resolver beyond loopback.
func TestHTTPGetDescribesDNSFailure(t *testing.T) {
	lookup := &url.Error{Op: "Get", URL: "http://nowhere.invalid/", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}}}
	err := describeHTTPError(t.Context(), "http://nowhere.invalid/", lookup)
	want := `cannot resolve host "nowhere.invalid": lookup nowhere.invalid: no such host (GET http://nowhere.invalid/)`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// The node connects to the URL itself: a proxy in its environment is not
// used, and no connection is kept once the method ends.
func TestHTTPGetClient(t *testing.T) {
	c := newHTTPClient()
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", c.Transport)
	}
	if tr.Proxy != nil || !tr.DisableKeepAlives || c.CheckRedirect == nil {
		t.Errorf("proxy set %v, keep-alives disabled %v, redirects checked %v", tr.Proxy != nil, tr.DisableKeepAlives, c.CheckRedirect != nil)
	}
}

func TestHTTPGetUserAgent(t *testing.T) {
	for _, tt := range []struct {
		env  *Env
		want string
	}{
		{&Env{Version: "v1.4.0-3-gabc1234-dirty"}, "steward/v1.4.0-3-gabc1234-dirty"},
		{&Env{Version: "devel"}, "steward/devel"},
		{&Env{Version: "1.0 (local)/x"}, "steward/1.0--local--x"},
		{&Env{}, "steward/unknown"},
		{nil, "steward/unknown"},
	} {
		if got := userAgent(tt.env); got != tt.want {
			t.Errorf("userAgent(%+v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}
