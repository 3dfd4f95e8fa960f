package config

import (
	"errors"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(c *Config)
		wantErr bool
	}{
		{"bare broker address", func(c *Config) { c.BrokerAddress = "127.0.0.1:4222" }, false},
		{"cluster's servers", func(c *Config) { c.BrokerAddress = "nats1:4222, nats://nats2:4222,tls://nats3:4222" }, false},
		{"hub domain", func(c *Config) { c.BrokerDomain = "hub" }, false},
		{"domain with a dot", func(c *Config) { c.BrokerDomain = "hub.x" }, true},
		{"a server without host", func(c *Config) { c.BrokerAddress = "nats1:4222,nats://" }, true},
		{"bad node name", func(c *Config) { c.NodeName = "ship 1" }, true},
		{"short timeout", func(c *Config) { c.DefaultMessageTimeout = time.Millisecond }, true},
		{"hello off", func(c *Config) { c.HelloInterval = 0 }, false},
		{"negative hello", func(c *Config) { c.HelloInterval = -time.Second }, true},
		{"no concurrency", func(c *Config) { c.Concurrency = 0 }, true},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, true},
		{"bad listen", func(c *Config) { c.BrokerListen = "4222" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr != (err != nil) {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestValidateNormalisesBrokerAddress(t *testing.T) {
	c := Default()
	c.BrokerAddress = "127.0.0.1:4222"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.BrokerAddress != "nats://127.0.0.1:4222" {
		t.Fatalf("BrokerAddress = %q, want nats://127.0.0.1:4222", c.BrokerAddress)
	}
	if got := c.ClientBrokerURL(); got != "nats://127.0.0.1:4222" {
		t.Fatalf("ClientBrokerURL() = %q", got)
	}
}

func TestNormalizeBrokerAddressList(t *testing.T) {
	got, err := NormalizeBrokerAddress("nats1:4222, nats://nats2:4222,tls://nats3:4222")
	if err != nil {
		t.Fatal(err)
	}
	if want := "nats://nats1:4222,nats://nats2:4222,tls://nats3:4222"; got != want {
		t.Fatalf("NormalizeBrokerAddress = %q, want %q", got, want)
	}
}
