package netfault_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/netfault"
)

// wait bounds every poll and every read that must succeed.
const wait = 10 * time.Second

// quiet is the read deadline of a read that must time out.
const quiet = 100 * time.Millisecond

// echoServer is the proxy's target in these tests: it echoes every byte on
// the connection it came from, records every byte it received on any
// connection, and can push bytes to its clients unasked.
type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	got   bytes.Buffer
	conns map[net.Conn]struct{}
}

func startEcho(t testing.TB) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("echo listen: %v", err)
	}
	s := &echoServer{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.accept)
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() { s.echo(c) })
	}
}

func (s *echoServer) echo(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			s.mu.Lock()
			s.got.Write(buf[:n])
			s.mu.Unlock()
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

// received is everything the server has read so far, all connections
// together.
func (s *echoServer) received() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.String()
}

// push writes msg to every connection the server has open.
func (s *echoServer) push(t testing.TB, msg string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == 0 {
		t.Fatal("push: the echo server has no connection")
	}
	for c := range s.conns {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("push: %v", err)
		}
	}
}

func startProxy(t testing.TB, target string) *netfault.Proxy {
	t.Helper()
	p, err := netfault.Start(target)
	if err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close proxy: %v", err)
		}
	})
	return p
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and expects exactly msg back.
func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	send(t, c, msg)
	expectRead(t, c, msg)
}

func send(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// expectRead reads len(want) bytes and expects them to be want.
func expectRead(t testing.TB, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, got %q", want, got)
	}
}

// expectSilence expects a read to time out with nothing read: the
// connection is open but nothing arrives.
func expectSilence(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(quiet))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 {
		t.Fatalf("expected nothing, read %q", buf[:n])
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("expected a read timeout on an open connection, got %v", err)
	}
}

// expectClosed expects the connection to end (EOF or reset), not to time
// out.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(make([]byte, 64))
	if n > 0 || err == nil {
		t.Fatalf("expected the connection closed, read %d bytes, %v", n, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("expected the connection closed, the read timed out")
	}
}

// expectRefused expects a new connection to addr to fail: the dial, or the
// first read (the proxy may reset a connection before or after the client's
// dial returns).
func expectRefused(t testing.TB, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("dial %s timed out", addr)
		}
		return
	}
	defer c.Close()
	expectClosed(t, c)
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	natstest.Eventually(t, wait, what, cond)
}

func TestStartRejectsBadTarget(t *testing.T) {
	for _, target := range []string{"nats://127.0.0.1:4222", "127.0.0.1", ""} {
		t.Run(target, func(t *testing.T) {
			p, err := netfault.Start(target)
			if err == nil {
				p.Close()
				t.Fatal("Start accepted the target")
			}
			if !errors.Is(err, netfault.ErrBadTarget) {
				t.Fatalf("error %v does not wrap ErrBadTarget", err)
			}
		})
	}
}

func TestAddrIsLoopback(t *testing.T) {
	p := startProxy(t, startEcho(t).addr())
	host, _, err := net.SplitHostPort(p.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q (%v), want 127.0.0.1:port", p.Addr(), err)
	}
	if want := "nats://" + p.Addr(); p.URL() != want {
		t.Fatalf("URL() = %q, want %q", p.URL(), want)
	}
}

func TestForwards(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.addr())
	c := dial(t, p.Addr())
	roundTrip(t, c, "hello")
	// More than one read chunk, both ways.
	big := strings.Repeat("0123456789abcdef", 1<<16)
	var wg sync.WaitGroup
	wg.Go(func() { send(t, c, big) })
	expectRead(t, c, big)
	wg.Wait()
	echo.push(t, "pushed")
	expectRead(t, c, "pushed")

	// The proxy counts a chunk once its write has returned, which may be
	// after the client read it.
	wantTo := int64(len("hello") + len(big))
	wantFrom := wantTo + int64(len("pushed"))
	eventually(t, "byte counts", func() bool {
		st := p.Stats()
		return st.ToTarget == wantTo && st.ToClient == wantFrom
	})
	if st := p.Stats(); st.Accepted != 1 || st.Active != 1 || st.Cuts != 0 || st.DroppedToTarget != 0 || st.DroppedToClient != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestHalfClosePassesThrough(t *testing.T) {
	p := startProxy(t, startEcho(t).addr())
	c := dial(t, p.Addr())
	send(t, c, "last words")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The echo server answers, sees EOF, and closes: the client gets the
	// answer, then EOF.
	c.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v", got, err)
	}
	eventually(t, "the link to be gone", func() bool { return p.Stats().Active == 0 })
}

func TestReset(t *testing.T) {
	p := startProxy(t, startEcho(t).addr())
	live := dial(t, p.Addr())
	roundTrip(t, live, "before")

	p.Cut(netfault.Reset)
	expectClosed(t, live)
	eventually(t, "no open link", func() bool { return p.Stats().Active == 0 })
	expectRefused(t, p.Addr())

	p.Restore()
	fresh := dial(t, p.Addr())
	roundTrip(t, fresh, "after")
	if st := p.Stats(); st.Accepted != 3 || st.Cuts != 1 {
		t.Errorf("Stats = %+v, want 3 accepted, 1 cut", st)
	}
}

