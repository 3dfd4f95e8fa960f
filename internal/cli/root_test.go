package cli

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// commandPaths lists the arguments that reach every command of the tree.
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	out := [][]string{prefix}
	for _, sub := range c.Commands() {
		out = append(out, commandPaths(sub, append(append([]string{}, prefix...), sub.Name()))...)
	}
	return out
}

func TestEveryHelpHasExample(t *testing.T) {
	paths := commandPaths(newRootCmd(newTestEnv(t).app), nil)
	if len(paths) < 15 {
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, p := range paths {
		t.Run(strings.Join(append([]string{"steward"}, p...), " "), func(t *testing.T) {
			e := newTestEnv(t)
			if err := e.run(t, append(p, "--help")...); err != nil {
				t.Fatal(err)
			}
			help := e.stdout.String()
			if !strings.Contains(help, "Examples:\n  ") {
				t.Fatalf("help has no example:\n%s", help)
			}
			if !strings.Contains(help, "Usage:") {
				t.Fatalf("no usage:\n%s", help)
			}
		})
	}
}

func TestHelpShowsDefaultsAndExitCodes(t *testing.T) {
	e := newTestEnv(t)
	if err := e.run(t, "node", "run", "--help"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(default "central")`, "(default 24h)", "(default 30s)", `(default "127.0.0.1:4222")`, "(default 64)"} {
		if !strings.Contains(e.stdout.String(), want) {
			t.Errorf("node run help lacks %s", want)
		}
	}
	if err := e.run(t, "send", "--help"); err != nil {
		t.Fatal(err)
	}
	for code := range 5 {
		if !strings.Contains(e.stdout.String(), fmt.Sprintf("\n  %d  ", code)) {
			t.Errorf("send help does not explain exit code %d", code)
		}
	}
}

// TestNoGlobals builds two trees and uses them in turn: flags set on one
// do not show in the other, nor in a later run of the same app.
func TestNoGlobals(t *testing.T) {
	clearEnv(t)
	e1, e2 := newTestEnv(t), newTestEnv(t)
	r1, r2 := newRootCmd(e1.app), newRootCmd(e2.app)
	if r1 == r2 || r1.Commands()[0] == r2.Commands()[0] {
		t.Fatal("trees share commands")
	}
	r1.SetArgs([]string{"node", "run", "--config-folder", t.TempDir(), "--node-name", "one", "--concurrency", "3"})
	r2.SetArgs([]string{"node", "run", "--config-folder", t.TempDir()})
	if err := r1.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r2.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e1.nodeCfg.NodeName != "one" || e1.nodeCfg.Concurrency != 3 {
		t.Fatalf("tree 1: %+v", e1.nodeCfg)
	}
	if e2.nodeCfg.NodeName != "central" || e2.nodeCfg.Concurrency != 64 {
		t.Fatalf("tree 2 saw tree 1's flags: %+v", e2.nodeCfg)
	}
	if e1.stdout == e2.stdout {
		t.Fatal("apps share output")
	}
}

func TestUsageErrors(t *testing.T) {
	clearEnv(t)
	tests := [][]string{
		{"nosuch"},
		{"node", "nosuch"},
		{"config", "nosuch"},
		{"--nosuch"},
		{"nodes", "--nosuch"},
		{"status"},
		{"status", "a", "b"},
		{"version", "extra"},
		{"nodes", "-o", "xml"},
		{"node", "run", "--hello-interval", "soon"},
		{"node", "run", "--concurrency", "many"},
		{"send"},
		{"send", "-f", filepath.Join(t.TempDir(), "missing.json")},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			e := newTestEnv(t)
			err := e.run(t, append(args, "--config-folder", t.TempDir())...)
			wantCode(t, err, ExitUsage)
			if e.nodeCfg != nil {
				t.Fatal("node ran")
			}
		})
	}
}

func TestGroupCommandsShowHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"node"}, {"config"}, {"completion"}} {
		e := newTestEnv(t)
		if err := e.run(t, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.Contains(e.stdout.String(), "Available Commands:") {
			t.Fatalf("%v printed no help:\n%s", args, e.stdout)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err       error
		code      int
		printed   bool
		printedAs string
	}{
		{nil, ExitOK, false, ""},
		{errors.New("boom"), ExitFailed, true, "steward: boom\n"},
		{exitError(ExitUnreachable, errors.New("no broker")), ExitUnreachable, true, "steward: no broker\n"},
		{fmt.Errorf("outer: %w", exitError(ExitTimeout, errors.New("late"))), ExitTimeout, true, "steward: outer: late\n"},
		{exitError(ExitFailed, nil), ExitFailed, false, ""},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.code {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
		var b bytes.Buffer
		if got := Report(&b, tt.err); got != tt.code || b.String() != tt.printedAs {
			t.Errorf("Report(%v) = %d, printed %q; want %d, %q", tt.err, got, b.String(), tt.code, tt.printedAs)
		}
	}
}

func TestVersion(t *testing.T) {
	e := newTestEnv(t)
	if err := e.run(t, "version"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.stdout.String(), "steward v0.0.0-test\n") || !strings.Contains(e.stdout.String(), "go      go1.") {
		t.Fatalf("version printed %q", e.stdout)
	}
	e.app.version = ""
	if v := e.app.versionString(); v == "" {
		t.Fatal("no fallback version")
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		e := newTestEnv(t)
		if err := e.run(t, "completion", shell); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.stdout.String(), "steward") || e.stdout.Len() < 500 {
			t.Fatalf("%s completion: %q", shell, e.stdout)
		}
	}
}
