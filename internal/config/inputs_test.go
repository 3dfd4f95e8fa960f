package config_test

import (
	"errors"
	"testing"

	"github.com/stewardfleet/steward/internal/config"
)

func TestInputSettings(t *testing.T) {
	cases := []struct {
		name string
		set  func(*config.Config)
		ok   bool
	}{
		{"none", func(*config.Config) {}, true},
		{"tcp on loopback", func(c *config.Config) { c.TCPListener = "127.0.0.1:8090" }, true},
		{"tcp beyond loopback with networks", func(c *config.Config) {
			c.TCPListener, c.TCPListenerRemote = "0.0.0.0:8090", "10.0.0.0/8, 192.168.1.5,::1"
		}, true},
		{"tcp without port", func(c *config.Config) { c.TCPListener = "127.0.0.1" }, false},
		{"bad network", func(c *config.Config) { c.TCPListenerRemote = "10.0.0.0/33" }, false},
		{"http api", func(c *config.Config) { c.HTTPAPI = "127.0.0.1:8091" }, true},
		{"http api without port", func(c *config.Config) { c.HTTPAPI = "localhost" }, false},
		{"data folder", func(c *config.Config) { c.HTTPAPI, c.HTTPDataFolder = "127.0.0.1:8091", "." }, true},
		{"data subfolder", func(c *config.Config) { c.HTTPAPI, c.HTTPDataFolder = "127.0.0.1:8091", "reports/./daily" }, true},
		{"data folder without the api", func(c *config.Config) { c.HTTPDataFolder = "." }, false},
		{"state folder", func(c *config.Config) { c.HTTPAPI, c.HTTPDataFolder = "127.0.0.1:8091", ".steward/ledger" }, false},
		{"state folder in other case", func(c *config.Config) { c.HTTPAPI, c.HTTPDataFolder = "127.0.0.1:8091", ".STEWARD" }, false},
		{"outside", func(c *config.Config) { c.HTTPAPI, c.HTTPDataFolder = "127.0.0.1:8091", "a/../../b" }, false},
		{"absolute", func(c *config.Config) { c.HTTPAPI, c.HTTPDataFolder = "127.0.0.1:8091", "/etc" }, false},
		{"https api", func(c *config.Config) { c.HTTPAPI, c.HTTPTLSCert, c.HTTPTLSKey = "127.0.0.1:8091", "c.pem", "k.pem" }, true},
		{"https console", func(c *config.Config) { c.Console, c.HTTPTLSCert, c.HTTPTLSKey = "127.0.0.1:8090", "c.pem", "k.pem" }, true},
		{"https certificate without key", func(c *config.Config) { c.HTTPAPI, c.HTTPTLSCert = "127.0.0.1:8091", "c.pem" }, false},
		{"https key without certificate", func(c *config.Config) { c.HTTPAPI, c.HTTPTLSKey = "127.0.0.1:8091", "k.pem" }, false},
		{"https with nothing to serve", func(c *config.Config) { c.HTTPTLSCert, c.HTTPTLSKey = "c.pem", "k.pem" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.set(&c)
			err := c.Validate()
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, config.ErrInvalid) {
				t.Errorf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestParseNetworks(t *testing.T) {
	got, err := config.ParseNetworks(" 10.1.2.3/8 ,192.168.1.5,, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.5/32", "fd00::/8"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("network %d: %s, want %s", i, got[i], want[i])
		}
	}
}
