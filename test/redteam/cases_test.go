package redteam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/stream"
)

// noKey: a host on the network with no key the broker lists (none, a
// stranger's, or none and no TLS) does not get in.
func noKey(e *env) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		e.t.Fatal(err)
	}
	stranger, _ := kp.Seed()
	strangerFile := filepath.Join(e.t.TempDir(), "stranger.nk")
	if err := os.WriteFile(strangerFile, stranger, 0o600); err != nil {
		e.t.Fatal(err)
	}
	strangerKey, err := nats.NkeyOptionFromSeed(strangerFile)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range []struct {
		what string
		url  string
		opts []nats.Option
	}{
		{"TLS, no key", e.f.url(), []nats.Option{nats.RootCAs(e.f.tls.CA)}},
		{"TLS, a key nobody listed", e.f.url(), []nats.Option{nats.RootCAs(e.f.tls.CA), strangerKey}},
		{"TLS, ship2's user name without its key", e.f.url(), []nats.Option{nats.RootCAs(e.f.tls.CA), nats.UserInfo("ship2", "")}},
		{"no TLS, no key", "nats://" + e.f.BrokerAddr(), nil},
		{"no TLS, ship2's key", "nats://" + e.f.BrokerAddr(), []nats.Option{mustNkey(e.t, e.f.seed("ship2"))}},
		{"TLS without the CA, ship2's key", e.f.url(), []nats.Option{mustNkey(e.t, e.f.seed("ship2"))}},
	} {
		nc, err := nats.Connect(a.url, append(a.opts, nats.MaxReconnects(0), nats.NoCallbacksAfterClientClose())...)
		if err == nil {
			nc.Close()
			e.acceptedByBroker("connect: "+a.what, "connected")
			continue
		}
		e.refusedByBroker("connect: "+a.what, err.Error())
	}
}

func mustNkey(t *testing.T, seed string) nats.Option {
	t.Helper()
	o, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// checkMarkers fails the case when a command an attacker sent ran.
func (e *env) checkMarkers() {
	e.t.Helper()
	entries, err := os.ReadDir(e.f.markers)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range entries {
		e.t.Errorf("an attacker's command ran: marker %s", m.Name())
	}
}

// checkState: every node's ledger still reads as JSON lines, and no file
// outside the audit logs holds data an attacker tried to write.
func (f *fleet) checkState(t *testing.T) {
	t.Helper()
	for _, node := range []string{"central", "ship1", "ship2"} {
		ledger := filepath.Join(f.data(node), ".steward", "ledger")
		segs, err := filepath.Glob(filepath.Join(ledger, "*.jsonl"))
		if err != nil || len(segs) == 0 {
			t.Errorf("%s's ledger: %v, %d segments", node, err, len(segs))
		}
		for _, s := range segs {
			b, err := os.ReadFile(s)
			if err != nil {
				t.Errorf("%s: %v", s, err)
				continue
			}
			for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				if !strings.HasPrefix(line, "{") || !strings.HasSuffix(line, "}") {
					t.Errorf("%s line %d is not a ledger record: %.100q", s, i+1, line)
				}
			}
		}
		_ = filepath.WalkDir(f.Dir(node), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Type()&os.ModeSymlink != 0 || strings.HasPrefix(d.Name(), "audit") {
				return nil
			}
			if d.IsDir() && d.Name() == "jetstream" {
				return filepath.SkipDir // the broker's store holds what was published, refused or not
			}
			if d.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), pwned) {
				t.Errorf("%s holds an attacker's data", p)
			}
			return nil
		})
	}
}

// pwned is the data attackers try to write.
const pwned = "PWNED-by-redteam"

// marker is a command line that leaves a file behind if it ever runs.
func (e *env) marker(name string) []string {
	return []string{"touch", filepath.Join(e.f.markers, name)}
}

