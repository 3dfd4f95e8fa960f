package cli

import (
	"strings"
	"testing"
)

// runPrepared runs args as main does: through PrepareArgs first.
func (e *testEnv) runPrepared(t testing.TB, args ...string) error {
	t.Helper()
	e.stdout.Reset()
	e.stderr.Reset()
	root := newRootCmd(e.app)
	root.SetArgs(PrepareArgs(root, args, e.stderr))
	return root.ExecuteContext(t.Context())
}

// TestOneDashHelp: the original README says "steward -help".
func TestOneDashHelp(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{{"-help"}, {"-h"}, {"--help"}, {"send", "-help"}, {"nodes", "-h"}, {"keys", "-help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			e := newTestEnv(t)
			if err := e.runPrepared(t, args...); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(e.stdout.String(), "Usage:") {
				t.Fatalf("no help:\n%s", e.stdout)
			}
		})
	}
}

// TestMisspeltFlagsAndCommands: every unknown flag or command is a usage
// error that says what was typed and what to do, never pflag's "unknown
// shorthand flag: 'n' in -nodeNmae".
func TestMisspeltFlagsAndCommands(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"-readFolder=/tmp/in"}, []string{"-readFolder is a flag of the original steward", "not built yet", "steward.sock", "remove the flag"}},
		{[]string{"-nodeName=ship1", "-httpListener", "localhost:8888"}, []string{"-httpListener", "replaced by --http-api"}},
		{[]string{"node", "run", "-enableSignatureCheck=true"}, []string{"-enableSignatureCheck", "replaced by --trusted-keys"}},
		{[]string{"node", "run", "-databaseFolder", "/var/lib"}, []string{"replaced by --data-folder"}},
		{[]string{"node", "run", "-nodeNmae=x"}, []string{"unknown flag --nodeNmae", "did you mean --node-name?", "steward node run --help"}},
		{[]string{"send", "-f", "m.json", "--wiat"}, []string{"unknown flag --wiat", "did you mean --wait?"}},
		{[]string{"status", "-x", "id"}, []string{"unknown flag -x", "two dashes"}},
		{[]string{"-version"}, []string{`"version" is a command: steward version`}},
		{[]string{"nodse"}, []string{`unknown command "nodse" for "steward"`, `"nodes"`}},
		{[]string{"keys", "revok"}, []string{`unknown command "revok" for "steward keys"`, `did you mean "revoke"?`}},
		{[]string{"policy", "chek"}, []string{`did you mean "check"?`}},
		{[]string{"broker", "authorisation"}, []string{`did you mean "authorization"?`}},
		{[]string{"config", "shwo"}, []string{`did you mean "show"?`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := newTestEnv(t)
			err := e.runPrepared(t, tt.args...)
			wantCode(t, err, ExitUsage)
			if e.nodeCfg != nil {
				t.Fatal("node ran")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "shorthand") {
				t.Errorf("pflag's shorthand error: %v", err)
			}
		})
	}
}

func TestLevenshtein(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"nodes", "nodes", 0}, {"nodse", "nodes", 2}, {"revok", "revoke", 1}, {"nodenmae", "nodename", 2}, {"é", "e", 1},
	}
	for _, tt := range tests {
		if got := levenshtein(tt.a, tt.b); got != tt.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