func TestBlackhole(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.addr())
	open := dial(t, p.Addr())
	roundTrip(t, open, "before")

	p.Cut(netfault.Blackhole)
	send(t, open, "lost-1")
	expectSilence(t, open)
	during := dial(t, p.Addr())
	send(t, during, "lost-2")
	expectSilence(t, during)
	eventually(t, "the proxy to drop what was sent", func() bool {
		return p.Stats().DroppedToTarget == int64(len("lost-1")+len("lost-2"))
	})

	p.Restore()
	fresh := dial(t, p.Addr())
	roundTrip(t, fresh, "after")
	// Connections that saw the black hole stay dead, and stay open.
	send(t, open, "lost-3")
	send(t, during, "lost-4")
	eventually(t, "the proxy to drop what was sent to dead links", func() bool {
		return p.Stats().DroppedToTarget == int64(len("lost-1")+len("lost-2")+len("lost-3")+len("lost-4"))
	})
	expectSilence(t, open)
	expectSilence(t, during)
	if got := echo.received(); got != "beforeafter" {
		t.Fatalf("target received %q, want %q", got, "beforeafter")
	}
	if st := p.Stats(); st.Active != 3 {
		t.Errorf("Active = %d, want 3 (two dead, one fresh)", st.Active)
	}
}

func TestDrop(t *testing.T) {
	t.Run("to target", func(t *testing.T) {
		echo := startEcho(t)
		p := startProxy(t, echo.addr())
		c := dial(t, p.Addr())
		roundTrip(t, c, "before")

		p.Cut(netfault.DropToTarget)
		send(t, c, "lost")
		eventually(t, "the proxy to drop what was sent", func() bool {
			return p.Stats().DroppedToTarget == int64(len("lost"))
		})
		expectSilence(t, c)
		echo.push(t, "down")
		expectRead(t, c, "down")

		p.Restore()
		roundTrip(t, c, "after")
		if got := echo.received(); got != "beforeafter" {
			t.Fatalf("target received %q, want %q", got, "beforeafter")
		}
	})
	t.Run("to client", func(t *testing.T) {
		echo := startEcho(t)
		p := startProxy(t, echo.addr())
		c := dial(t, p.Addr())
		roundTrip(t, c, "before")

		p.Cut(netfault.DropToClient)
		send(t, c, "up")
		eventually(t, "the target to receive and the proxy to drop its echo", func() bool {
			return echo.received() == "beforeup" && p.Stats().DroppedToClient == int64(len("up"))
		})
		expectSilence(t, c)

		p.Restore()
		// The dropped echo does not come late: only the new one arrives.
		roundTrip(t, c, "after")
		expectSilence(t, c)
	})
}

func TestFlap(t *testing.T) {
	p := startProxy(t, startEcho(t).addr())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Flap(ctx, netfault.Reset, 50*time.Millisecond)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// Try round trips until some failed (cut), some worked after a cut
	// (restored), and the proxy counted several cuts.
	var failed, workedAfterCut bool
	eventually(t, "flapping", func() bool {
		cutsBefore := p.Stats().Cuts
		if tryRoundTrip(p.Addr(), "ping") {
			workedAfterCut = workedAfterCut || cutsBefore > 0
		} else {
			failed = true
		}
		return failed && workedAfterCut && p.Stats().Cuts >= 3
	})

	cancel()
	<-done
	roundTrip(t, dial(t, p.Addr()), "restored")
}

// tryRoundTrip reports whether msg went to the echo server and back on a new
// connection.
func tryRoundTrip(addr, msg string) bool {
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return false
	}
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	return err == nil && string(got) == msg
}

func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	p := startProxy(t, gone)
	expectRefused(t, p.Addr())
}

func TestClose(t *testing.T) {
	echo := startEcho(t)
	p, err := netfault.Start(echo.addr())
	if err != nil {
		t.Fatal(err)
	}
	live := dial(t, p.Addr())
	roundTrip(t, live, "live")
	p.Cut(netfault.Blackhole)
	dead := dial(t, p.Addr())
	eventually(t, "two links", func() bool { return p.Stats().Active == 2 })

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := p.Stats(); st.Active != 0 {
		t.Errorf("Active = %d after Close", st.Active)
	}
	expectClosed(t, live)
	expectClosed(t, dead)
	if c, err := net.DialTimeout("tcp", p.Addr(), wait); err == nil {
		c.Close()
		t.Error("the proxy still accepts after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	p.Cut(netfault.Reset)
	if st := p.Stats(); st.Cuts != 1 {
		t.Errorf("Cuts = %d, want 1: a Cut after Close counts nothing", st.Cuts)
	}
	// Flap on a closed proxy returns at once.
	p.Flap(t.Context(), netfault.Reset, time.Hour)
}

func TestModeString(t *testing.T) {
	for mode, want := range map[netfault.Mode]string{
		netfault.Reset:        "reset",
		netfault.Blackhole:    "blackhole",
		netfault.DropToTarget: "drop-to-target",
		netfault.DropToClient: "drop-to-client",
		netfault.Mode(9):      "Mode(9)",
	} {
		if got := mode.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(mode), got, want)
		}
	}
}
