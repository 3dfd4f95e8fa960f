package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/signature"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// A central node whose embedded broker requires TLS and an nkey from its
// authorization file: a ship with a listed key and the CA runs commands;
// a client with no key, an unlisted key or no CA is refused, and says why.
func TestAuthenticatedEncryptedBroker(t *testing.T) {
	f := newFleet(t)
	keys := t.TempDir()
	tlsFiles := natstest.NewTLSFiles(t, keys)
	centralSeed, centralPub := natstest.NkeySeed(t, keys, "central")
	shipSeed, shipPub := natstest.NkeySeed(t, keys, "ship1")
	strangerSeed, _ := natstest.NkeySeed(t, keys, "stranger")
	authFile := filepath.Join(keys, "authorization.json")
	auth := credentials.Authorization{Users: []credentials.User{{Name: "central", Nkey: centralPub}, {Name: "ship1", Nkey: shipPub}}}
	b, _ := json.Marshal(auth)
	if err := os.WriteFile(authFile, b, 0o644); err != nil {
		t.Fatal(err)
	}

	listen := natstest.FreePort(t)
	secure := func(cfg config.Config, seed string) config.Config {
		cfg.BrokerAddress = "tls://" + listen
		cfg.NkeySeedFile = seed
		cfg.RootCAPath = tlsFiles.CA
		return cfg
	}
	centralCfg := secure(f.config("central"), centralSeed)
	centralCfg.BrokerAddress = ""
	centralCfg.BrokerListen = listen
	centralCfg.BrokerTLSCert, centralCfg.BrokerTLSKey = tlsFiles.ServerCert, tlsFiles.ServerKey
	centralCfg.BrokerAuthorization = authFile
	f.start(centralCfg)
	f.start(secure(f.config("ship1"), shipSeed))

	c := f.client(centralCfg) // an operator beside central, as central

	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","over tls"]}`)
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded || recs[0].Output != "over tls\n" {
		t.Fatalf("command on ship1: %s", describe(recs))
	}

	for _, tc := range []struct {
		name string
		cfg  config.Config
		want string
	}{
		{"no key", func() config.Config { c := secure(f.config("x"), ""); return c }(), "authorization violation"},
		{"a key nobody listed", secure(f.config("x"), strangerSeed), "authorization violation"},
		{"no CA", func() config.Config { c := secure(f.config("x"), shipSeed); c.RootCAPath = ""; return c }(), "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Connect(natstest.Context(t, 5*time.Second), tc.cfg)
			if err == nil {
				t.Fatal("the broker let the client in")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}

}

// Secret files that others can read are refused, with the file named.
func TestSeedFileMustBePrivate(t *testing.T) {
	f := newFleet(t)
	seed, _ := natstest.NkeySeed(t, t.TempDir(), "ship1")
	if err := os.Chmod(seed, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := f.config("ship1")
	cfg.NkeySeedFile = seed
	_, err := f.launch(cfg, nil)
	if !errors.Is(err, credentials.ErrInsecureFile) || !strings.Contains(err.Error(), seed) {
		t.Fatalf("node started with a world-readable seed: %v", err)
	}
}

// An embedded broker that would listen beyond loopback with nobody
// authenticated refuses to start, unless told --insecure.
func TestOpenBrokerNeedsInsecure(t *testing.T) {
	f := newFleet(t)
	cfg := f.config("central")
	cfg.BrokerAddress = ""
	cfg.BrokerListen = "0.0.0.0:0"
	_, err := f.launch(cfg, nil)
	if !errors.Is(err, broker.ErrUnauthenticated) {
		t.Fatalf("open broker started: %v", err)
	}
	cfg.Insecure = true
	r := f.start(cfg)
	if !strings.Contains(r.logs.String(), "INSECURE") {
		t.Errorf("no warning in the log:\n%s", r.logs.String())
	}
}

// Forged reply chunks whose deliveryId would name a folder outside the
// chunk store (a review removed central's whole state folder with "..")
// are refused; the state stays, and the node goes on serving.
func TestForgedReplyCannotTouchTheStateFolder(t *testing.T) {
	f := newFleet(t)
	cfg := f.config("central")
	central := f.start(cfg)
	_, js := natstest.Connect(t, f.srv)
	for i, id := range []string{"..", "../../../../x/escaped", "abc/../../.."} {
		forged := map[string]any{
			"id": fmt.Sprintf("forged%d", i), "toNode": "central", "fromNode": "ship1", "method": "REQToFileAppend",
			"sentAt": time.Now().UTC(), "deadline": time.Now().Add(time.Hour).UTC(),
			"directory": "x", "fileName": "y",
			"reply": map[string]any{"deliveryId": id, "method": "REQCliCommand", "status": "succeeded", "chunk": 0, "chunks": 2},
		}
		b, _ := json.Marshal(forged)
		if _, err := js.Publish(t.Context(), stream.MessageSubject("central"), b); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 20*time.Second, "the forged replies refused", func() bool {
		return strings.Count(central.logs.String(), "deliveryId") >= 3
	})
	for _, dir := range []string{cfg.StateFolder(), filepath.Join(cfg.StateFolder(), "ledger")} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.StateFolder(), "0")); err == nil {
		t.Error(`a forged reply chunk with deliveryId ".." was stored in the state folder`)
	}
	c := f.client(cfg)
	ids := send(t, c, `{"toNode":"central","method":"REQCliCommand","methodArgs":["echo","still here"]}`)
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("after the forged replies: %s", describe(recs))
	}
}

