package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is steward's version, set at link time:
//
//	go build -ldflags "-X github.com/stewardfleet/steward/internal/cli.Version=v1.2.3" ./cmd/steward
//
// It is the package's one variable and no code assigns it; when empty the
// version comes from the module's build information.
var Version string

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print steward's version and the Go version it was built with",
		Long: `Print steward's version (set at build time with -ldflags
"-X github.com/stewardfleet/steward/internal/cli.Version=v1.2.3", as
"make build" does, else taken from the module's build information), the Go
version, the platform and the source revision.`,
		Example: `  steward version
  go build -ldflags "-X github.com/stewardfleet/steward/internal/cli.Version=v1.2.3" ./cmd/steward && ./steward version`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdout, "steward %s\n", a.versionString())
			fmt.Fprintf(a.stdout, "go      %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if rev := revision(); rev != "" {
				fmt.Fprintf(a.stdout, "commit  %s\n", rev)
			}
			return nil
		},
	}
}

// versionString is Options.Version, else the link-time Version, else the
// module version from the build information, else "devel".
func (a *app) versionString() string {
	if a.version != "" {
		return a.version
	}
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// revision is the VCS revision the binary was built from, if recorded.
func revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + modified
}
