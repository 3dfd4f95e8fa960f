package credentials_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/stewardfleet/steward/internal/config"
	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/natstest"
)

func TestClientOptions(t *testing.T) {
	dir := t.TempDir()
	seed, _ := natstest.NkeySeed(t, dir, "ship1")
	tlsFiles := natstest.NewTLSFiles(t, dir)
	open := filepath.Join(dir, "open.nk")
	b, _ := os.ReadFile(seed)
	if err := os.WriteFile(open, b, 0o644); err != nil {
		t.Fatal(err)
	}
	notSeed := filepath.Join(dir, "not.nk")
	if err := os.WriteFile(notSeed, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(*config.Config)
		want string // "" for success
	}{
		{"nothing", func(*config.Config) {}, ""},
		{"seed", func(c *config.Config) { c.NkeySeedFile = seed }, ""},
		{"seed and CA and client certificate", func(c *config.Config) {
			c.NkeySeedFile, c.RootCAPath, c.TLSCert, c.TLSKey = seed, tlsFiles.CA, tlsFiles.ClientCert, tlsFiles.ClientKey
		}, ""},
		{"seed others can read", func(c *config.Config) { c.NkeySeedFile = open }, "chmod 600"},
		{"missing seed", func(c *config.Config) { c.NkeySeedFile = filepath.Join(dir, "none") }, "no such file"},
		{"not a seed", func(c *config.Config) { c.NkeySeedFile = notSeed }, "not an nkey seed"},
		{"seed and creds", func(c *config.Config) { c.NkeySeedFile, c.CredsFile = seed, seed }, "both set"},
		{"CA that is no certificate", func(c *config.Config) { c.RootCAPath = notSeed }, "no PEM certificate"},
		{"certificate without key", func(c *config.Config) { c.TLSCert = tlsFiles.ClientCert }, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			tc.set(&cfg)
			_, err := credentials.ClientOptions(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ClientOptions: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ClientOptions: %v, want an error saying %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), string(b)):
				t.Fatalf("the error shows the seed: %v", err)
			}
		})
	}
}

func TestLoadAuthorization(t *testing.T) {
	dir := t.TempDir()
	_, pub := natstest.NkeySeed(t, dir, "ship1")
	for _, tc := range []struct {
		name, json, want string
	}{
		{"one user", `{"users":[{"name":"ship1","nkey":"` + pub + `"}]}`, ""},
		{"with permissions", `{"users":[{"nkey":"` + pub + `","permissions":{"publish":{"allow":["a.>"]},"subscribe":{"deny":["b"]}}}]}`, ""},
		{"no users", `{"users":[]}`, "no users"},
		{"not a user key", `{"users":[{"nkey":"SUAB"}]}`, "not an nkey user public key"},
		{"twice", `{"users":[{"nkey":"` + pub + `"},{"nkey":"` + pub + `"}]}`, "listed twice"},
		{"unknown field", `{"users":[{"nkey":"` + pub + `","admin":true}]}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "auth.json")
			if err := os.WriteFile(file, []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			users, err := credentials.LoadAuthorization(file)
			switch {
			case tc.want == "" && (err != nil || len(users) != 1 || users[0].Nkey != pub):
				t.Fatalf("LoadAuthorization: %v %v", users, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("LoadAuthorization: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestServerTLS(t *testing.T) {
	f := natstest.NewTLSFiles(t, t.TempDir())
	if c, err := credentials.ServerTLS("", "", ""); c != nil || err != nil {
		t.Errorf("no TLS: %v %v", c, err)
	}
	if c, err := credentials.ServerTLS(f.ServerCert, f.ServerKey, f.CA); err != nil || c.ClientCAs == nil {
		t.Errorf("mutual TLS: %v %v", c, err)
	}
	if _, err := credentials.ServerTLS(f.ServerCert, "", ""); err == nil {
		t.Error("certificate without key accepted")
	}
	if _, err := credentials.ServerTLS("", "", f.CA); err == nil {
		t.Error("client CA without a certificate accepted")
	}
}

func TestHTTPServerTLS(t *testing.T) {
	f := natstest.NewTLSFiles(t, t.TempDir())
	if c, err := credentials.HTTPServerTLS("", ""); c != nil || err != nil {
		t.Errorf("no TLS: %v %v", c, err)
	}
	if c, err := credentials.HTTPServerTLS(f.ServerCert, f.ServerKey); err != nil || len(c.Certificates) != 1 || c.ClientCAs != nil {
		t.Errorf("HTTPS: %v %v", c, err)
	}
	if _, err := credentials.HTTPServerTLS("", f.ServerKey); err == nil || !strings.Contains(err.Error(), "http-tls-cert") {
		t.Errorf("key without certificate: %v", err)
	}
	if err := os.Chmod(f.ServerKey, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := credentials.HTTPServerTLS(f.ServerCert, f.ServerKey); err == nil || !strings.Contains(err.Error(), "http-tls-key") {
		t.Errorf("a key others can read: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "127.9.9.9": true, "::1": true, "localhost": true, "0.0.0.0": false, "": false, "10.0.0.1": false, "example.com": false} {
		if got := credentials.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}

// No error shows a secret: a seed, creds file or TLS key that is damaged
// (one character changed) or in the wrong place is named by its path only,
// whether the options refuse it or the connection does.
func TestErrorsNeverShowSecrets(t *testing.T) {
	dir := t.TempDir()
	seedFile, _ := natstest.NkeySeed(t, dir, "ship1")
	seed, _ := os.ReadFile(seedFile)
	secret := strings.TrimSpace(string(seed))
	damaged := secret[:len(secret)-3] + "AAA"
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tlsFiles := natstest.NewTLSFiles(t, dir)
	srv := natstest.Start(t)
	for name, set := range map[string]func(*config.Config){
		"damaged seed": func(c *config.Config) { c.NkeySeedFile = write("damaged.nk", damaged+"\n") },
		"seed as creds": func(c *config.Config) {
			c.CredsFile = write("seed.creds", "-----BEGIN NATS USER JWT-----\n"+damaged+"\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n"+damaged+"\n------END USER NKEY SEED------\n")
		},
		"seed as TLS key": func(c *config.Config) {
			c.TLSCert, c.TLSKey = tlsFiles.ClientCert, write("key.pem", "-----BEGIN EC PRIVATE KEY-----\n"+damaged+"\n-----END EC PRIVATE KEY-----\n")
		},
	} {
		cfg := config.Default()
		cfg.NodeName = "ship1"
		set(&cfg)
		opts, err := credentials.ClientOptions(cfg)
		if err == nil {
			var nc *nats.Conn
			nc, err = nats.Connect(srv.URL(), opts...)
			if err == nil {
				nc.Close()
				t.Errorf("%s: connected", name)
				continue
			}
		}
		t.Logf("%s: %v", name, err)
		if strings.Contains(err.Error(), "%!") {
			t.Errorf("%s: a badly formatted error: %v", name, err)
		}
		for _, s := range []string{damaged, damaged[4:20], secret[4:20]} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error shows the secret: %v", name, err)
			}
		}
	}
}
