package broker

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const s = time.Second
	cases := []struct {
		interval, limit time.Duration
		failures        int
		want            time.Duration
	}{
		{2 * s, time.Minute, 0, 2 * s},
		{2 * s, time.Minute, 1, 4 * s},
		{2 * s, time.Minute, 3, 16 * s},
		{2 * s, time.Minute, 5, time.Minute},
		{2 * s, time.Minute, 1000, time.Minute},
		{5 * time.Minute, time.Minute, 3, 5 * time.Minute},
	}
	for _, tc := range cases {
		if got := backoff(tc.interval, tc.limit, tc.failures); got != tc.want {
			t.Errorf("backoff(%s, %s, %d) = %s, want %s", tc.interval, tc.limit, tc.failures, got, tc.want)
		}
	}
}

func TestIsSpaceError(t *testing.T) {
	cases := []struct {
		text string
		want bool
	}{
		{"JetStream stream '$G > S' write error: write /x/1.blk: no space left on device", true},
		{"JetStream stream '$G > S' write error: write /x/1.blk: disk quota exceeded", true},
		{"JetStream stream '$G > S' write error: write /x/1.blk: input/output error", false},
	}
	for _, tc := range cases {
		if got := isSpaceError(tc.text); got != tc.want {
			t.Errorf("isSpaceError(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}
