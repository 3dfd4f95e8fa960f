package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

//go:embed web
var web embed.FS

// ErrNoToken: the console would listen beyond loopback without a token.
var ErrNoToken = errors.New("the console listens beyond loopback only with a token (http-api-token-file)")

// Options say where and how the console listens.
type Options struct {
	// Addr is host:port; port 0 picks a free one.
	Addr string
	// Token, when not empty, is required of every request.
	Token string
	// Central is the central node's name.
	Central string
	// ErrorLogFolder is central's error log (<data folder>/errorLog).
	ErrorLogFolder string
	// JaegerURL, when set, links trace IDs to Jaeger's page of the trace.
	JaegerURL string
	// TLS, when not nil, makes the console speak HTTPS only
	// (credentials.HTTPServerTLS); its session cookie is then Secure.
	TLS    *tls.Config
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Console is a listening console.
type Console struct {
	b     Backend
	o     Options
	ln    net.Listener
	srv   *http.Server
	log   *slog.Logger
	page  *template.Template
	hub   *hub
	fleet *fleet
	msgs  *messageIndex
	errs  *errorLog
}

// Listen listens on o.Addr.
func Listen(b Backend, o Options) (*Console, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("console %q: want host:port: %w", o.Addr, err)
	}
	if o.Token == "" && !loopbackHost(host) {
		return nil, fmt.Errorf("console %s: %w", o.Addr, ErrNoToken)
	}
	page, err := template.ParseFS(web, "web/page.html")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	bound, _ := ln.Addr().(*net.TCPAddr)
	onLoopback := bound != nil && bound.IP.IsLoopback()
	if o.Token == "" && !onLoopback {
		ln.Close()
		return nil, fmt.Errorf("console %s is bound to %s: %w", o.Addr, ln.Addr(), ErrNoToken)
	}
	if !onLoopback && o.TLS == nil {
		o.Logger.Warn("the console listens beyond loopback over plain HTTP: its token, session and messages cross the network unencrypted (give it http-tls-cert, or put it behind TLS or a tunnel)", "listen", ln.Addr().String())
	}
	scheme := "http"
	if o.TLS != nil {
		ln, scheme = tls.NewListener(ln, o.TLS), "https"
	}
	c := &Console{b: b, o: o, ln: ln, log: o.Logger, page: page, hub: newHub()}
	c.fleet = newFleet(o.Now)
	c.msgs = newMessageIndex(maxMessages)
	c.errs = &errorLog{dir: o.ErrorLogFolder}
	c.srv = &http.Server{
		Handler:           c.routes(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	c.log.Info("console listening", "url", scheme+"://"+ln.Addr().String()+"/", "token", o.Token != "")
	return c, nil
}

// Addr is the address the console listens on.
func (c *Console) Addr() net.Addr { return c.ln.Addr() }

// Serve follows the fleet and serves requests until ctx ends; requests in
// progress then get up to 10 s (event streams end at once). It returns an
// error only when the listener failed.
func (c *Console) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	go c.follow(ctx)
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.srv.Shutdown(sctx); err != nil {
			c.srv.Close()
		}
	})
	err := c.srv.Serve(c.ln)
	if stop() {
		c.srv.Close()
		close(stopped)
	}
	<-stopped
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("console: %w", err)
}

// Close releases a console that is not serving.
func (c *Console) Close() error { return c.ln.Close() }

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(web, "web")
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles(static)))
	for path, page := range map[string]string{"GET /{$}": "fleet", "GET /messages": "messages", "GET /send": "send", "GET /errors": "errors"} {
		mux.HandleFunc(path, c.servePage(page))
	}
	mux.HandleFunc("GET /messages/{id}", c.servePage("message"))
	mux.HandleFunc("GET /login", c.servePage("login"))
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("GET /api/fleet", c.getFleet)
	mux.HandleFunc("GET /api/messages", c.listMessages)
	mux.HandleFunc("GET /api/messages/{id}", c.getMessage)
	mux.HandleFunc("GET /api/messages/{id}/output", c.getOutput)
	mux.HandleFunc("GET /api/messages/{id}/follow", c.followOutput)
	mux.HandleFunc("POST /api/messages/{id}/cancel", c.cancel)
	mux.HandleFunc("POST /api/send", c.send)
	mux.HandleFunc("GET /api/errors", c.listErrors)
	mux.HandleFunc("GET /api/events", c.events)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no page "+r.URL.Path)
	})
	return c.guard(mux)
}

// guard sets the security headers, asks for the token and refuses POSTs
// that a page of another site could have sent.
func (c *Console) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		open := r.URL.Path == "/login" || strings.HasPrefix(r.URL.Path, "/static/")
		if !open && !c.authorized(r) {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				writeError(w, http.StatusUnauthorized, "unauthorized", "the console needs its token: log in at /login or send Authorization: Bearer <token>")
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && r.URL.Path != "/login" && r.Header.Get("X-Steward-Console") != "1" {
			writeError(w, http.StatusForbidden, "forbidden", "POST requests need the header X-Steward-Console: 1")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cookieName holds a session: a hash of the token, never the token.
const cookieName = "steward_console"

func (c *Console) session() string {
	sum := sha256.Sum256([]byte("steward console session\x00" + c.o.Token))
	return hex.EncodeToString(sum[:])
}

// authorized: no token, or the token as a bearer, or the session cookie;
// compared in constant time.
func (c *Console) authorized(r *http.Request) bool {
	if c.o.Token == "" {
		return true
	}
	if scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return equal(strings.TrimSpace(given), c.o.Token)
	}
	if ck, err := r.Cookie(cookieName); err == nil {
		return equal(ck.Value, c.session())
	}
	return false
}

func equal(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// login takes the token from the login form and sets the session cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if c.o.Token == "" || !equal(r.PostFormValue("token"), c.o.Token) {
		w.WriteHeader(http.StatusUnauthorized)
		c.renderPage(w, r, "login", "That is not the console's token.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: c.session(), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// pageData is what web/page.html is executed with.
type pageData struct {
	Page, Title, ID, Central, Error string
}

var titles = map[string]string{"fleet": "Fleet", "messages": "Messages", "message": "Message", "send": "Send", "errors": "Errors", "login": "Log in"}

func (c *Console) servePage(page string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { c.renderPage(w, r, page, "") }
}

func (c *Console) renderPage(w http.ResponseWriter, r *http.Request, page, errText string) {
	d := pageData{Page: page, Title: titles[page], ID: r.PathValue("id"), Central: c.o.Central, Error: errText}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := c.page.Execute(w, d); err != nil {
		c.log.Warn("console page", "page", page, "error", err)
	}
}

// staticFiles serves the embedded CSS and JavaScript.
func staticFiles(root fs.FS) http.Handler {
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".css") && !strings.HasSuffix(r.URL.Path, ".js") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, short, text string) {
	writeJSON(w, code, errorView{Error: text, Code: short})
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
