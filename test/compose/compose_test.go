// Package compose_test runs the compose fleet (docker-compose.yml at the
// repository's root) as a project of its own and breaks it on purpose:
// a ship cut off its network mid-command, the leaf site's uplink cut, one
// of the three NATS servers stopped under load. It checks every result
// arrives, once, and finds a message's trace in Jaeger. It removes every
// container, network and volume it made.
//
// It runs only with STEWARD_COMPOSE=1 (make compose-test, which first runs
// deploy/compose/setup.sh); COMPOSE names the compose command
// (docker-compose or "docker compose").
package compose_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
)

// fleet is one compose project.
type fleet struct {
	t       *testing.T
	root    string   // the repository
	compose []string // the compose command
	project string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	if os.Getenv("STEWARD_COMPOSE") != "1" {
		t.Skip("STEWARD_COMPOSE is not 1 (make compose-test runs this)")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "compose", "run", "hub-trusted-keys")); err != nil {
		t.Fatalf("the compose fleet is not set up (deploy/compose/setup.sh): %v", err)
	}
	command := strings.Fields(os.Getenv("COMPOSE"))
	if len(command) == 0 {
		command = []string{"docker-compose"}
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	f := &fleet{t: t, root: root, compose: command, project: "stewardtest" + hex.EncodeToString(suffix)}
	t.Cleanup(f.down)
	if out, err := f.run(10*time.Minute, nil, f.composeArgs("up", "-d", "--build")...); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	return f
}

func (f *fleet) composeArgs(args ...string) []string {
	all := append([]string{}, f.compose...)
	all = append(all, "-p", f.project, "-f", filepath.Join(f.root, "docker-compose.yml"))
	return append(all, args...)
}

