// Command steward is the fleet command-and-control CLI and node. All of it
// lives in package cli; main only wires the process to it. The version is
// set at link time in cli.Version (see the Makefile).
package main

import (
	"os"

	"github.com/stewardfleet/steward/internal/cli"
	"github.com/stewardfleet/steward/internal/procguard"
)

func main() {
	procguard.MaybeRun()
	root := cli.NewRootCommand(cli.Options{})
	root.SetArgs(cli.PrepareArgs(root, os.Args[1:], os.Stderr))
	os.Exit(cli.Report(os.Stderr, root.Execute()))
}
