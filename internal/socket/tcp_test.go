package socket_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/socket"
)

// serveBoth serves the unix socket path and a TCP listener on addr
// (with the remote networks) from one server until the test ends. It
// returns the TCP address and a function that stops the server and
// returns Serve's error.
func serveBoth(t *testing.T, path, addr string, remote []netip.Prefix, opts socket.Options) (string, func() error) {
	t.Helper()
	srv, err := socket.ListenWith(path, echo, discard, opts)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := srv.ListenTCP(addr, remote)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			serveErr = <-done
		})
		return serveErr
	}
	t.Cleanup(func() { stop() })
	return tcp.String(), stop
}

// talkTCP is talk over TCP.
func talkTCP(t *testing.T, addr, input string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, input); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	out, err := io.ReadAll(c)
	// A server that closes with input unread resets the connection.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read the answer: %v; got %q", err, out)
	}
	return string(out)
}

// TestTCPListener: the TCP listener answers as the socket does, from the
// same server, and stops with it.
func TestTCPListener(t *testing.T) {
	t.Parallel()
	path := socketPath(t)
	addr, stop := serveBoth(t, path, "127.0.0.1:0", nil, socket.Options{})
	for _, in := range []string{`[{"toNode":"ship1"}]`, `[1] {"b":2}`, `[{"toNode": oops}]`, `[{"a":1},]`} {
		if viaTCP, viaSocket := talkTCP(t, addr, in), talk(t, path, in); viaTCP != viaSocket || viaTCP == "" {
			t.Errorf("input %s: TCP answered %q, the socket %q", in, viaTCP, viaSocket)
		}
	}
	if got := talkTCP(t, addr, `[{"toNode": oops}]`); !strings.HasSuffix(got, " (malformed)\n") {
		t.Errorf("invalid JSON over TCP: %q, want an error line with its code", got)
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the TCP listener still accepts after Serve returned")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Serve returned: %v", err)
	}
}

// TestTCPListenerStaysOnLoopback: without networks named, an address
// beyond loopback is refused before anything listens.
func TestTCPListenerStaysOnLoopback(t *testing.T) {
	t.Parallel()
	srv, err := socket.New(echo, discard, socket.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		if _, err := srv.ListenTCP(addr, nil); !errors.Is(err, socket.ErrBeyondLoopback) {
			t.Errorf("ListenTCP(%s) with no remote network: %v, want ErrBeyondLoopback", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		if _, err := srv.ListenTCP(addr, nil); err != nil {
			t.Errorf("ListenTCP(%s): %v", addr, err)
		}
	}
}

// TestTCPClientsOutsideTheNetworksAreRefused: listening on every address
// with one network allowed, a client on loopback is served and one from
// another address of this machine is closed unanswered.
func TestTCPClientsOutsideTheNetworksAreRefused(t *testing.T) {
	t.Parallel()
	local := nonLoopbackIPv4(t)
	log, logs := newLog()
	srv, err := socket.New(echo, log, socket.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A documentation network this machine is not in.
	allowed := netip.MustParsePrefix("198.51.100.0/24")
	if allowed.Contains(local) {
		allowed = netip.MustParsePrefix("203.0.113.0/24")
	}
	bound, err := srv.ListenTCP("0.0.0.0:0", []netip.Prefix{allowed})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	port := bound.(*net.TCPAddr).Port
	if !strings.Contains(logs.String(), "listens beyond loopback") {
		t.Errorf("no warning that the listener is beyond loopback:\n%s", logs)
	}
	if got := talkTCP(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String(), `[1]`); got != answer("[1]") {
		t.Errorf("loopback client: %q", got)
	}
	if got := talkTCP(t, netip.AddrPortFrom(local, uint16(port)).String(), `[1]`); got != "" {
		t.Errorf("a client from %s outside %s was answered %q", local, allowed, got)
	}
	natEventually(t, "the refusal logged", func() bool { return strings.Contains(logs.String(), "TCP client refused") })
}

// nonLoopbackIPv4 is an IPv4 address of this machine beyond loopback; the
// test is skipped when it has none.
func nonLoopbackIPv4(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
			return p.Addr()
		}
	}
	t.Skip("no IPv4 address beyond loopback")
	return netip.Addr{}
}

func natEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually(t, 10*time.Second, what, cond)
}

// TestRefusedInputIsReported: what was read of invalid and oversize
// values goes to Options.Refused, over TCP as over the socket.
func TestRefusedInputIsReported(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	opts := socket.Options{MaxValue: 100, Refused: func(input []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(input)+" | "+err.Error())
	}}
	path := socketPath(t)
	addr, _ := serveBoth(t, path, "127.0.0.1:0", nil, opts)
	talk(t, path, `[{"a": x}]`)
	talkTCP(t, addr, `[{"a": x}]`)
	talkTCP(t, addr, "["+strings.Repeat(`"aaaaaaaa",`, 20)+`"a"]`)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != got[1] || !strings.HasPrefix(got[0], `[{"a": x | invalid JSON input`) ||
		!strings.Contains(got[2], "input is too large") {
		t.Errorf("refused input reported: %q", got)
	}
}
