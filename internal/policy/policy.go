// Package policy decides which sender may have a node run which method,
// and for REQCliCommand which command lines. A node with a policy file
// runs a request only when a rule allows it: the first rule that matches
// the request decides, and a request no rule matches is denied
// (default-deny). Replies and steward's own events (hello, error reports)
// are not requests and are not decided here.
//
// The file is JSON:
//
//	{"rules": [
//	  {"from": ["central", "ops-*"], "methods": ["REQCliCommand"],
//	   "args": ["systemctl status *", "uptime", "journalctl -u * **"], "effect": "allow"},
//	  {"from": ["*"], "methods": ["REQPing"], "effect": "allow"},
//	  {"from": ["*"], "methods": ["*"], "effect": "deny"}
//	]}
//
// from and methods are globs over a sender's node name and a method's
// canonical name. args (REQCliCommand only; no args: any command line)
// are command lines whose words match the command's arguments one by one:
// a word is a glob over one argument ("*" is any one argument, never
// several), and a last word "**" matches any further arguments, none
// included. Commands run without a shell, so an argument can never be
// taken for more than one.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
)

// Effect is what a rule does with the requests it matches.
type Effect string

const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Rule matches requests by sender, method and command line.
type Rule struct {
	From    []string `json:"from"`
	Methods []string `json:"methods"`
	Args    []string `json:"args,omitempty"`
	Effect  Effect   `json:"effect"`
}

// Policy is an ordered list of rules.
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Decision is what the policy decided, and why.
type Decision struct {
	Allowed bool
	// Rule is the index of the rule that decided (-1: none matched).
	Rule   int
	Reason string
}

// Load reads and checks a policy file.
func Load(file string) (*Policy, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Parse(b)
}

// Parse reads a policy and checks its rules.
func Parse(b []byte) (*Policy, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if len(p.Rules) == 0 {
		return nil, errors.New("policy: no rules (a policy without rules would deny every request)")
	}
	for i, r := range p.Rules {
		if r.Effect != Allow && r.Effect != Deny {
			return nil, fmt.Errorf("policy rule %d: effect %q: want allow or deny", i+1, r.Effect)
		}
		if len(r.From) == 0 || len(r.Methods) == 0 {
			return nil, fmt.Errorf("policy rule %d: from and methods must each list at least one pattern", i+1)
		}
		for _, pat := range append(append(append([]string(nil), r.From...), r.Methods...), r.Args...) {
			if _, err := path.Match(strings.ReplaceAll(pat, " ", "x"), ""); err != nil {
				return nil, fmt.Errorf("policy rule %d: pattern %q: %w", i+1, pat, err)
			}
		}
	}
	return &p, nil
}

// Decide decides a request from node from to run method with args.
func (p *Policy) Decide(from, method string, args []string) Decision {
	for i, r := range p.Rules {
		if !anyMatch(r.From, from) || !anyMatch(r.Methods, method) {
			continue
		}
		if len(r.Args) > 0 && !anyArgs(r.Args, args) {
			continue
		}
		return Decision{Allowed: r.Effect == Allow, Rule: i, Reason: fmt.Sprintf("rule %d (%s)", i+1, r.describe())}
	}
	return Decision{Rule: -1, Reason: "no rule matches: denied by default"}
}

func (r Rule) describe() string {
	s := fmt.Sprintf("%s from %s, methods %s", r.Effect, strings.Join(r.From, ","), strings.Join(r.Methods, ","))
	if len(r.Args) > 0 {
		s += ", args " + strings.Join(r.Args, " | ")
	}
	return s
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

func anyArgs(lines []string, args []string) bool {
	for _, line := range lines {
		if argsMatch(strings.Fields(line), args) {
			return true
		}
	}
	return false
}

// argsMatch matches args word by word; a last word "**" takes the rest.
func argsMatch(words, args []string) bool {
	for i, w := range words {
		if w == "**" && i == len(words)-1 {
			return true
		}
		if i >= len(args) {
			return false
		}
		// path.Match's '*' stops at '/': match the argument with its
		// slashes hidden, so "*" is any one argument.
		ok, _ := path.Match(hideSlash(w), hideSlash(args[i]))
		if !ok {
			return false
		}
	}
	return len(words) == len(args)
}

// hideSlash replaces '/' by a byte that no pattern or argument holds
// otherwise, so that path.Match treats it like any other character.
func hideSlash(s string) string { return strings.ReplaceAll(s, "/", "\x00") }
