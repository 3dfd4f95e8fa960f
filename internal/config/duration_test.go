package config

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "200", want: 200 * time.Second},
		{in: "5", want: 5 * time.Second},
		{in: "0", want: 0},
		{in: " 30 ", want: 30 * time.Second},
		{in: "30s", want: 30 * time.Second},
		{in: "1h", want: time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "-5", want: -5 * time.Second},
		{in: "", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "10 s", wantErr: true},
		{in: "99999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrDuration) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want an error wrapping ErrDuration", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Second, "30s"},
		{time.Minute, "1m"},
		{10 * time.Minute, "10m"},
		{time.Hour, "1h"},
		{24 * time.Hour, "24h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{200 * time.Second, "3m20s"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := FormatDuration(tt.in)
			if got != tt.want {
				t.Fatalf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := ParseDuration(got)
			if err != nil || back != tt.in {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v back", got, back, err, tt.in)
			}
		})
	}
}

func TestSeconds(t *testing.T) {
	if d, err := Seconds(3); err != nil || d != 3*time.Second {
		t.Fatalf("Seconds(3) = %v, %v", d, err)
	}
	if _, err := Seconds(1 << 40); !errors.Is(err, ErrDuration) {
		t.Fatalf("Seconds(1<<40) error = %v, want ErrDuration", err)
	}
}
