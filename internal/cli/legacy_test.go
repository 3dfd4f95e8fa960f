package cli

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRewriteLegacyArgs(t *testing.T) {
	tests := []struct {
		name        string
		in          []string
		want        []string
		wantIgnored []string
	}{
		{
			name: "original startup line runs a node",
			in: []string{"-nodeName=central", "-defaultMessageRetries=3", "-defaultMessageTimeout=5",
				"-subscribersDataFolder=./data", "-centralNodeName=central", "-startSubREQErrorLog=true",
				"-brokerAddress=127.0.0.1:4222"},
			want: []string{"node", "run", "--node-name=central", "--default-message-retries=3", "--default-message-timeout=5",
				"--data-folder=./data", "--central-node-name=central", "--broker-address=127.0.0.1:4222"},
			wantIgnored: []string{"-startSubREQErrorLog=true"},
		},
		{
			name: "every name, separate values",
			in: []string{"node", "run", "-nodeName", "a", "-brokerAddress", "b:1", "-centralNodeName", "c",
				"-defaultMessageTimeout", "5", "-defaultMessageRetries", "2", "-subscribersDataFolder", "d",
				"-socketFolder", "s", "-startPubREQHello", "200", "-configFolder", "e"},
			want: []string{"node", "run", "--node-name", "a", "--broker-address", "b:1", "--central-node-name", "c",
				"--default-message-timeout", "5", "--default-message-retries", "2", "--data-folder", "d",
				"--socket-folder", "s", "--hello-interval", "200", "--config-folder", "e"},
		},
		{
			name: "two dashes",
			in:   []string{"node", "run", "--nodeName=a", "--startPubREQHello", "60"},
			want: []string{"node", "run", "--node-name=a", "--hello-interval", "60"},
		},
		{
			name: "new flags untouched",
			in:   []string{"node", "run", "--node-name", "a", "--hello-interval=1m"},
			want: []string{"node", "run", "--node-name", "a", "--hello-interval=1m"},
		},
		{
			name: "value of -f is not a flag",
			in:   []string{"send", "-f", "-nodeName", "--wait"},
			want: []string{"send", "-f", "-nodeName", "--wait"},
		},
		{
			name: "value of --file and --output are not flags",
			in:   []string{"send", "--file", "-nodeName=x", "-o", "-configFolder"},
			want: []string{"send", "--file", "-nodeName=x", "-o", "-configFolder"},
		},
		{
			name: "value of a legacy flag is not a flag",
			in:   []string{"-nodeName", "-startSubREQHello"},
			want: []string{"node", "run", "--node-name", "-startSubREQHello"},
		},
		{
			name: "after -- nothing is touched",
			in:   []string{"node", "run", "--", "-nodeName=x", "-startSubREQHello"},
			want: []string{"node", "run", "--", "-nodeName=x", "-startSubREQHello"},
		},
		{
			name: "unknown and near names get two dashes, the rest untouched",
			in:   []string{"status", "-nodename=x", "-nodeNameX", "-x", "nodeName", "-"},
			want: []string{"status", "--nodename=x", "--nodeNameX", "-x", "nodeName", "-"},
		},
		{
			name: "one-dash long flags get two, shorthands with values stay",
			in:   []string{"send", "-help", "-wait", "-timeout", "5", "-output", "json", "-ojson", "-fmsg.json", "-f", "-"},
			want: []string{"send", "--help", "--wait", "--timeout", "5", "--output", "json", "-ojson", "-fmsg.json", "-f", "-"},
		},
		{
			name: "an unbuilt flag of the original runs a node, to fail there",
			in:   []string{"-readFolder=/tmp/in"},
			want: []string{"node", "run", "--readFolder=/tmp/in"},
		},
		{
			name: "the original's TCP listener",
			in:   []string{"-tcpListener", "127.0.0.1:8888", "-nodeName=ship1"},
			want: []string{"node", "run", "--tcp-listener", "127.0.0.1:8888", "--node-name=ship1"},
		},
		{
			name:        "ignored booleans dropped",
			in:          []string{"node", "run", "-startSubREQHello", "--startSubREQToFileAppend=false", "-nodeName=a"},
			want:        []string{"node", "run", "--node-name=a"},
			wantIgnored: []string{"-startSubREQHello", "--startSubREQToFileAppend=false"},
		},
		{
			name: "request methods' startSub flags set methods",
			in: []string{"-nodeName=ship1", "-startSubREQCliCommand=true", "-startSubREQHttpGet=false",
				"-startSubREQTailFile=central,ops", "-startSubREQPing", "-startSubREQErrorLog=*"},
			want:        []string{"node", "run", "--node-name=ship1", "--methods=REQCliCommand=*; REQHttpGet=off; REQTailFile=central ops; REQPing=*"},
			wantIgnored: []string{"-startSubREQErrorLog=*"},
		},
		{
			name: "metrics and profiling flags with a separate value",
			in:   []string{"-promHostAndPort", ":12112", "-profilingPort=6060", "-nodeName=ship1"},
			want: []string{"node", "run", "--prom-host-and-port", ":12112", "--profiling-port=6060", "--node-name=ship1"},
		},
		{
			name: "no legacy flag, no node run",
			in:   []string{"--help"},
			want: []string{"--help"},
		},
		{
			name: "subcommand given, no node run added",
			in:   []string{"config", "show", "-nodeName=a"},
			want: []string{"config", "show", "--node-name=a"},
		},
		{
			name: "empty",
			in:   []string{},
			want: nil,
		},
	}
	takesValue := valueFlags(newRootCmd(newTestEnv(t).app))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ignored := rewriteLegacyArgs(tt.in, takesValue)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("args\n got %q\nwant %q", got, tt.want)
			}
			if !reflect.DeepEqual(ignored, tt.wantIgnored) {
				t.Errorf("ignored %q, want %q", ignored, tt.wantIgnored)
			}
		})
	}
}

