// Package netfault is a loopback TCP proxy that cuts the link between a
// steward node and its NATS broker on demand, for tests and for the
// fault-injection harness.
//
// A Proxy listens on 127.0.0.1 only and forwards each accepted connection to
// one target address, dialled afresh for every connection. What it
// guarantees:
//
//   - With no fault active, bytes pass unchanged and in order, and a
//     half-close (EOF) is passed on to the other peer.
//   - Bytes the proxy reads in a direction a fault drops are discarded: they
//     are never delivered later, on that connection or any other. Nothing is
//     buffered beyond the one read chunk in flight, and a chunk is forwarded
//     or dropped whole. The proxy keeps reading during a fault, so a
//     sender's writes never block on a cut link (a real link blocks them
//     once the TCP window fills). A chunk read just before Cut may still be
//     delivered just after it, and bytes written just before Restore that
//     the proxy has not read yet pass; a test that must know its bytes were
//     dropped waits for Stats to count them before it calls Restore.
//   - Reset closes every open connection with a TCP RST on both sides, and
//     for as long as it lasts the proxy keeps listening but resets every
//     connection as soon as it is accepted: the client's connect fails with
//     a reset, or succeeds and its first read does (never a timeout, and
//     never "connection refused", since the port stays open).
//   - Blackhole forwards nothing and tells no peer anything: connections stay
//     open, an EOF or error on one side is not passed to the other, and new
//     connections are accepted but lead nowhere (the target is not dialled).
//     Every connection that was open during a Blackhole, or accepted during
//     it, stays dead after Restore: it keeps discarding both ways until its
//     peers close it or the Proxy closes, as a real TCP connection whose
//     packets were lost would until its peers time out. Connections made
//     after Restore work.
//   - DropToTarget and DropToClient discard one direction and forward the
//     other. After Restore the same connections forward both ways again,
//     with a hole where the dropped bytes were: the proxy does not parse
//     the protocol, so a peer may see a malformed stream and close the
//     connection, as it would after a link drop. An EOF in the dropped
//     direction is discarded too.
//   - Close closes the listener and every connection and returns only when
//     every goroutine of the Proxy has ended.
package netfault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds the dial to the target for one accepted connection.
const dialTimeout = 5 * time.Second

// chunk is the most one read takes from a connection.
const chunk = 32 << 10

// Proxy forwards TCP connections from a loopback listen address to a target.
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	dialer net.Dialer
	ctx    context.Context // ends on Close; cancels dials to the target
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	cut    bool // a fault is active
	mode   Mode // the active fault, when cut
	links  map[*link]struct{}

	accepted        atomic.Int64
	toTarget        atomic.Int64
	toClient        atomic.Int64
	droppedToTarget atomic.Int64
	droppedToClient atomic.Int64
	cuts            atomic.Int64
}

// link is one client connection and, unless it was accepted during a
// Blackhole, its connection to the target. The fields are guarded by
// Proxy.mu.
type link struct {
	client net.Conn
	target net.Conn // nil while dialling, or for good when dead at accept
	dead   bool     // saw a Blackhole: forwards nothing ever again
	closed bool
}

// Stats are a Proxy's counters since Start.
type Stats struct {
	// Accepted counts client connections accepted, including those Reset
	// closed at once.
	Accepted int64
	// Active is the number of connections open now (dead ones included).
	Active int
	// ToTarget and ToClient count bytes forwarded each way.
	ToTarget, ToClient int64
	// DroppedToTarget and DroppedToClient count bytes discarded by faults.
	DroppedToTarget, DroppedToClient int64
	// Cuts counts calls of Cut (a Flap cuts once per cycle).
	Cuts int64
}

