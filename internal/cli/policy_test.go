package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyCheck(t *testing.T) {
	clearEnv(t)
	e := newTestEnv(t)
	file := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(file, []byte(`{"rules":[{"from":["central"],"methods":["REQCliCommand"],"args":["systemctl status *"],"effect":"allow"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.run(t, "policy", "check", "--policy-file", file, "--from", "central", "--method", "cli", "--", "systemctl", "status", "nginx"); err != nil || !strings.HasPrefix(e.stdout.String(), "allow: rule 1") {
		t.Errorf("allowed request: %v, %q", err, e.stdout)
	}
	err := e.run(t, "policy", "check", "--policy-file", file, "--from", "central", "--method", "REQCliCommand", "--", "systemctl", "stop", "nginx")
	if ExitCode(err) != ExitFailed || !strings.HasPrefix(e.stdout.String(), "deny: no rule matches") {
		t.Errorf("denied request: %v (exit %d), %q", err, ExitCode(err), e.stdout)
	}
	if err := e.run(t, "policy", "check", "--from", "central", "--method", "REQPing"); ExitCode(err) != ExitUsage {
		t.Errorf("without a policy file: %v", err)
	}
}
