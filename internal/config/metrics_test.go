package config

import (
	"strings"
	"testing"
)

func TestValidateMetrics(t *testing.T) {
	tests := []struct {
		name                string
		prom, remote, pprof string
		format              string
		wantProm, wantPprof string
		wantErr             string
	}{
		{name: "off", format: "text"},
		{name: "bare port", prom: "2111", pprof: "6060", format: "json", wantProm: "127.0.0.1:2111", wantPprof: "127.0.0.1:6060"},
		{name: "colon port", prom: ":2111", pprof: ":6060", format: "text", wantProm: "127.0.0.1:2111", wantPprof: "127.0.0.1:6060"},
		{name: "loopback", prom: "[::1]:2111", pprof: "localhost:6060", format: "text", wantProm: "[::1]:2111", wantPprof: "localhost:6060"},
		{name: "beyond loopback with remote", prom: "0.0.0.0:2111", remote: "10.0.0.0/8", format: "text", wantProm: "0.0.0.0:2111"},
		{name: "beyond loopback", prom: "0.0.0.0:2111", format: "text", wantErr: "prom-remote"},
		{name: "name beyond loopback", prom: "metrics.example:2111", format: "text", wantErr: "beyond loopback"},
		{name: "profiling beyond loopback", pprof: "0.0.0.0:6060", remote: "10.0.0.0/8", format: "text", wantErr: "loopback only"},
		{name: "bad port", prom: "99999", format: "text", wantErr: "prom-host-and-port"},
		{name: "bad remote", remote: "nowhere", format: "text", wantErr: "prom-remote"},
		{name: "bad format", format: "xml", wantErr: "log-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.PromHostAndPort, c.PromRemote, c.ProfilingPort, c.LogFormat = tt.prom, tt.remote, tt.pprof, tt.format
			err := c.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.PromHostAndPort != tt.wantProm || c.ProfilingPort != tt.wantPprof {
				t.Errorf("got %q and %q, want %q and %q", c.PromHostAndPort, c.ProfilingPort, tt.wantProm, tt.wantPprof)
			}
		})
	}
}