// run runs a command with the fleet's environment (random host ports for
// what the fleet publishes) and returns its standard output, and its
// standard error too when it fails.
func (f *fleet) run(timeout time.Duration, stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = f.root
	cmd.Env = append(os.Environ(), "STEWARD_JAEGER_PORT=", "STEWARD_METRICS_PORT=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String() + errOut.String(), fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return out.String(), nil
}

// down removes the project's containers, networks and volumes; the logs of
// a failed test are printed first.
func (f *fleet) down() {
	if f.t.Failed() {
		out, _ := f.run(time.Minute, nil, f.composeArgs("logs", "--no-color", "--tail", "150")...)
		f.t.Logf("--- the fleet's logs:\n%s", out)
	}
	if out, err := f.run(5*time.Minute, nil, f.composeArgs("down", "-v", "--remove-orphans", "--timeout", "20")...); err != nil {
		f.t.Errorf("compose down: %v\n%s", err, out)
	}
}

// container is the ID of a service's container.
func (f *fleet) container(service string) string {
	f.t.Helper()
	out, err := f.run(time.Minute, nil, f.composeArgs("ps", "-q", service)...)
	if err != nil || strings.TrimSpace(out) == "" {
		f.t.Fatalf("container of %s: %v %s", service, err, out)
	}
	return strings.TrimSpace(out)
}

// network is the name docker gives the project's network.
func (f *fleet) network(name string) string { return f.project + "_" + name }

// docker runs docker with args and fails the test if it fails.
func (f *fleet) docker(args ...string) string {
	f.t.Helper()
	out, err := f.run(2*time.Minute, nil, append([]string{"docker"}, args...)...)
	if err != nil {
		f.t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// steward runs the steward CLI inside a service's container, as that node.
func (f *fleet) steward(service string, stdin []byte, args ...string) (string, error) {
	f.t.Helper()
	argv := append([]string{"docker", "exec", "-i", f.container(service), "steward"}, args...)
	return f.run(5*time.Minute, stdin, argv...)
}

// message is a REQCliCommand of a shell line.
type message struct {
	ToNodes       []string `json:"toNodes"`
	Method        string   `json:"method"`
	MethodArgs    []string `json:"methodArgs"`
	MethodTimeout int      `json:"methodTimeout,omitempty"`
	ACKTimeout    int      `json:"ACKTimeout,omitempty"`
	Retries       int      `json:"retries,omitempty"`
}

func command(line string, nodes ...string) message {
	return message{ToNodes: nodes, Method: "REQCliCommand", MethodArgs: []string{"bash", "-c", line}, MethodTimeout: 60}
}

// record marks a run in the node's runs file, so the test can count runs.
func record(marker string) string {
	return fmt.Sprintf("echo %s >> /var/lib/steward/runs.log; echo %s", marker, marker)
}

type sendResult struct {
	Receipts []sender.Receipt `json:"receipts"`
	Records  []*status.Record `json:"records"`
}

// send sends input as service's node; with wait, until every delivery and
// reply ended.
func (f *fleet) send(service string, input []byte, wait bool) sendResult {
	f.t.Helper()
	args := []string{"send", "-f", "-", "-o", "json"}
	if wait {
		args = append(args, "--wait", "--timeout", "300s")
	}
	out, err := f.steward(service, input, args...)
	var res sendResult
	if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
		f.t.Fatalf("send as %s: %v %v\n%s", service, err, jerr, out)
	}
	for _, r := range res.Receipts {
		if r.Error != "" {
			f.t.Fatalf("send as %s: message %d refused: %s", service, r.Index, r.Error)
		}
	}
	return res
}

func (f *fleet) sendMessages(service string, wait bool, msgs ...message) sendResult {
	f.t.Helper()
	b, err := json.Marshal(msgs)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.send(service, b, wait)
}

// status is a message's delivery records, as service's node sees them.
func (f *fleet) status(service, id string) []*status.Record {
	f.t.Helper()
	out, err := f.steward(service, nil, "status", id, "-o", "json")
	if err != nil {
		f.t.Fatalf("status %s: %v %s", id, err, out)
	}
	var recs []*status.Record
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		f.t.Fatalf("status %s: %v %s", id, err, out)
	}
	var deliveries []*status.Record
	for _, r := range recs {
		if !r.Reply {
			deliveries = append(deliveries, r)
		}
	}
	return deliveries
}

// runs counts the markers in a node's runs file.
func (f *fleet) runs(service string) map[string]int {
	f.t.Helper()
	out, err := f.run(time.Minute, nil, "docker", "exec", f.container(service), "sh", "-c", "cat /var/lib/steward/runs.log 2>/dev/null; true")
	if err != nil {
		f.t.Fatalf("runs on %s: %v %s", service, err, out)
	}
	n := map[string]int{}
	for _, line := range strings.Fields(out) {
		n[line]++
	}
	return n
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(time.Second)
	}
}

// publishedURL is where the host reaches a service's published port.
func (f *fleet) publishedURL(service string, port int) string {
	f.t.Helper()
	out, err := f.run(time.Minute, nil, f.composeArgs("port", service, fmt.Sprint(port))...)
	if err != nil {
		f.t.Fatalf("port of %s: %v %s", service, err, out)
	}
	return "http://" + strings.TrimSpace(out)
}

func httpGet(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, err
}

func TestComposeFleet(t *testing.T) {
	f := newFleet(t)
	eventually(t, 2*time.Minute, "central, ship1, ship2 and ship3 online in the hub's registry", func() bool {
		out, err := f.steward("central", nil, "nodes")
		if err != nil {
			return false
		}
		online := 0
		for _, line := range strings.Split(out, "\n") {
			fields := strings.Fields(line)
			if len(fields) >= 2 && fields[1] == "online" && strings.Contains(" central ship1 ship2 ship3 ", " "+fields[0]+" ") {
				online++
			}
		}
		return online == 4
	})
	t.Run("reference messages", func(t *testing.T) { referenceMessages(t, f) })
	t.Run("ship cut off mid-command", func(t *testing.T) { shipCutOff(t, f) })
	t.Run("leaf site uplink cut", func(t *testing.T) { uplinkCut(t, f) })
	t.Run("NATS server stopped under load", func(t *testing.T) { serverStopped(t, f) })
	t.Run("trace in Jaeger", func(t *testing.T) { traceInJaeger(t, f) })
	t.Run("metrics", func(t *testing.T) { metrics(t, f) })
	t.Run("TLS", func(t *testing.T) { connectionsUseTLS(t, f) })
}
