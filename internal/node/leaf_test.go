package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/netfault"
	"github.com/stewardfleet/steward/internal/status"
)

// startConfigured starts a nats-server from a configuration file's text,
// as a stock nats-server would read it, shut down by t.Cleanup.
func startConfigured(t *testing.T, dir, name, conf string) *server.Server {
	t.Helper()
	file := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatalf("%s not ready", name)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// TestLeafSite: a ship site behind a leaf node with a JetStream domain of
// its own. ship3 is a node of the hub's fleet through the leaf node
// (--broker-domain hub, its permissions generated for that domain) and a
// node of the site's own fleet (central site1, JetStream on the leaf).
// With the site's uplink cut, the site's fleet keeps working; what the hub
// sent meanwhile waits in the hub, runs once after the uplink is back, and
// its result reaches the hub.
func TestLeafSite(t *testing.T) {
	f := newFleet(t)
	dir := t.TempDir()
	keys := t.TempDir()

	hubClient, hubLeaf := natstest.FreePort(t), natstest.FreePort(t)
	startConfigured(t, dir, "hub", fmt.Sprintf(`
server_name: hub
listen: %q
jetstream { store_dir: %q, domain: hub }
leafnodes { listen: %q, authorization { user: site1, password: s3cret } }
`, hubClient, filepath.Join(dir, "hub-js"), hubLeaf))

	// The site's uplink goes through a proxy the test can cut.
	uplink, err := netfault.Start(hubLeaf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uplink.Close() })

	hubShip3Seed, hubShip3Pub := natstest.NkeySeed(t, keys, "hub-ship3")
	site1Seed, site1Pub := natstest.NkeySeed(t, keys, "site1")
	siteShip3Seed, siteShip3Pub := natstest.NkeySeed(t, keys, "site-ship3")
	hubUsers := credentials.Authorization{Users: []credentials.User{{Name: "ship3", Nkey: hubShip3Pub,
		Permissions: credentials.InDomain(credentials.NodePermissions("ship3", []string{"central"}), "hub")}}}
	conf, err := hubUsers.NATSServerConf()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hub-users.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	siteListen := natstest.FreePort(t)
	startConfigured(t, dir, "leaf", fmt.Sprintf(`
server_name: site1
listen: %q
jetstream { store_dir: %q, domain: site1 }
accounts {
  HUB: { include "hub-users.conf" }
  SITE: { jetstream: enabled, users: [ {nkey: %s}, {nkey: %s} ] }
}
leafnodes { reconnect: "1s", remotes: [ { url: "nats-leaf://site1:s3cret@%s", account: HUB } ] }
`, siteListen, filepath.Join(dir, "leaf-js"), site1Pub, siteShip3Pub, uplink.Addr()))

	// The hub's fleet: central on the hub, ship3 through the leaf node.
	centralCfg := f.config("central")
	centralCfg.BrokerAddress = "nats://" + hubClient
	f.start(centralCfg)
	hubShip3 := f.config("ship3")
	hubShip3.BrokerAddress, hubShip3.BrokerDomain, hubShip3.NkeySeedFile = "nats://"+siteListen, "hub", hubShip3Seed
	f.start(hubShip3)

	// The site's fleet: its own central, site1, and ship3 again, under
	// another key; all on the leaf node's JetStream.
	site1Cfg := f.config("site1")
	site1Cfg.CentralNodeName, site1Cfg.BrokerAddress, site1Cfg.NkeySeedFile = "site1", "nats://"+siteListen, site1Seed
	f.start(site1Cfg)
	siteShip3 := f.config("ship3")
	siteShip3.CentralNodeName, siteShip3.BrokerAddress, siteShip3.NkeySeedFile = "site1", "nats://"+siteListen, siteShip3Seed
	if _, err := f.launchAs("ship3@site1", siteShip3, nil); err != nil {
		t.Fatalf("ship3 of the site's fleet: %v", err)
	}

	hub, site := f.client(centralCfg), f.client(site1Cfg)
	runs := filepath.Join(t.TempDir(), "runs")
	command := func(label string) string {
		return fmt.Sprintf(`{"toNode":"ship3","method":"REQCliCommand","methodArgs":["sh","-c","echo %s >> %s; echo %s"],"methodTimeout":10}`,
			label, runs, label)
	}
	recs := wait(t, hub, send(t, hub, command("before")), 60*time.Second)
	if recs[0].Status != status.Succeeded || recs[0].Output != "before\n" {
		t.Fatalf("hub → ship3 through the leaf node: %s", describe(recs))
	}

	uplink.Cut(netfault.Reset)
	during := send(t, hub, command("hub-during-cut"))
	recs = wait(t, site, send(t, site, command("site-during-cut")), 60*time.Second)
	if recs[0].Status != status.Succeeded || recs[0].Output != "site-during-cut\n" {
		t.Fatalf("the site's fleet with its uplink cut: %s", describe(recs))
	}
	if got := readStatus(t, hub, during[0]); got != status.Pending {
		t.Fatalf("the hub's message to ship3 with the uplink cut is %s, want pending", got)
	}

	uplink.Restore()
	recs = wait(t, hub, during, 90*time.Second)
	if recs[0].Status != status.Succeeded || recs[0].Output != "hub-during-cut\n" {
		t.Fatalf("after the uplink came back: %s", describe(recs))
	}
	if got, want := readFile(t, runs), "before\nsite-during-cut\nhub-during-cut\n"; got != want {
		t.Fatalf("ship3 ran %q, want each once: %q", got, want)
	}
	if strings.Count(readFile(t, runs), "hub-during-cut") != 1 {
		t.Fatal("the hub's message ran twice")
	}
}