// Start listens on a random port of 127.0.0.1 and forwards every connection
// to target (host:port) until Close. The target need not be up yet: a
// connection accepted while it is down is closed at once.
func Start(target string) (*Proxy, error) {
	if strings.Contains(target, "://") {
		return nil, fmt.Errorf("target %q: want host:port, not a URL: %w", target, ErrBadTarget)
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("target %q: %w: %w", target, ErrBadTarget, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target: target,
		ln:     ln,
		dialer: net.Dialer{Timeout: dialTimeout},
		ctx:    ctx,
		cancel: cancel,
		links:  make(map[*link]struct{}),
	}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the NATS URL of Addr.
func (p *Proxy) URL() string { return "nats://" + p.Addr() }

// Cut starts a fault, replacing any fault already active. It panics on a mode
// that is not one of the constants.
func (p *Proxy) Cut(mode Mode) {
	if !mode.valid() {
		panic(fmt.Sprintf("netfault: Cut with unknown %v", mode))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.cuts.Add(1)
	p.cut, p.mode = true, mode
	for l := range p.links {
		switch mode {
		case Reset:
			p.closeLink(l, true)
		case Blackhole:
			l.dead = true
		}
	}
}

// Restore ends the active fault, if any. New connections work again, and so
// do open ones, except those a Blackhole left dead.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Flap cuts with mode, restores, cuts again, and so on, switching every
// period, until ctx ends or the Proxy closes; it returns with the fault
// restored. It blocks: run it in its own goroutine.
func (p *Proxy) Flap(ctx context.Context, mode Mode, period time.Duration) {
	if period <= 0 {
		panic("netfault: Flap with a period that is not positive")
	}
	defer p.Restore()
	if ctx.Err() != nil {
		return
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for cut := true; ; cut = !cut {
		if cut {
			p.Cut(mode)
		} else {
			p.Restore()
		}
		select {
		case <-ctx.Done():
			return
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := len(p.links)
	p.mu.Unlock()
	return Stats{
		Accepted:        p.accepted.Load(),
		Active:          active,
		ToTarget:        p.toTarget.Load(),
		ToClient:        p.toClient.Load(),
		DroppedToTarget: p.droppedToTarget.Load(),
		DroppedToClient: p.droppedToClient.Load(),
		Cuts:            p.cuts.Load(),
	}
}

// Close stops listening, closes every connection and waits for every
// goroutine of the Proxy to end. Calls after the first return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	for l := range p.links {
		p.closeLink(l, false)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("close proxy listener: %w", err)
	}
	return nil
}

// accept runs until the listener closes.
func (p *Proxy) accept() {
	var backoff time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			// Out of file descriptors or the like: wait and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		p.accepted.Add(1)
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve connects c to the target (unless a fault says otherwise) and pumps
// bytes until both directions have ended.
func (p *Proxy) serve(c net.Conn) {
	l := &link{client: c}
	p.mu.Lock()
	if p.closed || p.cut && p.mode == Reset {
		p.mu.Unlock()
		closeConn(c, true)
		return
	}
	l.dead = p.cut && p.mode == Blackhole
	p.links[l] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.closeLink(l, false)
		delete(p.links, l)
		p.mu.Unlock()
	}()

	if !l.dead {
		t, err := p.dialer.DialContext(p.ctx, "tcp", p.target)
		p.mu.Lock()
		switch {
		case err != nil:
			// The target is down: the client sees its link drop.
			p.closeLink(l, true)
		case l.closed:
			// Reset or Close while dialling.
			closeConn(t, true)
		case l.dead:
			// Blackhole while dialling: the link leads nowhere.
			closeConn(t, false)
		default:
			l.target = t
		}
		stop := l.closed
		p.mu.Unlock()
		if stop {
			return
		}
	}

	if l.target == nil {
		p.pump(l, toTarget, c, nil)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(l, toClient, l.target, c) })
	p.pump(l, toTarget, c, l.target)
	wg.Wait()
}

// pump copies src to dst (nil: discard everything) in direction d, one chunk
// at a time, asking before each chunk whether d is forwarding.
func (p *Proxy) pump(l *link, d direction, src, dst net.Conn) {
	forwarded, dropped := &p.toTarget, &p.droppedToTarget
	if d == toClient {
		forwarded, dropped = &p.toClient, &p.droppedToClient
	}
	buf := make([]byte, chunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if dst == nil || !p.forwarding(l, d) {
				dropped.Add(int64(n))
			} else {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					p.hangUp(l)
					return
				}
				forwarded.Add(int64(n))
			}
		}
		if err == nil {
			continue
		}
		if dst == nil || !p.forwarding(l, d) {
			// The end of a direction that forwards nothing is not
			// passed on either.
			return
		}
		if errors.Is(err, io.EOF) {
			closeWrite(dst)
			return
		}
		p.hangUp(l)
		return
	}
}

// forwarding reports whether bytes travelling in d on l are passed on now.
func (p *Proxy) forwarding(l *link, d direction) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !l.closed && !l.dead && !(p.cut && p.mode.drops(d))
}

// hangUp closes both connections of l.
func (p *Proxy) hangUp(l *link) {
	p.mu.Lock()
	p.closeLink(l, false)
	p.mu.Unlock()
}

// closeLink closes both connections of l, with an RST when rst is set. The
// caller holds p.mu.
func (p *Proxy) closeLink(l *link, rst bool) {
	if l.closed {
		return
	}
	l.closed = true
	closeConn(l.client, rst)
	if l.target != nil {
		closeConn(l.target, rst)
	}
}

// closeConn closes c; with rst, as a TCP RST rather than a FIN.
func closeConn(c net.Conn, rst bool) {
	if tc, ok := c.(*net.TCPConn); ok && rst {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// closeWrite passes a half-close on to c.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
