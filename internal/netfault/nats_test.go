package netfault_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/netfault"
)

// TestNATSReconnectsAfterRestore cuts a nats.go client off its server and
// checks that it notices, cannot get back while the cut lasts, and
// reconnects after Restore.
func TestNATSReconnectsAfterRestore(t *testing.T) {
	for _, mode := range []netfault.Mode{netfault.Reset, netfault.Blackhole} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := natstest.Start(t)
			p := startProxy(t, srv.Addr().String())
			disconnected := make(chan error, 1)
			reconnected := make(chan struct{}, 1)
			nc, err := nats.Connect(p.URL(),
				nats.MaxReconnects(-1),
				nats.ReconnectWait(50*time.Millisecond),
				// A black hole is only noticed by pings.
				nats.PingInterval(100*time.Millisecond),
				nats.MaxPingsOutstanding(2),
				nats.Timeout(500*time.Millisecond),
				nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
					select {
					case disconnected <- err:
					default:
					}
				}),
				nats.ReconnectHandler(func(*nats.Conn) {
					select {
					case reconnected <- struct{}{}:
					default:
					}
				}),
			)
			if err != nil {
				t.Fatalf("connect through the proxy: %v", err)
			}
			t.Cleanup(nc.Close)
			sub, err := nc.SubscribeSync("netfault.test")
			if err != nil {
				t.Fatal(err)
			}
			natsRoundTrip(t, nc, sub, "before")

			p.Cut(mode)
			select {
			case err := <-disconnected:
				t.Logf("disconnected: %v", err)
			case <-time.After(wait):
				t.Fatal("the client did not notice the cut")
			}
			// Let the client try to reconnect, and fail, at least once.
			accepted := p.Stats().Accepted
			eventually(t, "a reconnect attempt", func() bool { return p.Stats().Accepted > accepted })
			select {
			case <-reconnected:
				t.Fatal("the client reconnected during the cut")
			default:
			}

			p.Restore()
			select {
			case <-reconnected:
			case <-time.After(wait):
				t.Fatal("the client did not reconnect after Restore")
			}
			natsRoundTrip(t, nc, sub, "after")
		})
	}
}

// natsRoundTrip publishes data and expects sub to receive it.
func natsRoundTrip(t testing.TB, nc *nats.Conn, sub *nats.Subscription, data string) {
	t.Helper()
	if err := nc.Publish(sub.Subject, []byte(data)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := nc.FlushTimeout(wait); err != nil {
		t.Fatalf("flush: %v", err)
	}
	msg, err := sub.NextMsg(wait)
	if err != nil {
		t.Fatalf("next message: %v", err)
	}
	if string(msg.Data) != data {
		t.Fatalf("received %q, want %q", msg.Data, data)
	}
}
