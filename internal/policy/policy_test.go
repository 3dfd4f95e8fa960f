package policy_test

import (
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/policy"
)

const example = `{"rules": [
  {"from": ["central", "ops-*"], "methods": ["REQCliCommand"], "args": ["systemctl status *", "uptime", "journalctl -u * **"], "effect": "allow"},
  {"from": ["ops-intern"], "methods": ["*"], "effect": "deny"},
  {"from": ["*"], "methods": ["REQPing", "REQToFile*"], "effect": "allow"}
]}`

func TestDecide(t *testing.T) {
	p, err := policy.Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, method string
		args         []string
		allow        bool
		rule         int
	}{
		{"central", "REQCliCommand", []string{"systemctl", "status", "nginx"}, true, 0},
		{"ops-anna", "REQCliCommand", []string{"uptime"}, true, 0},
		{"central", "REQCliCommand", []string{"journalctl", "-u", "nginx"}, true, 0},
		{"central", "REQCliCommand", []string{"journalctl", "-u", "nginx", "-n", "100"}, true, 0},
		{"central", "REQCliCommand", []string{"systemctl", "stop", "nginx"}, false, -1},
		{"central", "REQCliCommand", []string{"systemctl", "status", "nginx", "extra"}, false, -1},
		{"central", "REQCliCommand", []string{"systemctl", "status", "nginx; rm -rf /"}, true, 0}, // one argument to systemctl: no shell
		{"central", "REQCliCommand", []string{"systemctl", "status", "/etc/passwd"}, true, 0},
		{"central", "REQCliCommand", []string{"sh", "-c", "uptime"}, false, -1},
		{"central", "REQCliCommand", []string{"uptime", "-p"}, false, -1},
		{"ship9", "REQCliCommand", []string{"uptime"}, false, -1},
		{"ops-intern", "REQCliCommand", []string{"uptime"}, true, 0}, // the first matching rule decides
		{"ops-intern", "REQPing", nil, false, 1},
		{"ship9", "REQPing", nil, true, 2},
		{"ship9", "REQToFileAppend", nil, true, 2},
		{"ship9", "REQToConsole", nil, false, -1},
	} {
		d := p.Decide(tc.from, tc.method, tc.args)
		if d.Allowed != tc.allow || d.Rule != tc.rule {
			t.Errorf("%s %s %q: allowed=%v rule=%d (%s), want %v rule %d", tc.from, tc.method, tc.args, d.Allowed, d.Rule, d.Reason, tc.allow, tc.rule)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"no rules", `{"rules":[]}`, "no rules"},
		{"bad effect", `{"rules":[{"from":["*"],"methods":["*"],"effect":"maybe"}]}`, "effect"},
		{"no from", `{"rules":[{"methods":["*"],"effect":"allow"}]}`, "at least one"},
		{"unknown field", `{"rules":[{"from":["*"],"methods":["*"],"effect":"allow","nodes":["x"]}]}`, "unknown field"},
		{"bad glob", `{"rules":[{"from":["[a"],"methods":["*"],"effect":"allow"}]}`, "pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := policy.Parse([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// Whatever the request, a decision comes back, and only an allow rule
// allows.
func FuzzDecide(f *testing.F) {
	f.Add("central", "REQCliCommand", "systemctl status nginx")
	f.Add("ops-x", "REQPing", "")
	f.Add("a/b", "*", "** * ?")
	p, err := policy.Parse([]byte(example))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, from, method, line string) {
		d := p.Decide(from, method, strings.Fields(line))
		if d.Allowed && (d.Rule < 0 || p.Rules[d.Rule].Effect != policy.Allow) {
			t.Fatalf("allowed by %d: %s", d.Rule, d.Reason)
		}
	})
}
