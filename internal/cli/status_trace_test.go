package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/status"
)

// TestStatusShowsTraceID: the table starts with the message's trace ID
// when its records carry one, and shows no trace line when they do not.
func TestStatusShowsTraceID(t *testing.T) {
	a := newApp(Options{})
	a.now = func() time.Time { return testNow }
	traced := rec("m1", "ship1", status.Succeeded, "up")
	traced.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct {
		name    string
		records []*status.Record
		want    string
	}{
		{"traced", []*status.Record{traced, rec("m1", "ship2", status.Succeeded, "up")}, "trace 4bf92f3577b34da6a3ce929d0e0e4736\n"},
		{"untraced", []*status.Record{rec("m1", "ship1", status.Succeeded, "up")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := a.writeStatus(&out, tc.records, outputTable); err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(out.String(), "NODE")
			if first != tc.want {
				t.Errorf("before the table: %q, want %q\n%s", first, tc.want, out.String())
			}
		})
	}
}
