package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"slices"
	"time"
)

// Server serves one handler over HTTP on one address.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen listens on addr (host:port) for h. An address that is not on
// loopback (a name that resolves beyond it, or 0.0.0.0) is refused with
// ErrNotLoopback unless remote names networks beyond loopback; clients
// from elsewhere than loopback and remote are then answered 403.
func Listen(addr string, h http.Handler, remote []netip.Prefix) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if len(remote) == 0 && !onLoopback(ln.Addr()) {
		ln.Close()
		return nil, fmt.Errorf("%s (%s): %w", addr, ln.Addr(), ErrNotLoopback)
	}
	if len(remote) > 0 {
		h = allowOnly(h, remote)
	}
	return &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// OnLoopback reports whether the server listens on loopback only.
func (s *Server) OnLoopback() bool { return onLoopback(s.ln.Addr()) }

// Serve serves until ctx ends, then shuts down, giving requests in
// progress 5s to end.
func (s *Server) Serve(ctx context.Context) error {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	}()
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	s.srv.Close()
	return err
}

// Close stops the server at once (and its listener, if it never served).
func (s *Server) Close() {
	s.srv.Close()
	s.ln.Close()
}

func onLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// allowOnly answers 403 to clients from beyond loopback and nets.
func allowOnly(h http.Handler, nets []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		a := ap.Addr().Unmap()
		if err != nil || !a.IsLoopback() && !slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(a) }) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ProfilingHandler serves Go's profiles (net/http/pprof) under
// /debug/pprof/, on a mux of its own: nothing is served from
// http.DefaultServeMux, where importing net/http/pprof registers them too.
func ProfilingHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
