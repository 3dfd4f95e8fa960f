package socket

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// ListenTCP adds a TCP listener on addr (host:port; port 0 picks a free
// one) and returns the address it is bound to. Its clients are served as
// the unix socket's are.
//
// A TCP port has no file mode: anyone who reaches it sends as this node.
// So clients on loopback may always connect, and others only when they
// are in one of the remote networks. With no remote network the listener
// must be bound to loopback, or ListenTCP fails with ErrBeyondLoopback
// (checked on the address given and again on the address bound, so a
// host name that resolves elsewhere is caught). A listener bound beyond
// loopback is logged as a warning each time it starts.
func (s *Server) ListenTCP(addr string, remote []netip.Prefix) (net.Addr, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tcp listener %q: want host:port: %w", addr, err)
	}
	if len(remote) == 0 && !loopbackHost(host) {
		return nil, fmt.Errorf("tcp listener %s %w; listen on 127.0.0.1, or name the networks whose clients may connect", addr, ErrBeyondLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp listener: %w", err)
	}
	bound, _ := ln.Addr().(*net.TCPAddr)
	onLoopback := bound != nil && bound.IP.IsLoopback()
	if len(remote) == 0 && !onLoopback {
		ln.Close()
		return nil, fmt.Errorf("tcp listener %s is bound to %s, which %w", addr, ln.Addr(), ErrBeyondLoopback)
	}
	if !onLoopback {
		s.log.Warn("the TCP listener listens beyond loopback: clients from these networks can send messages as this node, signed with its key",
			"listen", ln.Addr().String(), "remote", prefixes(remote))
	}
	s.add(&listener{ln: ln, allowed: allowFrom(remote)})
	return ln.Addr(), nil
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

// allowFrom says whether a client at addr may connect: one on loopback,
// or in one of the remote networks.
func allowFrom(remote []netip.Prefix) func(net.Addr) bool {
	return func(addr net.Addr) bool {
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return false
		}
		ip := ap.Addr().Unmap()
		if ip.IsLoopback() {
			return true
		}
		for _, p := range remote {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// refusals counts clients refused for their address and logs them, at
// most once a minute. Only its listener's accept loop uses it.
type refusals struct {
	count   int
	lastLog time.Time
}

func (r *refusals) note(log *slog.Logger, addr net.Addr) {
	r.count++
	if now := time.Now(); now.Sub(r.lastLog) >= time.Minute {
		log.Warn("TCP client refused: not on loopback nor in the networks allowed", "client", addr.String(), "refused", r.count)
		r.lastLog, r.count = now, 0
	}
}
