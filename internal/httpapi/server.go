package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
)

// Backend is what the API serves: the node's sender, status records and
// registry.
type Backend struct {
	// Send sends operator input as the socket and `steward send` do
	// (sender.Sender.SendInput, through the node's outbox).
	Send func(ctx context.Context, input []byte) ([]sender.Receipt, error)
	// Status returns the records of every delivery and reply of message
	// id, in status.Compare's order; none when it is unknown.
	Status func(ctx context.Context, id string) ([]*status.Record, error)
	// Nodes returns the node registry.
	Nodes func(ctx context.Context) ([]*registry.Node, error)
	// Refused, if not nil, is given input refused before Send could read
	// it (a body over 16 MiB: its first 16 MiB + 1), for the audit log.
	Refused func(input []byte, err error)
}

// Options say where and how the API listens.
type Options struct {
	// Addr is host:port; port 0 picks a free one.
	Addr string
	// Token, when not empty, is required of every request. Without it the
	// API listens only on loopback.
	Token string
	// DataFolder is the node's data folder, and FilesFolder the folder
	// inside it served at /v1/files/ ("." for the whole data folder, ""
	// for none; see config.CleanHTTPDataFolder).
	DataFolder, FilesFolder string
	// TLS, when not nil, makes the API speak HTTPS only
	// (credentials.HTTPServerTLS).
	TLS    *tls.Config
	Logger *slog.Logger
}

// Limits (see the package comment).
const (
	// MaxConns bounds the connections served at once.
	MaxConns = 64
	// silence is how long a client may send nothing.
	silence = 30 * time.Second
	// stopTimeout is how long requests in progress may take to finish
	// once Serve's context ended.
	stopTimeout = 10 * time.Second
)

// Server is a listening API.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	files *os.Root // nil: no files served
	log   *slog.Logger
}

// Listen opens the files folder, if any, and listens on o.Addr.
func Listen(b Backend, o Options) (*Server, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("http-api %q: want host:port: %w", o.Addr, err)
	}
	if o.Token == "" && !loopbackHost(host) {
		return nil, fmt.Errorf("http-api %s: %w", o.Addr, ErrNoToken)
	}
	s := &Server{log: log}
	if o.FilesFolder != "" {
		if s.files, err = os.OpenRoot(filepath.Join(o.DataFolder, filepath.FromSlash(o.FilesFolder))); err != nil {
			return nil, fmt.Errorf("http-data-folder: %w", err)
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("http-api: %w", err)
	}
	bound, _ := ln.Addr().(*net.TCPAddr)
	onLoopback := bound != nil && bound.IP.IsLoopback()
	if o.Token == "" && !onLoopback {
		ln.Close()
		s.Close()
		return nil, fmt.Errorf("http-api %s is bound to %s: %w", o.Addr, ln.Addr(), ErrNoToken)
	}
	s.ln = newLimitListener(ln, MaxConns)
	if o.TLS != nil {
		s.ln = tls.NewListener(s.ln, o.TLS)
	}
	s.srv = &http.Server{
		Handler:           s.routes(b, o),
		ReadHeaderTimeout: silence,
		IdleTimeout:       2 * silence,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	switch {
	case o.Token == "":
		log.Warn("the HTTP API has no token: every local user can send messages as this node (give it http-api-token-file)", "listen", ln.Addr().String())
	case !onLoopback && o.TLS == nil:
		log.Warn("the HTTP API listens beyond loopback over plain HTTP: its token and messages cross the network unencrypted (give it http-tls-cert, or put it behind TLS or a tunnel)", "listen", ln.Addr().String())
	}
	log.Info("HTTP API listening", "listen", ln.Addr().String(), "https", o.TLS != nil, "token", o.Token != "", "files", o.FilesFolder)
	return s, nil
}

// routes is the API's handler: every route behind the token, if any.
func (s *Server) routes(b Backend, o Options) http.Handler {
	mux := http.NewServeMux()
	m := &messages{b: b, budget: make(chan struct{}, maxBuffered/maxBody), log: s.log}
	mux.HandleFunc("POST /v1/messages", m.post)
	mux.HandleFunc("GET /v1/messages/{id}", m.get)
	mux.HandleFunc("GET /v1/nodes", nodes(b))
	if s.files != nil {
		f := &files{root: s.files, hideState: o.FilesFolder == "."}
		mux.HandleFunc("GET /v1/files/{path...}", f.get)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s (see docs/openapi.yaml)", r.Method, r.URL.Path))
	})
	var h http.Handler = mux
	if o.Token != "" {
		h = requireToken(o.Token, h)
	}
	return h
}

// Addr is the address the API listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves requests until ctx ends, then stops as the package comment
// says. It returns an error only when the listener failed.
func (s *Server) Serve(ctx context.Context) error {
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := s.srv.Shutdown(sctx); err != nil {
			s.log.Warn("HTTP API requests cut at shutdown", "error", err)
			s.srv.Close()
		}
	})
	err := s.srv.Serve(s.ln)
	if stop() {
		// Serve failed before ctx ended.
		s.srv.Close()
		close(stopped)
	}
	<-stopped
	if s.files != nil {
		s.files.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("http-api: %w", err)
}

// Close releases a server that is not serving (a node that failed to
// start).
func (s *Server) Close() error {
	var errs []error
	if s.ln != nil {
		errs = append(errs, s.ln.Close())
	}
	if s.files != nil {
		errs = append(errs, s.files.Close())
	}
	return errors.Join(errs...)
}

// loopbackHost reports whether host names loopback: localhost or a
// loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