// mustRefuseSubscribe subscribes as c where the broker must refuse it.
func (e *env) mustRefuseSubscribe(c *conn, what, subj string) {
	e.t.Helper()
	sub, err := c.nc.SubscribeSync(subj)
	if err != nil {
		e.refusedByBroker(what, err.Error())
		return
	}
	defer sub.Unsubscribe()
	if err := c.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	var got string
	fleettest.Eventually(e.t, 10*time.Second, what+" refused", func() bool {
		select {
		case v := <-c.violations:
			if strings.Contains(v, `"`+subj+`"`) {
				got = v
				return true
			}
		default:
		}
		return false
	})
	e.refusedByBroker(what, got)
}

// stolenShipReads: ship2's key reads nothing of another node's.
func stolenShipReads(e *env) {
	c := e.ship2
	id := e.goodTo("ship1")
	e.mustRefuse(c, "pull from ship1's queue", "$JS.API.CONSUMER.MSG.NEXT."+stream.MessagesStream+".ship1", []byte(`{"batch":1,"expires":1000000000}`))
	e.mustRefuse(c, "ship1's consumer info", "$JS.API.CONSUMER.INFO."+stream.MessagesStream+".ship1", nil)
	e.mustRefuse(c, "a consumer of its own on ship1's subject", "$JS.API.CONSUMER.CREATE."+stream.MessagesStream+".spy.steward.msg.ship1",
		encode(e.t, map[string]any{"stream_name": stream.MessagesStream, "config": map[string]any{
			"durable_name": "spy", "filter_subject": stream.MessageSubject("ship1"), "ack_policy": "explicit"}}))
	e.mustRefuse(c, "an ephemeral consumer", "$JS.API.CONSUMER.CREATE."+stream.MessagesStream,
		encode(e.t, map[string]any{"stream_name": stream.MessagesStream, "config": map[string]any{
			"filter_subject": stream.MessageSubject("ship1"), "ack_policy": "explicit"}}))
	e.mustRefuse(c, "a message of the stream by sequence", "$JS.API.STREAM.MSG.GET."+stream.MessagesStream, []byte(`{"seq":1}`))
	e.mustRefuse(c, "a message of the stream, direct", "$JS.API.DIRECT.GET."+stream.MessagesStream, []byte(`{"seq":1}`))
	e.mustRefuse(c, "ship1's status record", "$JS.API.DIRECT.GET.KV_"+stream.StatusBucket+".$KV."+stream.StatusBucket+"."+id+".ship1", nil)
	e.mustRefuse(c, "ship1's registry record", "$JS.API.DIRECT.GET.KV_"+stream.NodesBucket+".$KV."+stream.NodesBucket+".ship1", nil)
	e.mustRefuse(c, "the stream list", "$JS.API.STREAM.NAMES", nil)
	e.mustRefuseSubscribe(c, "subscribe to ship1's queue subject", stream.MessageSubject("ship1"))
	e.mustRefuseSubscribe(c, "subscribe to every message", "steward.>")
	e.mustRefuseSubscribe(c, "subscribe to ship1's inbox", "_INBOX_ship1.>")
	e.mustRefuseSubscribe(c, "subscribe to the status bucket", "$KV."+stream.StatusBucket+".>")
}

// stolenShipRetargets: ship2's key may create (again) its own consumer;
// it must not point that consumer at ship1's messages and read them.
func stolenShipRetargets(e *env) {
	for _, subj := range []string{
		"$JS.API.CONSUMER.CREATE." + stream.MessagesStream + ".ship2",
		"$JS.API.CONSUMER.CREATE." + stream.MessagesStream + ".ship2." + stream.MessageSubject("ship1"),
		"$JS.API.CONSUMER.DURABLE.CREATE." + stream.MessagesStream + ".ship2",
	} {
		e.retarget(e.ship2, "its own consumer re-pointed at ship1's queue via "+subj, subj)
	}
}

