package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// validateMetrics checks the settings of the node's metrics and profiling
// endpoints and of its log, and gives the endpoints' bare ports the
// loopback host (LoopbackAddress). Only localhost and loopback addresses
// count as loopback here; the node checks again what it listens on.
func (c *Config) validateMetrics() []error {
	var errs []error
	if c.PromHostAndPort != "" {
		addr, err := LoopbackAddress(c.PromHostAndPort)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("prom-host-and-port: %w", err))
		case c.PromRemote == "" && !loopbackHost(addr):
			errs = append(errs, fmt.Errorf("prom-host-and-port %q is beyond loopback: name the networks that may scrape it in prom-remote", c.PromHostAndPort))
		}
		c.PromHostAndPort = addr
	}
	if _, err := ParseNetworks(c.PromRemote); err != nil {
		errs = append(errs, fmt.Errorf("prom-remote: %w", err))
	}
	if c.ProfilingPort != "" {
		addr, err := LoopbackAddress(c.ProfilingPort)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("profiling-port: %w", err))
		case !loopbackHost(addr):
			errs = append(errs, fmt.Errorf("profiling-port %q: profiles are served on loopback only (give a port, or 127.0.0.1:port)", c.ProfilingPort))
		}
		c.ProfilingPort = addr
	}
	switch strings.ToLower(c.LogFormat) {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format %q: want text or json", c.LogFormat))
	}
	return errs
}

// LoopbackAddress reads a listen address given as host:port, or as a bare
// port ("2111" or ":2111"), which is on loopback: 127.0.0.1:2111.
func LoopbackAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		return net.JoinHostPort("127.0.0.1", s), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s, fmt.Errorf("%q: want a port or host:port: %w", s, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return s, fmt.Errorf("%q: port %q is not a number within 0..65535", s, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// loopbackHost reports whether addr's host is localhost or a loopback
// address.
func loopbackHost(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
