package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"path/filepath"
	"strings"

	"github.com/stewardfleet/steward/internal/message"
)

// validateInputs checks the settings of the node's optional inputs: the
// TCP listener, the HTTP API and the console's TLS. Whether an address is
// on loopback, and whether a token or key file is safe, is checked when
// the node listens.
func (c *Config) validateInputs() []error {
	var errs []error
	if c.TCPListener != "" {
		if _, _, err := net.SplitHostPort(c.TCPListener); err != nil {
			errs = append(errs, fmt.Errorf("tcp-listener %q: want host:port: %w", c.TCPListener, err))
		}
	}
	if _, err := ParseNetworks(c.TCPListenerRemote); err != nil {
		errs = append(errs, fmt.Errorf("tcp-listener-remote: %w", err))
	}
	if c.HTTPAPI != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAPI); err != nil {
			errs = append(errs, fmt.Errorf("http-api %q: want host:port: %w", c.HTTPAPI, err))
		}
	}
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		errs = append(errs, errors.New("http-tls-cert and http-tls-key go together: give both or neither"))
	}
	if c.HTTPTLSCert != "" && c.HTTPAPI == "" && c.Console == "" {
		errs = append(errs, errors.New("http-tls-cert is for the HTTP API and the console: set http-api or console too"))
	}
	if c.HTTPDataFolder != "" {
		if c.HTTPAPI == "" {
			errs = append(errs, errors.New("http-data-folder is served by the HTTP API: set http-api too"))
		}
		if _, err := CleanHTTPDataFolder(c.HTTPDataFolder); err != nil {
			errs = append(errs, fmt.Errorf("http-data-folder: %w", err))
		}
	}
	return errs
}

// ParseNetworks reads a comma-separated list of networks (CIDRs, or single
// addresses) as tcp-listener-remote takes them; "" is none.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (10.0.0.0/8) nor an address", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// CleanHTTPDataFolder returns http-data-folder as a clean slash path
// relative to the data folder ("." for all of it). It refuses a folder
// outside the data folder and the state folder or anything in it.
func CleanHTTPDataFolder(dir string) (string, error) {
	if filepath.IsAbs(dir) {
		return "", fmt.Errorf("%q: give a folder inside the data folder, relative to it (. for all of it)", dir)
	}
	clean := path.Clean(filepath.ToSlash(dir))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%q is outside the data folder", dir)
	}
	first, _, _ := strings.Cut(clean, "/")
	if strings.EqualFold(first, message.ReservedDataPath) {
		return "", fmt.Errorf("%q is the node's state folder, which is never served", dir)
	}
	return clean, nil
}