// retarget asks, as c, to change ship2's consumer to ship1's subject. The
// broker must refuse; if it did not, the harness puts the consumer back.
func (e *env) retarget(c *conn, what, subj string) {
	e.t.Helper()
	cons, err := e.harness.js.Consumer(e.t.Context(), stream.MessagesStream, "ship2")
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := cons.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := info.Config
	cfg.FilterSubject = stream.MessageSubject("ship1")
	e.mustRefuse(c, what, subj, encode(e.t, map[string]any{"stream_name": stream.MessagesStream, "config": cfg}))
	now, err := cons.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	if now.Config.FilterSubject != info.Config.FilterSubject {
		e.t.Errorf("ship2's consumer now takes %s", now.Config.FilterSubject)
		if _, err := e.harness.js.UpdateConsumer(e.t.Context(), stream.MessagesStream, info.Config); err != nil {
			e.t.Fatalf("putting ship2's consumer back: %v", err)
		}
	}
}

// stolenShipWrites: ship2's key writes nothing of another node's, and
// sends no message to any node but the senders.
func stolenShipWrites(e *env) {
	c := e.ship2
	id := e.goodTo("ship1")
	e.mustRefuse(c, "ship1's status", "$KV."+stream.StatusBucket+"."+id+".ship1", []byte(`{"status":"failed"}`))
	e.mustRefuse(c, "ship1's reply record", "$KV."+stream.StatusBucket+"."+id+".ship1.reply", []byte(`{"status":"failed"}`))
	e.mustRefuse(c, "ship1's registry record", "$KV."+stream.NodesBucket+".ship1", []byte(`{"node":"ship1"}`))
	e.mustRefuse(c, "claim ship1's delivery", stream.ClaimSubjectPrefix+id+".ship1", nil)
	e.mustRefuse(c, "ship1's clock probe", stream.ClockSubject("ship1"), nil)
	s2 := e.f.signer(e.t, "ship2")
	e.publish(c, "a command into ship1's queue, signed as ship2", "ship1",
		sign(e.t, s2, newMessage("rtw1", "ship2", "ship1", "REQCliCommand", e.marker("rtw1")...)), "")
	e.publish(c, "a command into its own queue, signed as ship2", "ship2",
		sign(e.t, s2, newMessage("rtw2", "ship2", "ship2", "REQCliCommand", e.marker("rtw2")...)), "")
}

// stolenShipLayout: ship2's key changes no stream, bucket or consumer.
func stolenShipLayout(e *env) {
	c := e.ship2
	for _, a := range []struct{ what, subj, body string }{
		{"delete the message stream", "$JS.API.STREAM.DELETE." + stream.MessagesStream, ""},
		{"purge the message stream", "$JS.API.STREAM.PURGE." + stream.MessagesStream, `{}`},
		{"purge ship1's messages", "$JS.API.STREAM.PURGE." + stream.MessagesStream, `{"filter":"steward.msg.ship1"}`},
		{"delete a message", "$JS.API.STREAM.MSG.DELETE." + stream.MessagesStream, `{"seq":1}`},
		{"change the message stream", "$JS.API.STREAM.UPDATE." + stream.MessagesStream, `{"name":"` + stream.MessagesStream + `","subjects":["steward.msg.*"],"max_age":1000000000}`},
		{"create a stream", "$JS.API.STREAM.CREATE.SPY", `{"name":"SPY","subjects":["steward.msg.ship1"]}`},
		{"delete the deadline stream", "$JS.API.STREAM.DELETE." + stream.DeadlinesStream, ""},
		{"delete the status bucket", "$JS.API.STREAM.DELETE.KV_" + stream.StatusBucket, ""},
		{"purge the registry", "$JS.API.STREAM.PURGE.KV_" + stream.NodesBucket, `{}`},
		{"delete ship1's consumer", "$JS.API.CONSUMER.DELETE." + stream.MessagesStream + ".ship1", ""},
		{"delete its own consumer", "$JS.API.CONSUMER.DELETE." + stream.MessagesStream + ".ship2", ""},
		{"delete central's deadline consumer", "$JS.API.CONSUMER.DELETE." + stream.DeadlinesStream + ".central", ""},
		{"pause ship1's consumer", "$JS.API.CONSUMER.PAUSE." + stream.MessagesStream + ".ship1", `{"pause_until":"2100-01-01T00:00:00Z"}`},
	} {
		var body []byte
		if a.body != "" {
			body = []byte(a.body)
		}
		e.mustRefuse(c, a.what, a.subj, body)
	}
}
