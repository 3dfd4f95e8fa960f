package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/config"
)

func newConsoleCmd(a *app) *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Open the fleet console in a browser",
		Long: `Print the URL of the central node's fleet console (its console setting,
from config.toml or --console) and open it in the desktop's browser, where
there is one (xdg-open, or open on macOS). The central node serves the
console when it runs with --console, e.g. 127.0.0.1:8090.`,
		Example: `  steward node run --console 127.0.0.1:8090   # on the central node
  steward console                              # beside it
  steward console --print                      # the URL only`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(cmd)
			a.warnUnknown(l)
			if err != nil {
				return exitError(ExitUsage, err)
			}
			url, err := consoleURL(l.cfg)
			if err != nil {
				return exitError(ExitUsage, err)
			}
			fmt.Fprintln(a.stdout, url)
			if !printOnly {
				openBrowser(url)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the URL, open no browser")
	addConfigFlags(cmd.Flags())
	return cmd
}

// consoleURL is where the console of cfg's central node is, as a browser
// on this machine reaches it.
func consoleURL(cfg config.Config) (string, error) {
	if cfg.Console == "" {
		return "", errors.New("the console is off: run the central node with --console 127.0.0.1:8090 (or set console in its config.toml)")
	}
	host, port, err := net.SplitHostPort(cfg.Console)
	if err != nil {
		return "", fmt.Errorf("console %q: want host:port: %w", cfg.Console, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.HTTPTLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/", nil
}

// openBrowser asks the desktop to open url, if there is a desktop; it
// does not wait for the browser.
func openBrowser(url string) {
	opener := "xdg-open"
	if runtime.GOOS == "darwin" {
		opener = "open"
	} else if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return
	}
	if path, err := exec.LookPath(opener); err == nil {
		if c := exec.Command(path, url); c.Start() == nil {
			go c.Wait()
		}
	}
}
