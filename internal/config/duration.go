package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses the durations steward accepts in flags, the config
// file and the environment: a plain integer number of seconds, as the
// original's flags took them ("200" is 200s), or a Go duration ("30s",
// "1h30m"). Surrounding space is ignored. Errors wrap ErrDuration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrDuration)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return Seconds(n)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w %q: want seconds (200) or a Go duration (30s, 24h)", ErrDuration, s)
	}
	return d, nil
}

// Seconds converts a whole number of seconds to a duration, refusing
// values a time.Duration cannot hold.
func Seconds(n int64) (time.Duration, error) {
	const limit = math.MaxInt64 / int64(time.Second)
	if n > limit || n < -limit {
		return 0, fmt.Errorf("%w: %d seconds is out of range", ErrDuration, n)
	}
	return time.Duration(n) * time.Second, nil
}

// FormatDuration writes d as a Go duration without the zero units that
// time.Duration.String appends: "24h" rather than "24h0m0s", "1m" rather
// than "1m0s". ParseDuration reads the result back to the same value.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
