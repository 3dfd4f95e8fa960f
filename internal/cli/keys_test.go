package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stewardfleet/steward/internal/credentials"
)

// keys new, keys public and broker authorization make a fleet's keys and
// the file that lets them in; the file loads as the broker takes it.
func TestKeysAndAuthorization(t *testing.T) {
	clearEnv(t)
	e := newTestEnv(t)
	dir := filepath.Join(t.TempDir(), "keys")
	if err := e.run(t, "keys", "new", "central", "ship1", "--dir", dir); err != nil {
		t.Fatalf("keys new: %v (%s)", err, e.stderr)
	}
	made := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(e.stdout.String()), "\n") {
		name, pub, _ := strings.Cut(line, " ")
		made[name] = pub
	}
	for _, name := range []string{"central", "ship1"} {
		file := filepath.Join(dir, name+".nk")
		st, err := os.Stat(file)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", file, err, st.Mode())
		}
		if !strings.HasPrefix(made[name], "U") {
			t.Errorf("%s: public key %q", name, made[name])
		}
	}
	if err := e.run(t, "keys", "new", "ship1", "--dir", dir); err == nil {
		t.Error("keys new overwrote an existing seed file")
	}
	if err := e.run(t, "keys", "new", "../evil", "--dir", dir); err == nil {
		t.Error("keys new took a path as a node name")
	}
	if err := e.run(t, "keys", "public", filepath.Join(dir, "ship1.nk")); err != nil || !strings.Contains(e.stdout.String(), made["ship1"]) {
		t.Errorf("keys public: %v %q", err, e.stdout)
	}

	out := filepath.Join(t.TempDir(), "authorization.json")
	if err := e.run(t, "broker", "authorization", "--dir", dir, "-o", out); err != nil {
		t.Fatalf("broker authorization: %v (%s)", err, e.stderr)
	}
	users, err := credentials.LoadAuthorization(out)
	if err != nil || len(users) != 2 {
		t.Fatalf("load: %v %v", users, err)
	}
	b, _ := os.ReadFile(out)
	var auth credentials.Authorization
	if err := json.Unmarshal(b, &auth); err != nil {
		t.Fatal(err)
	}
	for _, u := range auth.Users {
		if made[u.Name] != u.Nkey {
			t.Errorf("user %s has key %s, want %s", u.Name, u.Nkey, made[u.Name])
		}
	}

	// The same users for a stock nats-server: its own configuration parser
	// takes them, with ship1's permissions and no name field.
	natsOut := filepath.Join(filepath.Dir(out), "authorization.conf")
	if err := e.run(t, "broker", "authorization", "--dir", dir, "--format", "nats-server", "-o", natsOut); err != nil {
		t.Fatalf("broker authorization --format nats-server: %v (%s)", err, e.stderr)
	}
	serverConf := filepath.Join(filepath.Dir(out), "server.conf")
	if err := os.WriteFile(serverConf, []byte("authorization { include \"authorization.conf\" }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(serverConf)
	if err != nil {
		t.Fatalf("nats-server cannot read the file: %v", err)
	}
	if len(opts.Nkeys) != 2 {
		t.Fatalf("nats-server reads %d users, want 2", len(opts.Nkeys))
	}
	for _, u := range opts.Nkeys {
		restricted := u.Permissions != nil && u.Permissions.Publish != nil
		if want := u.Nkey == made["ship1"]; restricted != want {
			t.Errorf("user %s: restricted %v, want %v", u.Nkey, restricted, want)
		}
	}
	if err := e.run(t, "broker", "authorization", "--dir", dir, "--format", "yaml"); err == nil {
		t.Error("an unknown --format was taken")
	}

	if err := os.Chmod(filepath.Join(dir, "ship1.nk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.run(t, "broker", "authorization", "--dir", dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable seed was listed: %v", err)
	}
}