func TestValueFlags(t *testing.T) {
	m := valueFlags(newRootCmd(newTestEnv(t).app))
	for _, f := range []string{"-f", "--file", "-o", "--output", "--timeout", "--node-name", "--config-folder"} {
		if !m[f] {
			t.Errorf("%s should take a value", f)
		}
	}
	if m["--wait"] {
		t.Error("--wait is a boolean")
	}
}

func TestPrepareArgsWarnsOnce(t *testing.T) {
	var stderr bytes.Buffer
	root := newRootCmd(newTestEnv(t).app)
	PrepareArgs(root, []string{"-startSubREQErrorLog=true", "-startSubREQHello=true", "-nodeName=a"}, &stderr)
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "-startSubREQErrorLog=true -startSubREQHello=true") {
		t.Fatalf("warning %q, want one line naming both flags", stderr.String())
	}
	stderr.Reset()
	PrepareArgs(root, []string{"send", "-f", "x"}, &stderr)
	if stderr.Len() != 0 {
		t.Fatalf("warned without legacy flags: %q", stderr.String())
	}
}

// TestLegacyStartupLine runs the original's startup line through the real
// command tree up to the node.
func TestLegacyStartupLine(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	t.Setenv("CONFIG_FOLDER", dir)
	e := newTestEnv(t)
	root := newRootCmd(e.app)
	args := PrepareArgs(root, []string{
		"-nodeName=ship1", "-startPubREQHello=200", "-centralNodeName=central",
		"-promHostAndPort=:12112", "-brokerAddress=127.0.0.1:4222", "-defaultMessageTimeout=5",
		"-subscribersDataFolder=./var", "-startSubREQErrorLog=true",
	}, e.stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := e.nodeCfg
	if c == nil {
		t.Fatal("node did not run")
	}
	if c.NodeName != "ship1" || c.HelloInterval != 200*time.Second || c.DefaultMessageTimeout != 5*time.Second ||
		c.BrokerAddress != "nats://127.0.0.1:4222" || c.DataFolder != "./var" || c.ConfigFolder != dir ||
		c.PromHostAndPort != "127.0.0.1:12112" {
		t.Fatalf("config %+v", c)
	}
	if !strings.Contains(readFile(t, filepath.Join(dir, configFileName)), `hello-interval = "3m20s"`) {
		t.Fatal("legacy flags not written back")
	}
}
