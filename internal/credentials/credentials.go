// Package credentials turns a node's security settings into what its
// broker connection and its embedded broker need: the nkey or creds file
// it proves itself with, the CA it trusts, its client certificate, and the
// embedded broker's TLS and authorization.
//
// Files that hold secrets (nkey seeds, creds files, private keys) must be
// readable by their owner only (mode 0600 or stricter), or they are
// refused: a seed that other users of the machine can read is a seed they
// can sign with. Errors name the file and the setting, never a secret.
package credentials

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/stewardfleet/steward/internal/config"
)

// ErrInsecureFile: a secret file other users can read or write.
var ErrInsecureFile = errors.New("readable or writable by others than its owner (chmod 600 it)")

// ClientOptions are the connection options cfg's security settings ask for:
// an nkey seed file or a creds file (not both), a CA to trust, and a client
// certificate for mutual TLS.
func ClientOptions(cfg config.Config) ([]nats.Option, error) {
	// Replies come to an inbox of the node's own, which per-node
	// permissions let it alone subscribe to.
	opts := []nats.Option{nats.CustomInboxPrefix(InboxPrefix(cfg.NodeName))}
	if cfg.NkeySeedFile != "" && cfg.CredsFile != "" {
		return nil, errors.New("nkey-seed-file and creds-file are both set: give one")
	}
	if cfg.NkeySeedFile != "" {
		if err := CheckSecretFile(cfg.NkeySeedFile); err != nil {
			return nil, fmt.Errorf("nkey-seed-file: %w", err)
		}
		opt, err := nats.NkeyOptionFromSeed(cfg.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey-seed-file %s: not an nkey seed: %w", cfg.NkeySeedFile, err) // nkeys errors name no key material
		}
		opts = append(opts, opt)
	}
	if cfg.CredsFile != "" {
		if err := CheckSecretFile(cfg.CredsFile); err != nil {
			return nil, fmt.Errorf("creds-file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.RootCAPath != "" {
		if _, err := readCAs(cfg.RootCAPath); err != nil {
			return nil, fmt.Errorf("root-ca-path: %w", err)
		}
		opts = append(opts, nats.RootCAs(cfg.RootCAPath))
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("tls-cert and tls-key go together: give both or neither")
	}
	if cfg.TLSCert != "" {
		if err := CheckSecretFile(cfg.TLSKey); err != nil {
			return nil, fmt.Errorf("tls-key: %w", err)
		}
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	return opts, nil
}

// CheckSecretFile reports whether file exists, is a regular file and is
// readable and writable by its owner only.
func CheckSecretFile(file string) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", file)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s (mode %04o): %w", file, st.Mode().Perm(), ErrInsecureFile)
	}
	return nil
}

// readCAs reads a PEM file of CA certificates.
func readCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// ServerTLS is the embedded broker's TLS configuration: its certificate and
// key, and, when clientCA is set, client certificates required and checked
// against it (mutual TLS). nil when cert is empty (no TLS).
func ServerTLS(cert, key, clientCA string) (*tls.Config, error) {
	if cert == "" && key == "" && clientCA != "" {
		return nil, errors.New("broker-tls-client-ca needs broker-tls-cert and broker-tls-key")
	}
	c, err := serverCertificate("broker-tls", cert, key)
	if c == nil || err != nil {
		return c, err
	}
	if clientCA != "" {
		pool, err := readCAs(clientCA)
		if err != nil {
			return nil, fmt.Errorf("broker-tls-client-ca: %w", err)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// HTTPServerTLS is the TLS configuration of the HTTP API and the console
// (http-tls-cert and http-tls-key); nil when both are empty (plain HTTP).
func HTTPServerTLS(cert, key string) (*tls.Config, error) {
	return serverCertificate("http-tls", cert, key)
}

// serverCertificate loads the certificate and key of the settings
// <setting>-cert and <setting>-key (the key's file mode checked); nil when
// both are empty.
func serverCertificate(setting, cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, fmt.Errorf("%s-cert and %s-key go together: give both or neither", setting, setting)
	}
	if err := CheckSecretFile(key); err != nil {
		return nil, fmt.Errorf("%s-key: %w", setting, err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%s-cert/%s-key: %w", setting, setting, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// IsLoopback reports whether host (of a listen address) only accepts
// connections from this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Authorization is the file of users the embedded broker lets in
// (broker-authorization), in JSON:
//
//	{"users": [
//	  {"name": "ship1", "nkey": "UA…", "permissions": {
//	    "publish":   {"allow": ["…"], "deny": ["…"]},
//	    "subscribe": {"allow": ["…"]}}}
//	]}
//
// A user without permissions may publish and subscribe to anything.
type Authorization struct {
	Users []User `json:"users"`
}

// User is one nkey the broker lets in.
type User struct {
	// Name says who it is (a node's name); the broker does not read it.
	Name        string              `json:"name,omitempty"`
	Nkey        string              `json:"nkey"`
	Permissions *server.Permissions `json:"permissions,omitempty"`
}

// LoadAuthorization reads an authorization file and returns its users as
// the broker takes them.
func LoadAuthorization(file string) ([]*server.NkeyUser, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("broker-authorization: %w", err)
	}
	var a Authorization
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("broker-authorization %s: %w", file, err)
	}
	if len(a.Users) == 0 {
		return nil, fmt.Errorf("broker-authorization %s: no users: nobody could connect", file)
	}
	seen := map[string]bool{}
	users := make([]*server.NkeyUser, 0, len(a.Users))
	for i, u := range a.Users {
		if !nkeys.IsValidPublicUserKey(u.Nkey) {
			return nil, fmt.Errorf("broker-authorization %s: user %d (%s): %q is not an nkey user public key (U…)", file, i+1, u.Name, u.Nkey)
		}
		if seen[u.Nkey] {
			return nil, fmt.Errorf("broker-authorization %s: user %d (%s): nkey listed twice", file, i+1, u.Name)
		}
		seen[u.Nkey] = true
		users = append(users, &server.NkeyUser{Nkey: u.Nkey, Permissions: u.Permissions})
	}
	return users, nil
}

// NATSServerConf writes the users for a stock nats-server's configuration:
// a users list to include inside its authorization block
// (authorization { include "authorization.conf" }). The broker has no
// field for a user's name, so each name becomes a comment above its user.
func (a *Authorization) NATSServerConf() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# nkey users of a steward fleet for nats-server; written by `steward broker authorization --format nats-server`.\n")
	b.WriteString("# Include inside the server's authorization block: authorization { include \"authorization.conf\" }\n")
	b.WriteString("users = [\n")
	for _, u := range a.Users {
		nameless := u
		nameless.Name = ""
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(nameless); err != nil {
			return nil, fmt.Errorf("user %s: %w", u.Name, err)
		}
		fmt.Fprintf(&b, "  # %s\n  %s,\n", u.Name, bytes.TrimSpace(line.Bytes()))
	}
	b.WriteString("]\n")
	return b.Bytes(), nil
}
