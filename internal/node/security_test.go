package node_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
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
