package cli

import (
	"testing"

	"github.com/stewardfleet/steward/internal/config"
)

func TestConsoleURL(t *testing.T) {
	for _, tc := range []struct {
		console, cert, want string
	}{
		{"127.0.0.1:8090", "", "http://127.0.0.1:8090/"},
		{"0.0.0.0:8090", "", "http://127.0.0.1:8090/"},
		{":8090", "", "http://127.0.0.1:8090/"},
		{"central.example:8443", "etc/console.pem", "https://central.example:8443/"},
	} {
		cfg := config.Default()
		cfg.Console, cfg.HTTPTLSCert = tc.console, tc.cert
		if got, err := consoleURL(cfg); err != nil || got != tc.want {
			t.Errorf("console %q, cert %q: %q %v, want %q", tc.console, tc.cert, got, err, tc.want)
		}
	}
	if _, err := consoleURL(config.Default()); err == nil {
		t.Error("no console: no error")
	}
}