// A fleet with generated per-node permissions: commands run and come back
// as usual, and the broker refuses a node that consumes another's queue,
// writes another's status, publishes into another's queue, or deletes a
// stream.
func TestPerNodePermissions(t *testing.T) {
	f := newFleet(t)
	keys := t.TempDir()
	centralSeed, centralPub := natstest.NkeySeed(t, keys, "central")
	ship1Seed, ship1Pub := natstest.NkeySeed(t, keys, "ship1")
	ship2Seed, ship2Pub := natstest.NkeySeed(t, keys, "ship2")
	senders := []string{"central"}
	auth := credentials.Authorization{Users: []credentials.User{
		{Name: "central", Nkey: centralPub},
		{Name: "ship1", Nkey: ship1Pub, Permissions: credentials.NodePermissions("ship1", senders)},
		{Name: "ship2", Nkey: ship2Pub, Permissions: credentials.NodePermissions("ship2", senders)},
	}}
	authFile := filepath.Join(keys, "authorization.json")
	b, _ := json.Marshal(auth)
	if err := os.WriteFile(authFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	listen := natstest.FreePort(t)
	centralCfg := f.config("central")
	centralCfg.BrokerAddress, centralCfg.BrokerListen = "", listen
	centralCfg.BrokerAuthorization, centralCfg.NkeySeedFile = authFile, centralSeed
	f.start(centralCfg)
	for name, seed := range map[string]string{"ship1": ship1Seed, "ship2": ship2Seed} {
		cfg := f.config(name)
		cfg.BrokerAddress, cfg.NkeySeedFile = "nats://"+listen, seed
		f.start(cfg)
	}
	c := f.client(centralCfg)
	ids := send(t, c, `[{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","one"]},
	  {"toNode":"ship2","method":"REQCliCommand","methodArgs":["sh","-c","echo two; exit 3"]}]`)
	recs := wait(t, c, ids, 30*time.Second)
	if recs[0].Status != status.Succeeded || recs[0].Output != "one\n" || recs[1].Status != status.Failed || recs[1].Output != "two\n" {
		t.Fatalf("commands under per-node permissions: %s", describe(recs))
	}

	// ship2's key, used by hand.
	nkeyOpt, err := nats.NkeyOptionFromSeed(ship2Seed)
	if err != nil {
		t.Fatal(err)
	}
	violations := make(chan string, 16)
	nc, err := nats.Connect("nats://"+listen, nkeyOpt, nats.CustomInboxPrefix(credentials.InboxPrefix("ship2")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err.Error() }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	short := func() context.Context { return natstest.Context(t, 2*time.Second) }
	expectViolation := func(what string) {
		t.Helper()
		select {
		case v := <-violations:
			if !strings.Contains(strings.ToLower(v), "permissions violation") {
				t.Errorf("%s: %s", what, v)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: the broker did not refuse it", what)
		}
	}
	if _, err := js.Publish(short(), "$KV."+stream.StatusBucket+"."+ids[0]+".ship1", []byte(`{"status":"failed"}`)); err == nil {
		t.Error("ship2 wrote ship1's status")
	}
	expectViolation("writing ship1's status")
	if _, err := js.Publish(short(), stream.MessageSubject("ship1"), []byte(`{}`)); err == nil {
		t.Error("ship2 published into ship1's queue")
	}
	expectViolation("publishing into ship1's queue")
	if err := nc.Publish("$JS.API.CONSUMER.MSG.NEXT."+stream.MessagesStream+".ship1", []byte(`{"batch":1}`)); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	expectViolation("pulling from ship1's queue")
	if err := js.DeleteStream(short(), stream.MessagesStream); err == nil {
		t.Error("ship2 deleted the message stream")
	}
	expectViolation("deleting a stream")

	// Still all there, and still working.
	recs = wait(t, c, send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","after"]}`), 30*time.Second)
	if recs[0].Status != status.Succeeded || recs[0].Output != "after\n" {
		t.Fatalf("after the refused attempts: %s", describe(recs))
	}
	if got := readStatus(t, c, ids[0]); got != status.Succeeded {
		t.Errorf("ship1's status is now %s", got)
	}
}

func readStatus(t *testing.T, c *client.Client, id string) status.Status {
	t.Helper()
	recs, err := c.Status(t.Context(), id)
	if err != nil || len(recs) == 0 {
		t.Fatalf("status %s: %v", id, err)
	}
	return recs[0].Status
}

// Nodes that trust keys run only messages signed by the key they trust for
// the sender: the operator's signed command runs and its signed reply is
// taken; unsigned, forged-sender and tampered messages are rejected, and
// the node goes on serving.
// signedFleet is central (with its broker) and ship1, signing with their
// nkeys and trusting each other's keys (not ship2's).
type signedFleet struct {
	*fleet
	central, ship1         *running
	centralSeed, ship2Seed string
	centralPub             string
	listen                 string
}

func newSignedFleet(t *testing.T) *signedFleet {
	f := newFleet(t)
	keys := t.TempDir()
	centralSeed, centralPub := natstest.NkeySeed(t, keys, "central")
	ship1Seed, ship1Pub := natstest.NkeySeed(t, keys, "ship1")
	ship2Seed, _ := natstest.NkeySeed(t, keys, "ship2")
	trusted := filepath.Join(keys, "trusted")
	if err := os.WriteFile(trusted, []byte("central "+centralPub+"\nship1 "+ship1Pub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The seed a node signs with is the one it authenticates with: the
	// broker is central's, letting both in.
	authFile := filepath.Join(keys, "authorization.json")
	b, _ := json.Marshal(credentials.Authorization{Users: []credentials.User{{Nkey: centralPub}, {Nkey: ship1Pub}}})
	if err := os.WriteFile(authFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	listen := natstest.FreePort(t)
	centralCfg := f.config("central")
	centralCfg.BrokerAddress, centralCfg.BrokerListen, centralCfg.BrokerAuthorization = "", listen, authFile
	centralCfg.NkeySeedFile, centralCfg.TrustedKeys = centralSeed, trusted
	central := f.start(centralCfg)
	ship1Cfg := f.config("ship1")
	ship1Cfg.BrokerAddress = "nats://" + listen
	ship1Cfg.NkeySeedFile, ship1Cfg.TrustedKeys = ship1Seed, trusted
	ship1 := f.start(ship1Cfg)
	return &signedFleet{fleet: f, central: central, ship1: ship1, centralSeed: centralSeed, ship2Seed: ship2Seed, centralPub: centralPub, listen: listen}
}

// waitErrorLog waits until central's error log of node has a line with
// every word given.
func (sf *signedFleet) waitErrorLog(t *testing.T, node string, words ...string) string {
	t.Helper()
	var found string
	natstest.Eventually(t, 30*time.Second, fmt.Sprintf("%q in central's error log of %s", words, node), func() bool {
		b, _ := os.ReadFile(filepath.Join(sf.central.cfg.DataFolder, "errorLog", node, "errors.log"))
		for _, line := range strings.Split(string(b), "\n") {
			all := true
			for _, w := range words {
				all = all && strings.Contains(line, w)
			}
			if all {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

// connectAsCentral is a raw connection with central's key: a sender's
// rights on the broker.
func (sf *signedFleet) connectAsCentral(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	nkeyOpt, err := nats.NkeyOptionFromSeed(sf.centralSeed)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://"+sf.listen, nkeyOpt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func TestSignedMessages(t *testing.T) {
	sf := newSignedFleet(t)
	centralCfg, ship1Cfg, ship1 := sf.central.cfg, sf.ship1.cfg, sf.ship1
	centralSeed, ship2Seed, centralPub := sf.centralSeed, sf.ship2Seed, sf.centralPub

	c := sf.client(centralCfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","signed"]}`)
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded || recs[0].Output != "signed\n" {
		t.Fatalf("a signed command: %s", describe(recs))
	}

	ship2Signer, err := signature.LoadSigner(ship2Seed)
	if err != nil {
		t.Fatal(err)
	}
	centralSigner, err := signature.LoadSigner(centralSeed)
	if err != nil {
		t.Fatal(err)
	}
	_, js := sf.connectAsCentral(t)
	bad := map[string]func(*message.Message){
		"unsigned":          func(*message.Message) {},
		"signed by ship2":   func(m *message.Message) { _ = ship2Signer.Sign(m) },
		"tampered after":    func(m *message.Message) { _ = centralSigner.Sign(m); m.MethodArgs = []string{"touch", "pwned"} },
		"signer swapped in": func(m *message.Message) { _ = ship2Signer.Sign(m); m.Signer = centralPub },
	}
	var badIDs []string
	i := 0
	for name, mutate := range bad {
		i++
		id := fmt.Sprintf("bad%d", i)
		badIDs = append(badIDs, id)
		m := &message.Message{ID: id, ToNode: "ship1", FromNode: "central", Method: "REQCliCommand",
			MethodArgs: []string{"touch", "ran-" + id}, SentAt: time.Now().UTC(), Deadline: time.Now().Add(time.Hour).UTC()}
		mutate(m)
		b, _ := json.Marshal(m)
		if _, err := js.Publish(t.Context(), stream.MessageSubject("ship1"), b, jetstream.WithMsgID(message.DeliveryID(id, "ship1"))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Refused and reported; and since nobody vouches for what they say,
	// they change no delivery's status.
	for _, id := range badIDs {
		sf.waitErrorLog(t, "ship1", `delivery "`+id+`.ship1"`, "bad signature")
		if recs, err := c.Status(t.Context(), id); err == nil {
			t.Errorf("%s has a status: %s", id, describe(recs))
		}
	}
	// A message central signed that this node cannot take is rejected, in
	// its status record, as before.
	unknown := &message.Message{ID: "signedbutunknown", ToNode: "ship1", FromNode: "central", Method: "REQNoSuchMethod",
		SentAt: time.Now().UTC(), Deadline: time.Now().Add(time.Hour).UTC()}
	_ = centralSigner.Sign(unknown)
	b, _ := json.Marshal(unknown)
	if _, err := js.Publish(t.Context(), stream.MessageSubject("ship1"), b); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, "the signed unknown method rejected", func() bool {
		recs, err := c.Status(t.Context(), unknown.ID)
		return err == nil && len(recs) == 1 && recs[0].Status == status.Rejected && recs[0].ErrorCode == "unknown_method"
	})
	for _, id := range badIDs {
		if _, err := os.Stat(filepath.Join(ship1Cfg.DataFolder, "ran-"+id)); err == nil {
			t.Errorf("%s ran", id)
		}
	}
	if !strings.Contains(ship1.logs.String(), "refused") {
		t.Error("ship1's log does not say it refused them")
	}
	ids = send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","still"]}`)
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("after the bad ones: %s", describe(recs))
	}
}

// A captured message published again is refused without running, however
// it comes: as a copy of a delivery that ended (the ledger knows its ID
// from another stream message), or so late that the ledger may have
// forgotten it. Central hears of each; the original's status stays.
func TestReplayedMessagesAreRefused(t *testing.T) {
	sf := newSignedFleet(t)
	nc, js := sf.connectAsCentral(t)
	capture, err := nc.SubscribeSync(stream.MessageSubject("ship1"))
	if err != nil {
		t.Fatal(err)
	}
	c := sf.client(sf.central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo ran >> runs"]}`)
	if recs := wait(t, c, ids, 30*time.Second); recs[0].Status != status.Succeeded {
		t.Fatalf("the original: %s", describe(recs))
	}
	captured, err := capture.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The copy gets another Nats-Msg-Id: the same one would be dropped by
	// the broker's duplicate window, which is no defence after it.
	if _, err := js.Publish(t.Context(), captured.Subject, captured.Data, jetstream.WithMsgID("replay-"+ids[0])); err != nil {
		t.Fatal(err)
	}

	// One far too old, signed by central: its ledger entry would be gone.
	signer, err := signature.LoadSigner(sf.centralSeed)
	if err != nil {
		t.Fatal(err)
	}
	old := &message.Message{ID: "ancient", ToNode: "ship1", FromNode: "central", Method: "REQCliCommand",
		MethodArgs: []string{"touch", "ancient-ran"}, MethodTimeout: 10, ACKTimeout: 10, SentAt: time.Now().Add(-72 * time.Hour).UTC(),
		Deadline: time.Now().Add(-71 * time.Hour).UTC()}
	if err := signer.Sign(old); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(old)
	if _, err := js.Publish(t.Context(), stream.MessageSubject("ship1"), b, jetstream.WithMsgID(message.DeliveryID("ancient", "ship1"))); err != nil {
		t.Fatal(err)
	}

	errorLog := filepath.Join(sf.central.cfg.DataFolder, "errorLog", "ship1", "errors.log")
	natstest.Eventually(t, 30*time.Second, "both refusals in central's error log", func() bool {
		b, _ := os.ReadFile(errorLog)
		return strings.Contains(string(b), "replayed: message "+ids[0]+" came again") &&
			strings.Contains(string(b), "replayed: message ancient arrived after")
	})
	if b, _ := os.ReadFile(filepath.Join(sf.ship1.cfg.DataFolder, "runs")); string(b) != "ran\n" {
		t.Errorf("the command ran %d times", strings.Count(string(b), "ran"))
	}
	if _, err := os.Stat(filepath.Join(sf.ship1.cfg.DataFolder, "ancient-ran")); err == nil {
		t.Error("the old message ran")
	}
	recs, err := c.Status(t.Context(), ids[0])
	if err != nil || len(recs) != 2 || recs[0].Status != status.Succeeded || recs[1].Status != status.Succeeded {
		t.Errorf("the original's delivery and reply after the replay: %v %s", err, describe(recs))
	}
	if recs, err := c.Status(t.Context(), "ancient"); err == nil && len(recs) > 0 {
		t.Errorf("the old message got a status: %s", describe(recs))
	}
	audit, _ := os.ReadFile(filepath.Join(sf.ship1.cfg.StateFolder(), "audit.jsonl"))
	if n := strings.Count(string(audit), `"event":"refused"`); n != 2 {
		t.Errorf("%d refusals audited on ship1, want 2", n)
	}
}

// A key set central signs makes nodes trust a key their trusted-keys file
// does not list, and revoke it again: REQKeys has them take it at once,
// and they keep it across restarts.
func TestKeySetTrustsAndRevokes(t *testing.T) {
	sf := newSignedFleet(t)
	_, js := sf.connectAsCentral(t)
	ship2, err := signature.LoadSigner(sf.ship2Seed)
	if err != nil {
		t.Fatal(err)
	}
	c := sf.client(sf.central.cfg)
	n := 0
	fromShip2 := func() string { // a command signed by ship2, straight into ship1's queue
		n++
		id := fmt.Sprintf("fromship2n%d", n)
		m := &message.Message{ID: id, ToNode: "ship1", FromNode: "ship2", Method: "REQCliCommand",
			MethodArgs: []string{"touch", id}, SentAt: time.Now().UTC(), Deadline: time.Now().Add(time.Hour).UTC()}
		if err := ship2.Sign(m); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(m)
		if _, err := js.Publish(t.Context(), stream.MessageSubject("ship1"), b, jetstream.WithMsgID(message.DeliveryID(id, "ship1"))); err != nil {
			t.Fatal(err)
		}
		// It ran (its status says so; its reply goes to ship2, which is not
		// running), or it was refused (central's error log says so: a
		// message whose signature does not hold changes no status).
		var got string
		errorLog := filepath.Join(sf.central.cfg.DataFolder, "errorLog", "ship1", "errors.log")
		natstest.Eventually(t, 30*time.Second, "the delivery of "+id+" ends", func() bool {
			recs, err := c.Status(t.Context(), id)
			for _, r := range recs {
				if err == nil && !r.Reply && r.Status.Terminal() {
					got = string(r.Status) + " " + r.Error
					return true
				}
			}
			b, _ := os.ReadFile(errorLog)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, `delivery "`+id+`.ship1"`) {
					got = "refused " + line
					return true
				}
			}
			return false
		})
		return got
	}
	takeKeys := func(wantVersion string) {
		ids := send(t, c, `{"toNodes":["ship1","central"],"method":"REQKeys"}`)
		for _, r := range wait(t, c, ids, 30*time.Second) {
			if !r.Reply && (r.Status != status.Succeeded || !strings.Contains(r.Output, wantVersion)) {
				t.Fatalf("REQKeys on %s: %s %q %s", r.Node, r.Status, r.Output, r.Error)
			}
		}
	}

	if got := fromShip2(); !strings.HasPrefix(got, "refused") || !strings.Contains(got, "not signed by a key this node trusts") {
		t.Fatalf("ship2 before the key set trusts it: %s", got)
	}
	if _, err := c.ChangeKeySet(t.Context(), func(ks *signature.KeySet) error { return ks.Trust("ship2", ship2.PublicKey()) }); err != nil {
		t.Fatal(err)
	}
	takeKeys("key set version 1")
	if got := fromShip2(); !strings.HasPrefix(got, "succeeded") {
		t.Fatalf("ship2 once the key set trusts it: %s", got)
	}
	if _, err := c.ChangeKeySet(t.Context(), func(ks *signature.KeySet) error { _, err := ks.Revoke("ship2"); return err }); err != nil {
		t.Fatal(err)
	}
	takeKeys("key set version 2")
	if got := fromShip2(); !strings.HasPrefix(got, "refused") || !strings.Contains(got, "revoked") {
		t.Fatalf("ship2 after its key was revoked: %s", got)
	}
	if _, err := os.Stat(filepath.Join(sf.ship1.cfg.DataFolder, "fromship2n3")); err == nil {
		t.Error("the command signed with the revoked key ran")
	}
	// A key set not signed by central is refused, whoever sends REQKeys.
	forged := &signature.KeySet{Version: 99}
	_ = forged.Trust("ship2", ship2.PublicKey())
	_ = ship2.SignKeySet(forged, time.Now())
	b, _ := json.Marshal(forged)
	kv, err := js.KeyValue(t.Context(), stream.KeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), stream.KeySetKey, b); err != nil {
		t.Fatal(err)
	}
	ids := send(t, c, `{"toNode":"ship1","method":"REQKeys"}`)
	if r := wait(t, c, ids, 30*time.Second)[0]; r.Status != status.Failed || !strings.Contains(r.Error, "not by the central node's trusted key") {
		t.Errorf("a forged key set: %s %s", r.Status, r.Error)
	}
	if got := fromShip2(); !strings.HasPrefix(got, "refused") || !strings.Contains(got, "revoked") {
		t.Fatalf("ship2 after a forged key set: %s", got)
	}
	kept, err := os.ReadFile(filepath.Join(sf.ship1.cfg.StateFolder(), "keyset.json"))
	if err != nil || !strings.Contains(string(kept), `"version":2`) {
		t.Errorf("ship1 keeps key set %s (%v), want version 2", kept, err)
	}
}

// A node with a policy runs what a rule allows and refuses the rest as
// denied, without running it; replies and events are not requests.
func TestNodePolicy(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	cfg := f.config("ship1")
	cfg.PolicyFile = filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(cfg.PolicyFile, []byte(`{"rules":[
	  {"from":["central"],"methods":["REQCliCommand"],"args":["echo allowed **"],"effect":"allow"},
	  {"from":["central"],"methods":["REQPing"],"effect":"allow"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f.start(cfg)
	c := f.client(central.cfg)
	ids := send(t, c, `[{"toNode":"ship1","method":"REQCliCommand","methodArgs":["echo","allowed","here"]},
	  {"toNode":"ship1","method":"REQCliCommand","methodArgs":["touch","denied"]},
	  {"toNode":"ship1","method":"REQPing"},
	  {"toNode":"ship1","method":"REQToConsole","data":"aGk="}]`)
	recs := wait(t, c, ids, 30*time.Second)
	want := []struct {
		st   status.Status
		code string
	}{{status.Succeeded, ""}, {status.Rejected, "denied"}, {status.Succeeded, ""}, {status.Rejected, "denied"}}
	for i, r := range recs {
		if r.Status != want[i].st || r.ErrorCode != want[i].code {
			t.Errorf("message %d: %s %s (%s), want %s %s", i, r.Status, r.ErrorCode, r.Error, want[i].st, want[i].code)
		}
	}
	if recs[0].Output != "allowed here\n" {
		t.Errorf("allowed command's output %q", recs[0].Output)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataFolder, "denied")); err == nil {
		t.Error("the denied command ran")
	}
	// Every decision is in ship1's audit log, with the rule that made it.
	decisions := map[string]string{}
	natstest.Eventually(t, 5*time.Second, "audited decisions", func() bool {
		b, _ := os.ReadFile(filepath.Join(cfg.StateFolder(), "audit.jsonl"))
		for _, line := range strings.Split(string(b), "\n") {
			var rec struct {
				Event, DeliveryID, Policy string
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Event == "processed" {
				decisions[rec.DeliveryID] = rec.Policy
			}
		}
		return len(decisions) >= len(ids)
	})
	for i, want := range []string{"allowed by rule 1 ", "denied by no rule matches", "allowed by rule 2 ", "denied by no rule matches"} {
		if got := decisions[ids[i]+".ship1"]; !strings.HasPrefix(got, want) {
			t.Errorf("message %d audited with policy %q, want %q…", i, got, want)
		}
	}
}
