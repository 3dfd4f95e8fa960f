package redteam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/natstest"
)

// fleet is central (with its embedded broker, TLS and the generated
// authorization), ship1 and ship2, each a steward process in its own
// folder, set up with the CLI as an operator would.
type fleet struct {
	*fleettest.Fleet
	t       *testing.T
	keys    string            // seed files, <node>.nk
	pub     map[string]string // public keys, as steward keys new printed them
	tls     natstest.TLSFiles
	markers string // commands an attacker slips in would create files here
}

// The ship policies allow what the good traffic needs and nothing else;
// central runs only what central itself sends.
const (
	shipPolicy = `{"rules":[
  {"from":["central"],"methods":["REQCliCommand"],"args":["echo **"],"effect":"allow"},
  {"from":["central"],"methods":["REQToFile","REQToFileAppend"],"effect":"allow"}]}`
	centralPolicy = `{"rules":[{"from":["central"],"methods":["*"],"effect":"allow"}]}`
)

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{t: t, pub: map[string]string{}}
	f.Fleet = fleettest.New(t, fleettest.Options{Flags: f.flags, CommandTimeout: 90 * time.Second})
	root := f.Root()
	f.keys, f.markers = filepath.Join(root, "keys"), filepath.Join(root, "markers")
	for _, d := range []string{f.markers, filepath.Join(root, "tls")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.tls = natstest.NewTLSFiles(t, filepath.Join(root, "tls"))

	// relay is a name operators may send as: every right on the broker,
	// and a key that no node trusts (the broker insider of the attacks).
	out := f.cli(root, "keys", "new", "central", "ship1", "ship2", "relay", "--dir", f.keys)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			t.Fatalf("steward keys new printed %q", line)
		}
		f.pub[fields[0]] = fields[1]
	}
	for _, n := range []string{"central", "ship1", "ship2", "relay"} {
		st, err := os.Stat(filepath.Join(f.keys, n+".nk"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("seed of %s: %v %v, want mode 0600", n, st.Mode(), err)
		}
	}
	f.cli(root, "broker", "authorization", "--dir", f.keys, "--senders", "central,relay", "-o", f.file("authorization.json"))
	f.write("central.trusted", "central "+f.pub["central"]+"\nship1 "+f.pub["ship1"]+"\nship2 "+f.pub["ship2"]+"\n")
	f.write("ship.trusted", "central "+f.pub["central"]+"\n")
	f.write("central.policy", centralPolicy)
	f.write("ship.policy", shipPolicy)
	for _, n := range []string{"central", "ship1", "ship2"} {
		if out := f.cli(root, "policy", "check", "--policy-file", f.policyOf(n), "--from", "ship2", "--method", "REQCliCommand", "--", "touch", "x"); !strings.HasPrefix(out, "deny") {
			t.Fatalf("%s's policy lets ship2 run touch: %s", n, out)
		}
	}
	return f
}

func (f *fleet) file(name string) string { return filepath.Join(f.Root(), name) }

func (f *fleet) write(name, content string) {
	f.t.Helper()
	if err := os.WriteFile(f.file(name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) policyOf(node string) string {
	if node == "central" {
		return f.file("central.policy")
	}
	return f.file("ship.policy")
}

func (f *fleet) seed(node string) string { return filepath.Join(f.keys, node+".nk") }

func (f *fleet) data(node string) string { return filepath.Join(f.Dir(node), "data") }

func (f *fleet) url() string { return "tls://" + f.BrokerAddr() }

// cli runs a steward command in dir and returns its standard output; it
// fails the test when the command fails (policy check's deny excepted).
func (f *fleet) cli(dir string, args ...string) string {
	f.t.Helper()
	out, errOut, code := f.StewardIn(dir, nil, args...)
	if code != 0 && !(len(args) > 1 && args[0] == "policy" && code == 1) {
		f.t.Fatalf("steward %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// flags are the flags of `steward node run` for node, secured as the
// operator's guide says.
func (f *fleet) flags(_ *fleettest.Fleet, node string) []string {
	args := []string{"--nkey-seed-file", f.seed(node), "--root-ca-path", f.tls.CA, "--policy-file", f.policyOf(node)}
	if node == "central" {
		return append(args, "--broker-listen", f.BrokerAddr(), "--broker-authorization", f.file("authorization.json"),
			"--broker-tls-cert", f.tls.ServerCert, "--broker-tls-key", f.tls.ServerKey,
			"--trusted-keys", f.file("central.trusted"))
	}
	return append(args, "--broker-address", f.url(), "--trusted-keys", f.file("ship.trusted"))
}
